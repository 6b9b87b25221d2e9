"""Hydra configs of genbench, installed as the package `genbench_configs`."""
