"""Targets with closed-form answers, and the exact fields the solvers' networks approximate.

A :class:`Mixture` of full-covariance Gaussians (one component: a Gaussian) is closed under
the Gaussian paths every solver trains on, ``x = a y + s eps`` with ``y ~ p``, ``eps ~
N(0, I)``: component k of the law of ``x`` is ``N(a m_k, a^2 C_k + s^2 I)``, and

    E[y | x] = sum_k r_k(x) (m_k + a C_k S_k^{-1} (x - a m_k)),   S_k = a^2 C_k + s^2 I,

with ``r_k(x)`` the posterior weight of component k (Bishop, PRML, eqs. 2.116 and 9.13).
From it follow the noise ``(x - a E[y | x]) / s`` (DDPM, PF-ODE), the score
``-(x - a E[y | x]) / s^2`` (Tweedie), and the flow-matching velocity of the independent
coupling, ``x = (1 - t) x0 + t x1``: ``E[x1 - x0 | x] = sum_k r_k (m_k + (t C_k - (1 - t) I)
S_k^{-1} (x - t m_k))`` (jointly Gaussian conditioning, non-singular at t = 0 and 1).

Everything is float64, independent of the solvers' own schedule code, so a wrong constant
in a solver's schedule cannot be mirrored in its oracle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["GAUSSIAN", "MIXTURE_1D", "Mixture", "OracleNet", "cosine_alpha_bars",
           "vp_linear_alpha"]


class Mixture:
    """``sum_k w_k N(m_k, C_k)`` in ``d`` dimensions (float64)."""

    def __init__(self, weights: list[float], means: list[list[float]],
                 covs: list[list[list[float]]]):
        self.w = torch.tensor(weights, dtype=torch.float64)
        self.m = torch.tensor(means, dtype=torch.float64)  # (K, d)
        self.c = torch.tensor(covs, dtype=torch.float64)  # (K, d, d)
        self.dim = self.m.shape[1]

    @property
    def mean(self) -> Tensor:
        return self.w @ self.m

    @property
    def cov(self) -> Tensor:
        centred = self.m - self.mean
        spread = torch.einsum("k,ki,kj->ij", self.w, centred, centred)
        return torch.einsum("k,kij->ij", self.w, self.c) + spread

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        k = torch.multinomial(self.w, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.c)
        return self.m[k] + torch.einsum("nij,nj->ni", chol[k], eps)

    def _components(self, x: Tensor, a: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior weights r (n, K) and S_k^{-1} (x - a m_k) (n, K, d) on the path a, s."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        a2 = (a * a).reshape(-1, 1, 1, 1)
        s2 = (s * s).reshape(-1, 1, 1, 1)
        cov = a2 * self.c[None] + s2 * eye  # (n, K, d, d)
        diff = x[:, None, :] - a.reshape(-1, 1, 1) * self.m[None]  # (n, K, d)
        solved = torch.linalg.solve(cov, diff.unsqueeze(-1)).squeeze(-1)
        logdet = torch.linalg.slogdet(cov).logabsdet
        log_r = self.w.log() - 0.5 * (logdet + (diff * solved).sum(-1))
        return torch.softmax(log_r, dim=1), solved

    def log_prob(self, x: Tensor, a: float = 1.0, s: float = 0.0) -> Tensor:
        """log-density of ``a y + s eps`` at ``x`` (a = 1, s = 0: the target itself)."""
        x = x.double()
        cov = a * a * self.c + s * s * torch.eye(self.dim, dtype=torch.float64)
        diff = x[:, None, :] - a * self.m[None]
        solved = torch.linalg.solve(cov[None].expand(x.shape[0], -1, -1, -1),
                                    diff.unsqueeze(-1)).squeeze(-1)
        logdet = torch.linalg.slogdet(cov).logabsdet
        quad = (diff * solved).sum(-1)
        per_k = self.w.log() - 0.5 * (quad + logdet + self.dim * math.log(2 * math.pi))
        return torch.logsumexp(per_k, dim=1)

    def posterior_mean(self, x: Tensor, a: Tensor, s: Tensor) -> Tensor:
        """E[y | a y + s eps = x] (a, s broadcast to (n,))."""
        x = x.double()
        a = torch.as_tensor(a, dtype=torch.float64).expand(x.shape[0])
        s = torch.as_tensor(s, dtype=torch.float64).expand(x.shape[0])
        r, solved = self._components(x, a, s)
        inner = self.m[None] + a.reshape(-1, 1, 1) * torch.einsum("kij,nkj->nki", self.c, solved)
        return (r.unsqueeze(-1) * inner).sum(1)

    def noise(self, x: Tensor, a: Tensor, s: Tensor) -> Tensor:
        """E[eps | a y + s eps = x] = (x - a E[y | x]) / s."""
        a = torch.as_tensor(a, dtype=torch.float64).reshape(-1, 1)
        s = torch.as_tensor(s, dtype=torch.float64).reshape(-1, 1)
        return (x.double() - a * self.posterior_mean(x, a.reshape(-1), s.reshape(-1))) / s

    def cfm_velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """E[x1 - x0 | (1 - t) x0 + t x1 = x], x0 ~ N(0, I), x1 ~ this mixture."""
        x = x.double()
        t = torch.as_tensor(t, dtype=torch.float64).expand(x.shape[0])
        r, solved = self._components(x, t, 1 - t)
        eye = torch.eye(self.dim, dtype=torch.float64)
        gain = t.reshape(-1, 1, 1, 1) * self.c[None] - (1 - t).reshape(-1, 1, 1, 1) * eye
        inner = self.m[None] + torch.einsum("nkij,nkj->nki", gain, solved)
        return (r.unsqueeze(-1) * inner).sum(1)


# det(cov) = 0.64: a wrong log-det sign or factor changes log_prob; non-zero mean, anisotropic.
GAUSSIAN = Mixture([1.0], [[1.5, -0.7]], [[[2.0, 0.6], [0.6, 0.5]]])
MIXTURE_1D = Mixture([0.3, 0.7], [[-2.0], [1.5]], [[[0.25]], [[0.16]]])


def cosine_alpha_bars(timesteps: int) -> Tensor:
    """Nichol & Dhariwal (2021) eq. 17: abar_t = f(t) / f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2),
    betas clipped at 0.999 (their Sec. 3.2); written here independently of solvers.schedules."""
    s = 0.008
    f = [math.cos((i / timesteps + s) / (1 + s) * math.pi / 2) ** 2 for i in range(timesteps + 1)]
    out, prod = [], 1.0
    for i in range(1, timesteps + 1):
        prod *= 1 - min(1 - f[i] / f[i - 1], 0.999)
        out.append(prod)
    return torch.tensor(out, dtype=torch.float64)


def vp_linear_alpha(t: Tensor, beta_min: float = 0.1, beta_max: float = 20.0) -> Tensor:
    """Song et al. (2021) eq. 29 (VP-SDE): alpha(t) = exp(-t^2 (b1 - b0) / 4 - t b0 / 2)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return torch.exp(-0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min)


class OracleNet(nn.Module):
    """Stands in for a solver's network: ``forward(x, t) = fn(x, t)`` in the caller's dtype.

    ``bias`` and ``weight`` (zero) are the only parameters: the gradient of a solver's loss
    with respect to them at the oracle is the loss's first-order optimality residual, zero
    in expectation exactly when the oracle minimises that loss.
    """

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor], dim: int):
        super().__init__()
        self.fn = fn
        self.bias = nn.Parameter(torch.zeros(dim))
        self.weight = nn.Parameter(torch.zeros(dim, dim))

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64).expand(x.shape[0])
        exact = self.fn(x, t.detach()).to(x.dtype)  # differentiable in x: divergences
        return exact + self.bias + x @ self.weight.T
