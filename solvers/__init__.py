"""Built-in genbench solvers; importing this package registers each of them."""

from solvers import cfm, ddpm, jko, ladder, lsb, pfode  # noqa: F401
