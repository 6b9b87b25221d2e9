"""Every sampler run on its exact field: moments, mixture weights and log_prob against closed forms.

The network of each solver is replaced by an oracle (tests/oracle_targets.py) that returns
the exact noise / velocity / posterior mean for a target known in closed form: the Gaussian
N((1.5, -0.7), [[2, .6], [.6, .5]]) (non-zero mean, anisotropic, det 0.64, so neither a
wrong mean factor nor a wrong log-det sign can hide) and a 1-D two-component mixture
(weights 0.3 / 0.7). The solver's own sampling (and loss) code then runs unchanged, so a
wrong coefficient, square root, sign or time factor in it moves samples or densities away
from the truth. Tolerances are ~5 Monte-Carlo standard errors at the sample sizes used,
plus the discretisation error measured with the correct code (stated per test).
"""

from __future__ import annotations

import math

import pytest
import torch

from genbench.core.solver import create_solver
from solvers.jko import TIME_SCALE
from tests.oracle_targets import (
    GAUSSIAN,
    MIXTURE_1D,
    Mixture,
    OracleNet,
    cosine_alpha_bars,
    vp_linear_alpha,
)

N = 20_000


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_moments(x: torch.Tensor, target: Mixture, *, mean_tol: float = 0.05,
                   cov_tol: float = 0.08) -> None:
    """Sample mean and covariance within ~5 standard errors (n = 20k: se 0.01 / 0.015)."""
    x = x.double()
    mean_err = (x.mean(0) - target.mean).abs().max()
    cov_err = (torch.atleast_2d(torch.cov(x.T)) - target.cov).abs().max()
    assert mean_err < mean_tol, f"mean {x.mean(0).tolist()} vs {target.mean.tolist()}"
    assert cov_err < cov_tol, f"cov {torch.cov(x.T).tolist()} vs {target.cov.tolist()}"


def assert_mixture_weights(x: torch.Tensor, tol: float = 0.02) -> None:
    """Mass right of the midpoint between MIXTURE_1D's modes (-2, 1.5) is 0.7 (se 0.003)."""
    frac = float((x[:, 0] > -0.25).double().mean())
    assert abs(frac - 0.7) < tol, f"mass of the right mode {frac:.3f}, want 0.7"


def optimality_residual(solver, oracle: OracleNet, z: torch.Tensor, seed: int) -> float:
    """|d loss / d (bias, weight)| at the oracle: ~0 iff the oracle minimises the loss."""
    solver.net = oracle
    torch.manual_seed(seed)
    loss = solver.loss(z)
    grads = torch.autograd.grad(loss, [oracle.bias, oracle.weight])
    return float(torch.cat([g.reshape(-1) for g in grads]).abs().max())


# -- DDPM: ancestral (full, strided), DDIM, the posterior q(x_{t-1} | x_t, x_0) ------------------
def ddpm_oracle(target: Mixture, timesteps: int = 1000) -> OracleNet:
    abars = cosine_alpha_bars(timesteps)

    def eps(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        abar = abars[(tau * timesteps).round().long() - 1]
        return target.noise(x, abar.sqrt(), (1 - abar).sqrt())

    return OracleNet(eps, target.dim)


def ddpm(target: Mixture, **config) -> torch.nn.Module:
    solver = create_solver("ddpm", target.dim, {"hidden": 8, "depth": 1} | config)
    solver.ema.module = ddpm_oracle(target)
    return solver


def test_ddpm_cosine_schedule_is_nichol_dhariwal() -> None:
    from solvers.schedules import discrete_alpha_bars

    assert torch.allclose(discrete_alpha_bars("cosine", 1000), cosine_alpha_bars(1000),
                          rtol=1e-12, atol=0)


def ddpm_sampler_law(target: Mixture, grid: list[int], sampler: str, eta: float = 0.0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and covariance of the *discretised* sampler's output for a Gaussian target.

    With the exact noise the predicted x0 = E[y | x_t] = m + K (x_t - a m), K = a C S^{-1},
    is affine in x_t, so every step is x' = P x + q + sqrt(v) z and the moments propagate
    in closed form. Ancestral: x' ~ q(x' | x_t, x0) (Ho et al. 2020 eqs. 6-7, respaced as
    in Nichol & Dhariwal 2021 Sec. 4). DDIM (Song et al. 2021 eq. 12): x' = sqrt(ab') x0 +
    sqrt(1 - ab' - v) eps + sqrt(v) z, v = eta^2 (1 - ab') / (1 - ab) (1 - ab / ab').
    Strided ancestral steps ignore Var(x0 | x_t), so they are not exact: comparing with
    this law, not with the target, keeps the tolerance at Monte-Carlo size."""
    abars = cosine_alpha_bars(1000)
    one = torch.tensor(1.0).double()
    steps = [(abars[t - 1], abars[grid[i + 1] - 1] if i + 1 < len(grid) else one)
             for i, t in enumerate(grid)]
    return gaussian_sampler_law(target, steps, sampler, eta)


def gaussian_sampler_law(target: Mixture, steps: list[tuple[torch.Tensor, torch.Tensor]],
                         sampler: str, eta: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`ddpm_sampler_law` for any sequence of steps ``(abar, abar_prev)``, from
    x ~ N(0, I)."""
    m, c, eye = target.mean, target.cov, torch.eye(target.dim, dtype=torch.float64)
    mean, cov = torch.zeros(target.dim, dtype=torch.float64), eye.clone()
    for ab, ab_prev in steps:
        a, s = ab.sqrt(), (1 - ab).sqrt()
        gain = a * c @ torch.linalg.inv(a * a * c + s * s * eye)  # x0 = m + K (x - a m)
        if sampler == "ancestral":
            beta = 1 - ab / ab_prev
            c0, c1 = ab_prev.sqrt() * beta / (1 - ab), (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)
            var = beta * (1 - ab_prev) / (1 - ab)
            P, q = c0 * gain + c1 * eye, c0 * (m - a * gain @ m)
        else:
            var = eta**2 * (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)
            ce = (1 - ab_prev - var).clamp(min=0).sqrt() / s  # eps = (x - a x0) / s
            P = ab_prev.sqrt() * gain + ce * (eye - a * gain)
            q = (ab_prev.sqrt() - ce * a) * (m - a * gain @ m)
        mean, cov = P @ mean + q, P @ cov @ P.T + var * eye
    return mean, cov


@pytest.mark.parametrize("config", [
    {"sampler": "ancestral"},
    {"sampler": "ancestral", "sample_steps": 20},
    {"sampler": "ddim", "sample_steps": 20},
    {"sampler": "ddim", "sample_steps": 20, "eta": 1.0},
], ids=["ancestral", "ancestral-strided", "ddim", "ddim-eta1"])
def test_ddpm_samplers_follow_their_exact_gaussian_law(config: dict) -> None:
    solver = ddpm(GAUSSIAN, **config)
    x = solver.sample(N, generator=gen()).double()
    mean, cov = ddpm_sampler_law(GAUSSIAN, solver.timestep_grid(), config["sampler"],
                                 config.get("eta", 0.0))
    assert (x.mean(0) - mean).abs().max() < 0.05, (x.mean(0), mean)
    assert (torch.cov(x.T) - cov).abs().max() < 0.08, (torch.cov(x.T), cov)
    if config == {"sampler": "ancestral"}:  # 1000 steps: the sampler's law is the target's
        assert_moments(x, GAUSSIAN)


@pytest.mark.parametrize("config", [{"sampler": "ancestral", "sample_steps": 100},
                                    {"sampler": "ddim", "sample_steps": 100}])
def test_ddpm_samplers_keep_the_mixture_weights(config: dict) -> None:
    assert_mixture_weights(ddpm(MIXTURE_1D, **config).sample(N, generator=gen()))


@pytest.mark.parametrize("steps", [(1000, 999), (600, 550)], ids=["full", "strided"])
def test_ddpm_step_is_the_posterior_q_of_x_prev_given_xt_and_x0(steps: tuple[int, int]) -> None:
    """Ho et al. (2020) eqs. 6-7 (respaced: Nichol & Dhariwal 2021, Sec. 4): with x0 known,
    x_prev ~ N(sqrt(ab_prev) b / (1 - ab) x0 + sqrt(1 - b) (1 - ab_prev) / (1 - ab) x_t,
    (1 - ab_prev) / (1 - ab) b), b = 1 - ab / ab_prev. The oracle's noise makes the
    predicted x0 a fixed point; the net's second input is one sampler step from its first."""
    t, t_prev = steps
    abars = cosine_alpha_bars(1000)
    ab, ab_prev = abars[t - 1], abars[t_prev - 1]
    x0 = torch.tensor([1.5, -0.7], dtype=torch.float64)
    seen: list[torch.Tensor] = []

    def eps(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        seen.append(x.double())
        a = abars[(tau * 1000).round().long() - 1][:, None]
        return (x.double() - a.sqrt() * x0) / (1 - a).sqrt()

    solver = create_solver("ddpm", 2, {"hidden": 8, "depth": 1, "clip_x0": False})
    solver.ema.module = OracleNet(eps, 2)
    solver.timestep_grid = lambda: [t, t_prev, 1]
    solver.sample(N, generator=gen())
    x_t, x_prev = seen[0], seen[1]
    beta = 1 - ab / ab_prev
    mean = (ab_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - ab_prev) * x_t) / (1 - ab)
    var = (1 - ab_prev) / (1 - ab) * beta
    resid = (x_prev - mean) / var.sqrt()
    assert resid.mean(0).abs().max() < 0.04, resid.mean(0)  # se 0.007
    assert (resid.var(0) - 1).abs().max() < 0.06, resid.var(0)  # se 0.01


def test_ddpm_loss_is_minimised_by_the_exact_noise() -> None:
    solver = ddpm(GAUSSIAN)
    z = GAUSSIAN.sample(200_000, gen(1)).float()
    residual = optimality_residual(solver, ddpm_oracle(GAUSSIAN), z, seed=2)
    assert residual < 0.02, residual  # ~0.003 measured; a wrong sqrt on abar gives > 0.1


# -- PF-ODE: samples and the exact change of variables --------------------------------------------
def pfode_oracle(target: Mixture) -> OracleNet:
    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha = vp_linear_alpha(t)
        return target.noise(x, alpha, (1 - alpha**2).sqrt())

    return OracleNet(eps, target.dim)


def pfode(target: Mixture, **config) -> torch.nn.Module:
    solver = create_solver("pfode", target.dim, {"hidden": 8, "depth": 1} | config)
    solver.ema.module = pfode_oracle(target)
    return solver


@pytest.mark.parametrize("sampler", ["ode", "sde", "ancestral"])
@pytest.mark.parametrize("target", [GAUSSIAN, MIXTURE_1D], ids=["gaussian", "mixture"])
def test_pfode_samples_and_log_prob(target: Mixture, sampler: str) -> None:
    # sde: Euler-Maruyama, 500 steps; its O(h) law error measured ~0.01 on the covariance.
    # The PF-ODE's drift factor 1/2 on the score in the SDE leaves the covariance ~1.0 off;
    # a noise of h beta instead of sqrt(h beta) collapses it. ancestral: the posterior mean
    # with alpha_ts^2 for alpha_ts, sigma_ts for sigma_ts^2, or the noise variance without
    # its sigma_s^2 / sigma_t^2 factor moves the mean or covariance past the tolerances.
    solver = pfode(target, sampler=sampler)
    x = solver.sample(N, generator=gen())
    assert solver.nfe == (500 if sampler != "ode" else solver.nfe)
    assert_moments(x, target)
    if target is MIXTURE_1D:
        assert_mixture_weights(x)
    # log p at t_eps = 1e-3 is the target's to ~1e-4; the prior N(0, I) stands in for p_1
    # (alpha(1) = 0.0066): |error| ~ 0.01 measured. A flipped sign moves it by 2 log-dets.
    z = target.sample(300, gen(3)).float()
    err = (solver.log_prob(z).double() - target.log_prob(z)).abs()
    assert err.mean() < 0.03 and err.max() < 0.1, (err.mean(), err.max())


@pytest.mark.parametrize("steps", [4, 12])
def test_pfode_ancestral_steps_follow_their_exact_gaussian_law(steps: int) -> None:
    """Few ancestral steps on the continuous grid: the output's law in closed form (each
    step affine in x, DDPM's eq. 6-7 coefficients written with abar ratios, independently
    of the solver's alpha_ts / sigma_ts form). At 4-12 steps sigma_s / sigma_t is far from 1,
    so a posterior variance without its sigma_s^2 / sigma_t^2 factor, or sigma_s for
    sigma_t in the noise coefficient, moves the covariance by more than the tolerance."""
    solver = pfode(GAUSSIAN, sampler="ancestral", sde_steps=steps)
    x = solver.sample(N, generator=gen()).double()
    times = torch.linspace(1.0, 1e-3, steps + 1, dtype=torch.float64)
    abars = vp_linear_alpha(times) ** 2
    pairs = list(zip(abars[:-1], abars[1:], strict=True))
    mean, cov = gaussian_sampler_law(GAUSSIAN, pairs, "ancestral")
    assert (x.mean(0) - mean).abs().max() < 0.05, (x.mean(0), mean)
    assert (torch.cov(x.T) - cov).abs().max() < 0.08, (torch.cov(x.T), cov)


@pytest.mark.parametrize("time_sampling", ["uniform", "logsnr"])
def test_pfode_loss_is_minimised_by_the_exact_noise(time_sampling: str) -> None:
    solver = pfode(GAUSSIAN, time_sampling=time_sampling)
    z = GAUSSIAN.sample(200_000, gen(1)).float()
    residual = optimality_residual(solver, pfode_oracle(GAUSSIAN), z, seed=2)
    assert residual < 0.02, residual


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_pfode_logsnr_times_are_uniform_in_the_log_snr(schedule: str) -> None:
    """lambda(t) = log(alpha^2 / sigma^2) of the drawn times is U[lambda(T), lambda(t_min)]:
    its quartiles within 0.02 of the uniform's (n = 200k, se ~0.001); lambda is computed here
    from the oracle's alpha (linear: Song et al. eq. 29) or Nichol and Dhariwal's eq. 17."""
    solver = pfode(GAUSSIAN, time_sampling="logsnr", schedule=schedule, train_t_eps=1e-5,
                   t_eps=1e-5)
    torch.manual_seed(0)
    t = solver.training_times(200_000, torch.device("cpu")).double()
    if schedule == "linear":
        alpha2 = vp_linear_alpha(t) ** 2
        ends = vp_linear_alpha(torch.tensor([0.99 if schedule == "cosine" else 1.0, 1e-5])) ** 2
    else:
        def f(u: torch.Tensor) -> torch.Tensor:
            return torch.cos((u + 0.008) / 1.008 * math.pi / 2)

        alpha2 = (f(t) / f(torch.tensor(0.0))) ** 2
        ends = (f(torch.tensor([0.99, 1e-5], dtype=torch.float64)) / f(torch.tensor(0.0))) ** 2
    lam = torch.log(alpha2 / (1 - alpha2))
    lo, hi = torch.log(ends / (1 - ends)).tolist()
    u = (lam - lo) / (hi - lo)
    quartiles = torch.quantile(u, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    assert (quartiles - torch.tensor([0.25, 0.5, 0.75])).abs().max() < 0.02, quartiles


# -- CFM: the independent coupling's marginal velocity; the OT map between Gaussians ---------------
def cfm(target: Mixture, velocity, **config) -> torch.nn.Module:
    solver = create_solver("cfm", target.dim, {"hidden": 8, "depth": 1} | config)
    solver.ema.module = OracleNet(velocity, target.dim)
    return solver


@pytest.mark.parametrize("target", [GAUSSIAN, MIXTURE_1D], ids=["gaussian", "mixture"])
def test_cfm_independent_coupling_samples_and_log_prob(target: Mixture) -> None:
    """Lipman et al. (2023) Thm. 1: the marginal velocity E[x1 - x0 | x_t] of the independent
    coupling carries N(0, I) to the target; its change of variables gives log p exactly."""
    solver = cfm(target, target.cfm_velocity, coupling="independent")
    x = solver.sample(N, generator=gen())
    assert_moments(x, target)
    if target is MIXTURE_1D:
        assert_mixture_weights(x)
    z = target.sample(300, gen(3)).float()
    err = (solver.log_prob(z).double() - target.log_prob(z)).abs()
    assert err.max() < 0.01, err.max()


def test_cfm_ot_velocity_pushes_each_noise_point_to_its_monge_image() -> None:
    """Between N(0, I) and N(m, C) the OT map is x -> m + C^{1/2} x (Gelbrich; Peyré & Cuturi
    Remark 2.31), and McCann's interpolation x_t = (1 - t) x + t T(x) has the velocity
    v(y, t) = m + (A - I) ((1 - t) I + t A)^{-1} (y - t m), A = C^{1/2}. What is tested: the
    solver's ODE sampler, run on this population OT velocity (the field minibatch OT-CFM
    approximates, Tong et al. 2024 Prop. 3.4 as the batch grows), maps each noise point to
    its own Monge image and log_prob is exact. The minibatch plan itself is not exact at any
    finite batch, so the OT-coupled *loss* has no closed-form minimiser to test."""
    evals, evecs = torch.linalg.eigh(GAUSSIAN.cov)
    root = evecs @ torch.diag(evals.sqrt()) @ evecs.T
    m, eye = GAUSSIAN.mean, torch.eye(2, dtype=torch.float64)

    def velocity(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t[0]
        y = y.double() - t * m
        return m + y @ torch.linalg.solve((1 - t) * eye + t * root, root - eye).T

    solver = cfm(GAUSSIAN, velocity, coupling="ot")
    x = solver.sample(2000, generator=gen(5))
    noise = torch.randn(2000, 2, generator=gen(5)).double()
    assert (x.double() - (m + noise @ root.T)).abs().max() < 1e-3
    z = GAUSSIAN.sample(300, gen(3)).float()
    assert (solver.log_prob(z).double() - GAUSSIAN.log_prob(z)).abs().max() < 1e-3


def test_cfm_loss_is_minimised_by_the_marginal_velocity() -> None:
    solver = cfm(GAUSSIAN, GAUSSIAN.cfm_velocity, coupling="independent")
    z = GAUSSIAN.sample(200_000, gen(1)).float()
    residual = optimality_residual(solver, OracleNet(GAUSSIAN.cfm_velocity, 2), z, seed=2)
    assert residual < 0.03, residual


# -- lsb: both starts, with the exact posterior mean E[y | X_t] ------------------------------------
def lsb(target: Mixture, start: str, data: torch.Tensor, **config) -> torch.nn.Module:
    """lsb whose posterior mean is exact for ``target`` on the start's own path."""
    solver = create_solver("lsb", target.dim, {"hidden": 8, "depth": 1, "start": start} | config)
    solver.prepare(data)
    sigma = solver.config.sigma

    def denoise(x: torch.Tensor, t, *, net=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)[0]
        if start == "schrodinger_follmer":  # X_t = t y + sigma sqrt(t (1 - t)) eps
            a, s = t, sigma * (t * (1 - t)).sqrt()
        else:  # X_t = y + sigma sqrt(1 - t) eps
            a, s = torch.ones((), dtype=torch.float64), sigma * (1 - t).sqrt()
        if float(s) == 0.0:
            return target.mean.expand(x.shape[0], -1).to(x.dtype)
        return target.posterior_mean(x, a, s).to(x.dtype)

    solver.denoise = denoise
    return solver


def lsb_euler_law(solver, target: Mixture, start_mean: torch.Tensor, start_cov: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and covariance of Euler-Maruyama on the exact drift, then Tweedie, for a
    Gaussian target: E[y | X_t = x] = m + K (x - a m), K = a C S^{-1}, is affine, so each
    step X' = X + b(X, t) dt + sigma sqrt(dt) Z propagates the two moments in closed form
    (Kloeden & Platen 1992, Sec. 9.1: the scheme; Jiao et al. 2024: b = (E[y|X_t] - X_t) /
    (1 - t), the Tweedie step at T = 1 - delta)."""
    sigma, sf = solver.config.sigma, solver.config.start == "schrodinger_follmer"
    m, c, eye = target.mean, target.cov, torch.eye(target.dim, dtype=torch.float64)

    def affine(t: float) -> tuple[torch.Tensor, torch.Tensor]:  # E[y | x] = G x + g
        a, s2 = (t, sigma**2 * t * (1 - t)) if sf else (1.0, sigma**2 * (1 - t))
        if s2 == 0.0:
            return 0 * eye, m
        gain = a * c @ torch.linalg.inv(a * a * c + s2 * eye)
        return gain, m - a * gain @ m

    mean, cov = start_mean.double(), start_cov.double()
    grid = solver.time_grid()
    for t, t_next in zip(grid[:-1], grid[1:], strict=True):
        dt = t_next - t
        gain, shift = affine(t)
        P = eye + dt * (gain - eye) / (1 - t)
        mean = P @ mean + dt * shift / (1 - t)
        cov = P @ cov @ P.T + sigma**2 * dt * eye
    gain, shift = affine(grid[-1])
    return gain @ mean + shift, gain @ cov @ gain.T


@pytest.mark.parametrize("start", ["convolved", "schrodinger_follmer"])
def test_lsb_exact_drift_follows_its_exact_euler_law(start: str) -> None:
    """Gaussian target: the samples match the exact law of the discretised SDE (which is
    the target to ~4 % in the covariance at the default 100 steps, see the next test)."""
    data = GAUSSIAN.sample(100_000, gen(4)).float()
    solver = lsb(GAUSSIAN, start, data)
    x = solver.sample(N, generator=gen()).double()
    if start == "schrodinger_follmer":
        m0, c0 = torch.zeros(2), torch.zeros(2, 2)
    else:  # the empirical convolved start: moments of the latents plus sigma^2 I
        m0, c0 = data.double().mean(0), torch.cov(data.double().T) + torch.eye(2)
    mean, cov = lsb_euler_law(solver, GAUSSIAN, m0, c0)
    assert (x.mean(0) - mean).abs().max() < 0.05, (x.mean(0), mean)
    assert (torch.cov(x.T) - cov).abs().max() < 0.08, (torch.cov(x.T), cov)


@pytest.mark.parametrize("start", ["convolved", "schrodinger_follmer"])
@pytest.mark.parametrize("target", [GAUSSIAN, MIXTURE_1D], ids=["gaussian", "mixture"])
def test_lsb_exact_drift_carries_its_start_to_the_target(start: str, target: Mixture) -> None:
    """With the exact E[y | X_t], the SDE dX = (E[y | X_t] - X) / (1 - t) dt + sigma dW from
    either start ends at the target (one Tweedie step then shrinks the covariance by ~sigma^2
    delta = 1e-3); 400 Euler steps keep the discretisation bias below 1 %."""
    data = target.sample(100_000, gen(4)).float()  # the convolved start draws from these
    x = lsb(target, start, data, sde_steps=400).sample(N, generator=gen())
    assert_moments(x, target)
    if target is MIXTURE_1D:
        assert_mixture_weights(x)


@pytest.mark.parametrize("start", ["convolved", "schrodinger_follmer"])
def test_lsb_loss_is_minimised_by_the_exact_noise(start: str) -> None:
    """The network reads c_in (x - a m) and the clock u; the oracle undoes that input map
    (a, s written here from the paper's paths, not read from the solver) and returns
    E[eps | X_t = x]. Denoising score matching on the right path has it as its minimiser."""
    solver = create_solver("lsb", 2, {"hidden": 8, "depth": 1, "start": start})
    z = GAUSSIAN.sample(200_000, gen(1)).float()
    solver.prepare(z)
    sigma, mean, var = solver.config.sigma, solver.data_mean.double(), float(solver.data_var)

    def eps(inp: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        t = solver.time_of(u)
        if start == "schrodinger_follmer":
            a, s = t, sigma * (t * (1 - t)).sqrt()
        else:
            a, s = torch.ones_like(t), sigma * (1 - t).sqrt()
        c_in = (a * a * var + s * s).rsqrt()
        x = inp.double() / c_in[:, None] + a[:, None] * mean
        return GAUSSIAN.noise(x, a, s)

    residual = optimality_residual(solver, OracleNet(eps, 2), z, seed=2)
    assert residual < 0.02, residual


# -- JKO: one exact step toward N(0, I) from a Gaussian --------------------------------------------
def jko_step(mean: torch.Tensor, cov: torch.Tensor, h: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The JKO step argmin_q KL(q || N(0, I)) + W2^2(q, p) / (2h) from p = N(m, S).

    The minimiser is the push-forward by an affine map T(x) = m / (1 + h) + A (x - m) (the
    first-order condition (x - T x) / h = grad log(q / N(0, I))(T x) is affine in x); in S's
    eigenbasis A = diag(a_i) minimises a^2 l / 2 - log a + (a - 1)^2 l / (2h) per eigenvalue
    l, whose positive root is a = (l + sqrt(l^2 + 4 l h (1 + h))) / (2 l (1 + h))
    (a = 1 at l = 1: N(m, I) -> N(m / (1 + h), I), Xu, Cheng, Xie 2023, Sec. 3)."""
    evals, evecs = torch.linalg.eigh(cov)
    a = (evals + (evals**2 + 4 * evals * h * (1 + h)).sqrt()) / (2 * evals * (1 + h))
    return mean / (1 + h), evecs @ torch.diag(a) @ evecs.T


class AffineFlow(torch.nn.Module):
    """The straight-line flow of T(x) = b + A (x - m) + m on s in [0, 1]:
    x(s) = x + s (T x - x), velocity v(y, s) = c + B (I + s B)^{-1} (y - m - s c), B = A - I,
    c = b; its divergence integrates to log det A."""

    def __init__(self, m: torch.Tensor, shift: torch.Tensor, linear: torch.Tensor,
                 time_scale: float):
        super().__init__()
        self.m, self.c, self.B, self.scale = m, shift, linear - torch.eye(len(m)), time_scale

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = float(torch.as_tensor(t).reshape(-1)[0]) / self.scale
        eye = torch.eye(len(self.m), dtype=self.B.dtype)
        gain = torch.linalg.solve(eye + s * self.B, self.B.T).T  # B (I + s B)^{-1}
        return self.c + (y - self.m - s * self.c) @ gain.T


def jko_with_exact_block(h: float):
    solver = create_solver("jko", 2, {"hidden": 8, "depth": 1, "h0": h, "max_blocks": 1})
    m = GAUSSIAN.mean.float()
    new_mean, linear = jko_step(GAUSSIAN.mean, GAUSSIAN.cov, h)
    flow = AffineFlow(m, (new_mean - GAUSSIAN.mean).float(), linear.float(), TIME_SCALE)
    solver.emas[0].module = flow
    solver.n_blocks.fill_(1)
    return solver, new_mean, linear


def test_jko_objective_is_the_closed_form_and_minimal_at_the_exact_step() -> None:
    h = 0.7
    solver, new_mean, linear = jko_with_exact_block(h)
    z = GAUSSIAN.sample(4000, gen(6)).float()
    moved = (GAUSSIAN.mean + (z.double() - GAUSSIAN.mean) @ linear.T) + (new_mean - GAUSSIAN.mean)
    exact = (0.5 * moved.pow(2).sum(1) - torch.linalg.slogdet(linear).logabsdet
             + (moved - z.double()).pow(2).sum(1) / (2 * h))
    got = solver.objective(0, z, method="dopri5", rtol=1e-7, atol=1e-7).double()
    assert (got - exact).abs().max() < 1e-3
    # Perturbing the exact map's mean or scale raises the population objective.
    base = float(got.mean())
    for shift, scale in ((0.1, 1.0), (-0.1, 1.0), (0.0, 1.05), (0.0, 0.95)):
        solver.emas[0].module = AffineFlow(
            GAUSSIAN.mean.float(), (new_mean - GAUSSIAN.mean + shift).float(),
            (scale * linear).float(), TIME_SCALE)
        other = float(solver.objective(0, z, method="dopri5", rtol=1e-7, atol=1e-7).mean())
        assert other > base, (shift, scale, other, base)


def test_jko_samples_and_log_prob_invert_the_exact_step() -> None:
    """One exact block maps the Gaussian to q = N(m / (1 + h), A S A); the solver samples by
    running it backward from N(0, I), i.e. returns T^{-1}(noise), and log_prob(z) is
    log N(T z; 0, I) + log det A (change of variables)."""
    h = 0.7
    solver, new_mean, linear = jko_with_exact_block(h)
    noise = torch.randn(N, 2, generator=gen(8)).double()
    x = solver.sample(N, generator=gen(8)).double()
    expected = GAUSSIAN.mean + torch.linalg.solve(linear, (noise - new_mean).T).T
    assert (x - expected).abs().max() < 1e-3
    z = GAUSSIAN.sample(300, gen(3)).float()
    moved = (new_mean + (z.double() - GAUSSIAN.mean) @ linear.T)
    truth = (-0.5 * moved.pow(2).sum(1) - math.log(2 * math.pi)
             + torch.linalg.slogdet(linear).logabsdet)
    assert (solver.log_prob(z).double() - truth).abs().max() < 1e-3
