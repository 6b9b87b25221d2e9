"""Old import path of the Solver contract, kept for plugins: see :mod:`genbench.core.solver`."""

from genbench.core.solver import *  # noqa: F403
from genbench.core.solver import __all__  # noqa: F401
