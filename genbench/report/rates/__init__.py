"""Convergence-rate studies: power-law fits against theory (fit), the study over a sweep
(study) and its figures."""

from genbench.report.rates.fit import (
    FOURNIER_GUILLIN_ASSUMPTIONS,
    OKO_ASSUMPTIONS,
    PowerLawFit,
    empirical_measure_exponent,
    fit_power_law,
    memoriser_exponents,
    oko_tv_exponent,
    oko_w1_exponent,
    theory_exponents,
)
from genbench.report.rates.study import X_KEYS, analyse, main, rate_rows

__all__ = [
    "FOURNIER_GUILLIN_ASSUMPTIONS",
    "OKO_ASSUMPTIONS",
    "PowerLawFit",
    "X_KEYS",
    "analyse",
    "empirical_measure_exponent",
    "fit_power_law",
    "main",
    "memoriser_exponents",
    "oko_tv_exponent",
    "oko_w1_exponent",
    "rate_rows",
    "theory_exponents",
]
