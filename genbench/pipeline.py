"""Old import path of one job's pipeline, kept for scripts: see :mod:`genbench.run.pipeline`."""

from genbench.run.pipeline import *  # noqa: F403
from genbench.run.pipeline import __all__  # noqa: F401
