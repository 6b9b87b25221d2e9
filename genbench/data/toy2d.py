"""Two-dimensional toy targets, each a seeded sampler ``f(n, rng) -> (n, 2)`` array.

Scalings follow the common public definitions (FFJORD's toy set; torchcfm's moons and
8gaussians), so reference numbers from those works are comparable in kind.

References:
    Grathwohl et al., "FFJORD", ICLR 2019 (checkerboard, pinwheel, 2spirals, swissroll, circles).
    Tong et al., "Improving and generalizing flow-based generative models with minibatch
    optimal transport", TMLR 2024 (torchcfm's moons and 8gaussians).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.datasets import make_circles, make_moons, make_swiss_roll

from genbench.data.registry import register_dataset

__all__ = ["TOYS"]

Sampler = Callable[[int, np.random.Generator], np.ndarray]


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def moons(n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = make_moons(n, noise=0.2, random_state=_seed(rng))
    return x * 3.0 - 1.0


def checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2.0
    x2 = x2 + np.floor(x1) % 2
    return np.stack([x1, x2], 1) * 2.0


def swissroll(n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = make_swiss_roll(n, noise=1.0, random_state=_seed(rng))
    return x[:, [0, 2]] / 5.0


def circles(n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = make_circles(n, factor=0.5, noise=0.08, random_state=_seed(rng))
    return x * 3.0


def pinwheel(n: int, rng: np.random.Generator) -> np.ndarray:
    radial_std, tangential_std, n_classes, rate = 0.3, 0.1, 5, 0.25
    labels = rng.integers(0, n_classes, n)
    feats = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    feats[:, 0] += 1.0
    angles = 2 * np.pi * labels / n_classes + rate * np.exp(feats[:, 0])
    rot = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)], 1)
    return 2.0 * np.einsum("ti,tij->tj", feats, rot.reshape(n, 2, 2))


def two_spirals(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.sqrt(rng.random(n)) * 540 * (2 * np.pi) / 360
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    x = np.stack([-np.cos(t) * t, np.sin(t) * t], 1) * sign[:, None]
    return x / 3.0 + rng.standard_normal((n, 2)) * 0.1


TOYS: dict[str, Sampler] = {
    "moons": moons,
    "checkerboard": checkerboard,
    "swissroll": swissroll,
    "circles": circles,
    "pinwheel": pinwheel,
    "2spirals": two_spirals,
}
for _name, _sampler in TOYS.items():
    register_dataset(_name)(lambda _params, sampler=_sampler: sampler)
