"""Hot paths: host read-backs per training and sampling step, and the loop against the peer.

On a GPU every read of a device tensor's value on the host (``.item()``, ``float(t)``,
``bool(t)``, ``int(t)``, ``.tolist()``, ``.cpu()``, ``.numpy()``) waits for the queued kernels:
a synchronisation. This machine has no GPU, so the audit counts the calls instead: the
``Tensor`` methods are wrapped while a solver trains (or samples) for two step budgets, and
the difference, divided by the difference in steps, is the number of read-backs *per step*,
attributed to the calling file and line. Reads in ``torch/optim`` touch the optimiser's step
counters, which live on the host by design (not a device sync); reads in torchdiffeq and
torchsde are the libraries' own step control.

The second part times the shared training loop (cfm, both couplings) interleaved with the
torchcfm loop, so the ratio to the peer is taken under the same load, and the parts of one
step on each side. The third part retrains cfm and pfode with other top frequencies of the
time embedding (200, the value before this was changed, and 5) and counts the default
(adaptive) sampler's network evaluations.

References:
    PyTorch documentation, "CUDA semantics: asynchronous execution" and
    ``torch.cuda.set_sync_debug_mode`` (what a host read-back costs on a GPU).
    Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (AdamW).
"""

from __future__ import annotations

import collections
import contextlib
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from perf_clock import Clock, ratio

from genbench.core.host_reads import count_host_reads

__all__ = [
    "audit", "embedding_whatif", "loop_components",
    "loop_vs_peer", "run_hotpaths", "time_frequency",
]

ROOT = Path(__file__).resolve().parents[1]
TINY = {"hidden": 32, "depth": 2, "batch_size": 64, "log_every": 10, "warmup": 5}
SAMPLE_KNOB = {"cfm": {"method": "euler"}, "pfode": {"method": "euler"},
               "jko": {"sample_method": "euler"}}
STEP_KEY = {"cfm": "sample_steps", "pfode": "sample_steps", "ddpm": "sample_steps",
            "lsb": "sde_steps", "jko": "sample_steps"}


def _where(path: str) -> tuple[str, str]:
    """``(owner, short path)``: genbench (this repo), optimizer, or the library's name."""
    p = Path(path)
    if ROOT in p.parents and ".venv" not in p.parts:
        return "genbench", str(p.relative_to(ROOT))
    short = path.split("site-packages/")[-1]
    if short.startswith("torch/optim/"):
        return "optimizer", short
    return short.split("/")[0], short


def _slope(low: collections.Counter, high: collections.Counter, span: int) -> dict[str, float]:
    per_step = {}
    for key in set(low) | set(high):
        delta = (high.get(key, 0) - low.get(key, 0)) / span
        if delta:
            per_step[f"{_where(key.file)[1]}:{key.line} {key.call}"] = delta
    return dict(sorted(per_step.items(), key=lambda kv: -kv[1]))


def _by_owner(per_step: dict[str, float]) -> dict[str, float]:
    owners: dict[str, float] = collections.defaultdict(float)
    for location, value in per_step.items():
        path = location.split(":")[0]
        owner = "genbench" if (ROOT / path).exists() else (
            "optimizer" if path.startswith("torch/optim/") else path.split("/")[0])
        owners[owner] += value
    return dict(owners)


def audit(steps: tuple[int, int] = (20, 40), sample_steps: tuple[int, int] = (10, 20),
          log: Any = print) -> list[dict[str, Any]]:
    """Read-backs per training step and per sampler step for every registered solver."""
    from genbench.core.solver import create_solver, list_solvers

    torch.manual_seed(0)
    z = torch.randn(1024, 2)
    rows = []
    for name in list_solvers():
        extra = {"max_blocks": 1} if name == "jko" else {}
        counts = []
        for n_steps in steps:
            solver = create_solver(name, 2, {**TINY, **extra, "steps": n_steps})
            with count_host_reads() as seen:
                solver.fit(z)
            counts.append(collections.Counter(seen))
        train = _slope(counts[0], counts[1], steps[1] - steps[0])
        row = {"solver": name, "train_per_step": train, "train_by_owner": _by_owner(train)}
        if name in STEP_KEY:
            counts = []
            for n_steps in sample_steps:
                for key, value in {**SAMPLE_KNOB.get(name, {}), STEP_KEY[name]: n_steps}.items():
                    setattr(solver.config, key, value)
                with count_host_reads() as seen:
                    solver.sample(64, generator=torch.Generator().manual_seed(0))
                counts.append(collections.Counter(seen))
            sample = _slope(counts[0], counts[1], sample_steps[1] - sample_steps[0])
            row |= {"sample_per_step": sample, "sample_by_owner": _by_owner(sample)}
        rows.append(row)
        log(f"[hotpaths] {name}: train {row['train_by_owner']}, "
            f"sample {row.get('sample_by_owner')}")
    return rows


# -- the training loop against the peer ---------------------------------------------------
def loop_vs_peer(steps: int = 100, repeats: int = 4, log: Any = print) -> list[dict[str, Any]]:
    """Train-step CPU time of cfm (both couplings) interleaved with torchcfm's OT-CFM loop.

    Each repeat runs every method once, in rotation, and the best repeat is kept: the one
    least disturbed by other load, taken under the same conditions for every method.
    """
    from perf_peer import PeerBudget, torchcfm_available, train_torchcfm

    from genbench.core.solver import create_solver

    torch.manual_seed(0)
    z = torch.randn(8192, 2)
    methods = {"cfm (ot)": {"coupling": "ot"}, "cfm (independent)": {"coupling": "independent"}}
    peer = torchcfm_available() is None
    times: dict[str, list[float]] = {m: [] for m in methods} | (
        {"torchcfm OT-CFM": []} if peer else {})
    for _ in range(repeats):
        for method in times:
            torch.manual_seed(0)
            if method == "torchcfm OT-CFM":
                _, clock = train_torchcfm(z, PeerBudget(steps=steps), seed=0)
            else:
                solver = create_solver("cfm", 2, {"steps": steps, **methods[method]})
                with Clock() as clock:
                    solver.fit(z)
            times[method].append(1e3 * clock.cpu / steps)
    reference = min(times["torchcfm OT-CFM"]) if peer else None
    rows = []
    for method, values in times.items():
        best = min(values)
        rows.append({"method": method, "ms_per_step_cpu": best,
                     "median_ms_per_step_cpu": statistics.median(values),
                     "all_ms_per_step_cpu": values, "vs_peer": ratio(best, reference)})
        log(f"[loop] {method}: {best:.3f} ms/step cpu"
            + (f" ({ratio(best, reference):.3f}x torchcfm)" if peer else ""))
    return rows


def _best_ms(fn: Any, calls: int = 50, blocks: int = 5) -> float:
    """CPU ms per call, the best of ``blocks`` blocks (the least disturbed by other load)."""
    for _ in range(10):
        fn()
    best = float("inf")
    for _ in range(blocks):
        with Clock() as clock:
            for _ in range(calls):
                fn()
        best = min(best, clock.cpu / calls)
    return 1e3 * best


def loop_components(dim: int = 2, batch: int = 256, hidden: int = 256) -> list[dict[str, Any]]:
    """CPU ms of each part of one training step, genbench's loop against torchcfm's."""
    from genbench.core.solver import SolverConfig
    from genbench.core.training import EMA, make_optimizer
    from solvers.nets import TimeMLP

    torch.manual_seed(0)
    net = TimeMLP(dim, hidden, 3)
    x, t = torch.randn(batch, dim), torch.rand(batch)
    rows = []

    def add(part: str, side: str, fn: Any) -> None:
        rows.append({"part": part, "loop": side, "ms_cpu": _best_ms(fn)})

    add("network forward + backward", "genbench (TimeMLP)",
        lambda: (net(x, t) - x).pow(2).sum(dim=1).mean().backward())
    opt, sched = make_optimizer(net.parameters(), SolverConfig(), 10**6)
    add("optimizer step", "genbench (AdamW, fused where available)", opt.step)
    add("learning-rate schedule step", "genbench (LambdaLR)", sched.step)
    add("gradient clipping", "genbench (clip_grad_norm_)",
        lambda: torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0))
    ema = EMA(net, 0.999)
    add("EMA update", "genbench (one _foreach_lerp_)", lambda: ema.update_parameters(net))
    try:
        from torchcfm.models.models import MLP
    except ImportError:
        return rows
    peer = MLP(dim, w=hidden, time_varying=True)
    xt = torch.cat([x, t[:, None]], dim=-1)
    add("network forward + backward", "torchcfm (models.MLP)",
        lambda: (peer(xt) - x).pow(2).mean().backward())
    add("optimizer step", "torchcfm (Adam)", torch.optim.Adam(peer.parameters(), lr=1e-9).step)
    return rows


@contextlib.contextmanager
def time_frequency(value: float) -> Iterator[None]:
    """cfm and pfode networks built inside get ``max_frequency=value``."""
    from solvers import cfm, pfode

    modules = (cfm, pfode)
    originals = [m.SMOOTH_TIME_FREQUENCY for m in modules]
    for m in modules:
        m.SMOOTH_TIME_FREQUENCY = value
    try:
        yield
    finally:
        for m, original in zip(modules, originals, strict=True):
            m.SMOOTH_TIME_FREQUENCY = original


def embedding_whatif(steps: int = 500, log: Any = print) -> list[dict[str, Any]]:
    """Default-sampler NFE and W2 of the flow solvers against the time embedding's top frequency.

    ``TimeMLP`` embeds ``t`` with sinusoids up to ``max_frequency``: with a high one (200,
    what cfm and pfode used before) the learned field varies fast in ``t`` and an adaptive
    solver takes many steps to follow it.
    """
    from perf_peer import prepare, w2_exact

    from genbench.core.solver import create_solver
    from solvers.nets import SMOOTH_TIME_FREQUENCY

    current = SMOOTH_TIME_FREQUENCY
    ae, z, x_test, _ = prepare("moons", 1000)
    rows = []
    for name, values in (("cfm", (200.0, current, 5.0)), ("pfode", (200.0, current))):
        for value in values:
            torch.manual_seed(0)
            with time_frequency(value):
                solver = create_solver(name, 2, {"steps": steps, "batch_size": 256})
            with Clock() as train_clock:
                solver.fit(z)
            row = {"solver": name, "max_frequency": value, "current": value == current,
                   "steps": steps, "train_cpu_s": train_clock.cpu}
            for label, keys in (("default", {}), ("euler-20", {"method": "euler",
                                                               "sample_steps": 20})):
                for key, v in keys.items():
                    setattr(solver.config, key, v)
                with Clock() as clock:
                    z_gen = solver.sample(1000, generator=torch.Generator().manual_seed(0))
                row[label] = {"nfe": solver.nfe, "cpu_s": clock.cpu,
                              "w2": w2_exact(ae.decode(z_gen), x_test)}
            rows.append(row)
            log(f"[embedding] {name} max_frequency={value:g}: default NFE "
                f"{row['default']['nfe']}, W2 {row['default']['w2']:.4f}; Euler-20 W2 "
                f"{row['euler-20']['w2']:.4f}")
    return rows


def run_hotpaths(log: Any = print) -> dict[str, Any]:
    components = loop_components()
    log("[components] " + ", ".join(f"{r['part']} / {r['loop']}: {r['ms_cpu']:.3f} ms"
                                    for r in components))
    return {"audit": audit(log=log), "components": components, "loop": loop_vs_peer(log=log),
            "embedding": embedding_whatif(log=log)}
