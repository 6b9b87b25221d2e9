"""Convergence-rate studies: power-law fits against theory (fit), the study over a sweep
(study) and its figures."""

from genbench.report.rates.fit import (
    PowerLawFit,
    empirical_w2_exponent,
    fit_power_law,
    latent_sb_w2_exponent,
    oko_tv_exponent,
    oko_w1_exponent,
    theory_exponents,
)
from genbench.report.rates.study import X_KEYS, analyse, main, rate_rows

__all__ = [
    "PowerLawFit",
    "X_KEYS",
    "analyse",
    "empirical_w2_exponent",
    "fit_power_law",
    "latent_sb_w2_exponent",
    "main",
    "oko_tv_exponent",
    "oko_w1_exponent",
    "rate_rows",
    "theory_exponents",
]
