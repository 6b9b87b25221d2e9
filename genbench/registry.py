"""Old import path of the solver registry, kept for plugins: see :mod:`genbench.core.registry`."""

from genbench.core.registry import *  # noqa: F403
from genbench.core.registry import __all__  # noqa: F401
