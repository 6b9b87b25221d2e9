"""``python -m genbench``: the Hydra command line (:mod:`genbench.sweep.cli`)."""

from genbench.sweep.cli import main

if __name__ == "__main__":
    main()
