"""TimeMLP's initialisation: the first layer must not start blind to x."""

from __future__ import annotations

import math

import pytest
import torch

from solvers.nets import TimeMLP


@pytest.mark.parametrize("dim", [2, 10])
def test_x_columns_are_initialised_as_a_layer_reading_x_alone(dim):
    torch.manual_seed(0)
    net = TimeMLP(dim, hidden=256, depth=2)
    first = net.layers[0].weight.detach()
    x_cols, t_cols = first[:, :dim], first[:, dim:]
    # PyTorch's default bound for the whole layer, and the one for a layer reading x alone.
    default = 1 / math.sqrt(dim + net.embed.n_features)
    assert t_cols.abs().max() <= default
    assert x_cols.abs().max() <= 1 / math.sqrt(dim) + 1e-7
    # Uniform on [-b, b]: the std is b / sqrt(3); the x columns must reach the x-alone scale.
    assert x_cols.std() == pytest.approx(1 / math.sqrt(3 * dim), rel=0.1)
    assert x_cols.std() > 1.5 * default / math.sqrt(3)
