"""Built-in genbench solvers; importing this package registers each of them."""

from solvers import ddpm  # noqa: F401
from solvers import jko  # noqa: F401
from solvers import cfm, pfode  # noqa: F401
from solvers import lsb  # noqa: F401
