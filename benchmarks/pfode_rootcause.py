"""pfode root cause on circles: one trained score, several samplers; one change at a time.

Trains pfode on a data set exactly as a robustness job does (same data, encoder and seeding,
:func:`genbench.run.pipeline.prepare_job`), then samples the *same* trained model with
several samplers and scores each by data W2 against the test points over the mean W2 floor
of ``--floor-draws`` reference draws (the harness's floor, fewer draws):

- ``ode``: the model's own sampler (the PF-ODE with its config's method and tolerances);
- ``ode_tight``: the PF-ODE with rtol = atol = 1e-7;
- ``sde``: the reverse-time VP SDE, Euler-Maruyama, ``--sde-steps`` steps;
- ``pc``: that predictor with one Langevin corrector step per step (snr 0.16);
- ``own_sde``, ``own_ancestral``: the solver's own ``sampler: sde`` (torchsde) and
  ``sampler: ancestral`` code.

A sampler may carry its step count, ``own_ancestral:500`` (else ``--sde-steps``).

``--set key=value`` overrides a solver config key (training variants); ``--time-sampling``
(logsnr | edm | sech | sech<shift>), ``--time-freq`` and ``--time-input`` patch the
training-time law, the net's top time frequency and its time input, for diagnosis before
they were (or were not) made config keys. The ``sde`` and
``pc`` samplers here are a hand-written loop (noise-free last step), the instrument of the
measurements in benchmarks/results/pfode_rootcause.md; the solver's own ``sampler: sde``
(torchsde) came after them. One JSON line per (config, sampler) is appended to ``--out``.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/pfode_rootcause.py --dataset circles \
        --samplers ode sde --set steps=8000

References: Song et al., "Score-Based Generative Modeling through Stochastic Differential
Equations", ICLR 2021 (reverse-time SDE, eq. 6; predictor-corrector, Alg. 5 (VP)).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _parse(value: str) -> object:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None}.get(value, value)


@torch.no_grad()
def reverse_sde(solver, n: int, steps: int, generator: torch.Generator,
                corrector_snr: float = 0.0) -> torch.Tensor:
    """Euler-Maruyama on Song et al.'s reverse-time SDE (eq. 6) for the VP SDE:
    ``dx = [-beta/2 x - beta score] dt + sqrt(beta) dw`` from T down to t_eps; the last step
    adds no noise (their "denoise" step). With ``corrector_snr`` > 0, one Langevin step per
    predictor step with step size ``2 (snr |z| / |score|)^2`` (their Alg. 5, VP case)."""
    sched, net = solver.schedule, solver.ema.module
    t_hi, t_lo = solver.t_prior, solver.t_data
    times = torch.linspace(t_hi, t_lo, steps + 1).tolist()
    x = torch.randn(n, solver.dim, generator=generator)
    for i in range(steps):
        t, dt = times[i], times[i] - times[i + 1]
        tt = torch.tensor(t)
        _, sigma = sched.alpha_sigma(tt)
        score = -net(x, tt) / sigma
        beta = float(sched.beta(tt))
        mean = x + (0.5 * beta * x + beta * score) * dt
        x = mean + (beta * dt) ** 0.5 * torch.randn(x.shape, generator=generator) \
            if i < steps - 1 else mean
        if corrector_snr > 0 and i < steps - 1:
            tn = torch.tensor(times[i + 1])
            _, sigma_n = sched.alpha_sigma(tn)
            score = -net(x, tn) / sigma_n
            z = torch.randn(x.shape, generator=generator)
            alpha = 1.0 - float(sched.beta(tn)) * dt  # their alpha_i = 1 - beta_i (VP)
            step = 2 * alpha * (corrector_snr * z.norm(dim=1).mean()
                                / score.norm(dim=1).mean()) ** 2
            x = x + step * score + (2 * step) ** 0.5 * z
    return x


def _t_of_logsnr(solver, lam: torch.Tensor) -> torch.Tensor:
    """Inverse of the linear VP log-SNR: alpha^2 = sigmoid(lam), log alpha = -a t^2 - b t."""
    sched = solver.schedule
    a, b = 0.25 * (sched.beta_max - sched.beta_min), 0.5 * sched.beta_min
    c = -0.5 * torch.nn.functional.logsigmoid(lam)  # = a t^2 + b t
    return (-b + (b * b + 4 * a * c).sqrt()) / (2 * a)


def _patch_time_sampling(solver, kind: str) -> None:
    def logsnr_of(t: float) -> torch.Tensor:
        alpha, sigma = solver.schedule.alpha_sigma(torch.tensor(t))
        return 2 * (alpha.log() - sigma.log())

    lo, hi = logsnr_of(solver.config.horizon), logsnr_of(solver.config.train_t_eps)

    def loss(z: torch.Tensor) -> torch.Tensor:
        u = torch.rand(z.shape[0], device=z.device)
        if kind == "logsnr":
            lam = lo + (hi - lo) * u
        elif kind == "edm":  # Karras et al. 2022: ln(sigma/alpha) ~ N(-1.2, 1.2^2)
            lam = (-2 * (-1.2 + 1.2 * torch.randn_like(u))).clamp(lo, hi)
        elif kind.startswith("sech"):  # cosine-schedule law p(lam) = sech(lam / 2) / (2 pi)
            shift = float(kind[4:] or 0.0)  # sech2: shifted by +2 (toward low noise)
            lam = -2 * torch.tan(0.5 * torch.pi * u.clamp(1e-6, 1 - 1e-6)).log() + shift
            lam = lam.clamp(lo, hi)
        else:
            raise ValueError(kind)
        t = _t_of_logsnr(solver, lam)
        alpha, sigma = solver.schedule.alpha_sigma(t[:, None])
        eps = torch.randn_like(z)
        return (solver.net(alpha * z + sigma * eps, t) - eps).pow(2).sum(dim=1).mean()

    solver.loss = loss


def _patch_time_input(rc) -> None:
    """The time features read ``(lambda(1e-5) - lambda(t)) / (lambda(1e-5) - lambda(1))``
    (linear VP) instead of ``t``: a monotone reparametrisation of the net's time input."""
    from solvers.nets import TimeEmbedding
    from solvers.schedules import VPSchedule

    sched = VPSchedule(rc.solver.get("schedule", "linear"), 0.1, 20.0)
    lo, hi = sched.log_snr(torch.tensor([1.0, 1e-5], dtype=torch.float64)).tolist()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        u = (hi - sched.log_snr(t.clamp(1e-5, 1.0))) / (hi - lo)
        angles = u[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    TimeEmbedding.forward = forward


def main() -> None:
    from robustness import job_config

    from genbench.eval.metrics.w2 import w2
    from genbench.eval.verdict import reference_draws
    from genbench.run.pipeline import _as_run_config, prepare_job

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="circles")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samplers", nargs="*", default=["ode", "sde"])
    parser.add_argument("--sde-steps", type=int, default=1000)
    parser.add_argument("--set", action="append", default=[], help="solver key=value")
    parser.add_argument("--floor-draws", type=int, default=8)
    parser.add_argument("--nll", action="store_true", help="also the test NLL (PF-ODE)")
    parser.add_argument("--cache-dir", default="/work/runs/robust-cache")
    parser.add_argument("--out", type=Path, default=Path("/tmp/pf/rootcause.jsonl"))
    parser.add_argument("--tag", default="")
    parser.add_argument("--time-sampling", default=None, help="diagnosis: logsnr | edm")
    parser.add_argument("--time-freq", type=float, default=None,
                        help="diagnosis only: the net's top time frequency (default 20)")
    parser.add_argument("--time-input", default=None,
                        help="diagnosis: logsnr = the net reads the normalised log-SNR, not t")
    args = parser.parse_args()
    torch.set_num_threads(1)

    overrides = dict(kv.split("=", 1) for kv in args.set)
    rc = job_config("pfode", args.dataset, args.seed, args.cache_dir)
    for key, value in overrides.items():
        rc.solver[key] = _parse(value)
    if args.time_freq is not None:
        import solvers.pfode

        solvers.pfode.SMOOTH_TIME_FREQUENCY = args.time_freq
        overrides["time_freq"] = args.time_freq
    if args.time_input == "logsnr":
        _patch_time_input(rc)
        overrides["time_input"] = "logsnr"
    job = prepare_job(_as_run_config(rc))
    solver, splits, ae = job.solver, job.inputs.splits, job.inputs.ae
    if args.time_sampling is not None:
        overrides["time_sampling"] = args.time_sampling
        _patch_time_sampling(solver, args.time_sampling)
    cpu0 = _cpu()
    stats = solver.fit(job.z_train, progress=False)
    train_cpu = _cpu() - cpu0
    test = splits.test
    floor = statistics.mean(w2(test, ref)[0] for ref in reference_draws(splits, args.floor_draws))
    base = {"dataset": args.dataset, "seed": args.seed, "set": overrides, "tag": args.tag,
            "train_cpu_s": round(train_cpu, 1), "final_loss": stats["final_loss"],
            "floor": floor}
    if args.nll:
        base["nll"] = float(-solver.log_prob(ae.encode(test)).mean())
    base_steps = args.sde_steps
    solver.config.sampler = "ode"  # "ode" below is the PF-ODE whatever the default sampler
    for spec in args.samplers:
        name, _, k = spec.partition(":")
        args.sde_steps = int(k) if k else base_steps
        gen = torch.Generator().manual_seed(args.seed)
        start = time.perf_counter()
        if name == "ode":
            z = solver.sample(len(test), generator=gen)
            nfe = solver.nfe
        elif name == "ode_tight":
            rtol, atol = solver.config.rtol, solver.config.atol
            solver.config.rtol = solver.config.atol = 1e-7
            z = solver.sample(len(test), generator=gen)
            nfe = solver.nfe
            solver.config.rtol, solver.config.atol = rtol, atol
        elif name in ("sde", "pc"):
            snr = 0.16 if name == "pc" else 0.0
            z = reverse_sde(solver, len(test), args.sde_steps, gen, corrector_snr=snr)
            nfe = args.sde_steps * (2 if name == "pc" else 1)
        elif name in ("own_sde", "own_ancestral"):  # the solver's own sampler code
            solver.config.sampler, solver.config.sde_steps = name[4:], args.sde_steps
            z = solver.sample(len(test), generator=gen)
            nfe = solver.nfe
            solver.config.sampler = "ode"
        else:
            raise ValueError(f"unknown sampler {name!r}")
        value = w2(ae.decode(z), test)[0]
        row = base | {"sampler": spec, "nfe": nfe, "w2": value, "ratio": value / floor,
                      "sample_s": round(time.perf_counter() - start, 1)}
        print(json.dumps(row), flush=True)
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
