"""A validation split for tuning: rows held out of the training split, never the test points.

With ``eval.split=validation`` (``experiment=tune``) a job trains on the rest of its training
split and is scored on ``n`` held-out training rows, with ``n`` more as the floor's reference
sample; the data set's test and reference splits are dropped before the solver or the
harness is built, so a tuned setting is chosen without seeing a test point. The shared
encoder-decoder is fitted on the data set's own training split as usual (test points never
reach it either).
"""

from __future__ import annotations

from genbench.core.errors import ConfigError
from genbench.data import DataSplits

__all__ = ["validation_splits"]


def validation_splits(splits: DataSplits, n: int | None = None) -> DataSplits:
    """Validation and reference sets of ``n`` rows each (default: the test split's size, at
    most a quarter of the training rows), carved from the front of ``splits.train``.

    The training split is already a random draw (a seeded sample, or rows of a seeded
    permutation), so its first rows are a random subset of it.
    """
    n_train = len(splits.train)
    n = min(n or len(splits.test), n_train // 4)
    if n < 2:
        raise ConfigError(f"a validation split needs at least 8 training rows (2 validation, "
                          f"2 reference, the rest to train on), got {n_train}; raise "
                          "dataset.n_train")
    train = splits.train
    return DataSplits(f"{splits.name}", train=train[2 * n:], test=train[:n],
                      reference=train[n:2 * n], log_prob=splits.log_prob,
                      sampler=splits.sampler)
