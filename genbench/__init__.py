"""genbench: generative solvers compared fairly in one shared latent space.

Every solver learns the same target in the latent space of one shared, frozen
encoder-decoder, and one harness scores them all (W2 beside its sample-noise floor, TV,
MMD, NLL, NFE, timings). Entry points: :func:`genbench.run.pipeline.run` (one job),
:mod:`genbench.core.registry` (solvers, plugins included), the ``genbench`` Hydra app.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genbench")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
