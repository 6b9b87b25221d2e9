"""scikit-learn's 8x8 handwritten digits (1,797 images, shipped with the package, no download).

Pixels are scaled to ``[0, 1]``; the data set is finite, so the splits are fixed once by
``split_seed`` and the floor's second sample is a held-out split of the same size as the test set.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from genbench.data.registry import register_dataset

__all__ = ["digits_array"]


@register_dataset("digits")
def _digits(_params: object) -> np.ndarray:
    return digits_array()


def digits_array() -> np.ndarray:
    """All 1,797 images as a ``(1797, 64)`` float64 array in ``[0, 1]``."""
    return load_digits().data.astype(np.float64) / 16.0
