"""The errors genbench raises for bad input, each naming what was wrong and what is allowed."""

from __future__ import annotations

__all__ = [
    "CapabilityError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "UnknownNameError",
]


class ConfigError(ValueError):
    """A configuration value is missing, misspelt or of the wrong type."""


class UnknownNameError(KeyError, ConfigError):
    """No component (solver, data set, codec) is registered under the requested name."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class DataError(ValueError):
    """Training or evaluation data of the wrong shape, empty, or not finite."""


class CapabilityError(NotImplementedError):
    """The solver does not offer the requested capability (e.g. ``log_prob``)."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss; the job stops cleanly."""
