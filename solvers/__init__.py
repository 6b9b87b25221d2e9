"""Built-in genbench solvers; importing this package registers each of them."""

from solvers import ddpm  # noqa: F401
