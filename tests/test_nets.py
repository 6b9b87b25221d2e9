"""TimeMLP: the first layer must not start blind to x; K networks at once equal K calls."""

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


@pytest.mark.parametrize("dim", [2, 5])
def test_forward_stacked_is_k_networks_on_their_own_inputs(dim):
    from torch.func import stack_module_state

    torch.manual_seed(0)
    nets = [TimeMLP(dim, hidden=16, depth=3) for _ in range(3)]  # three different inits
    params, _ = stack_module_state(nets)
    params = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    x = torch.randn(3, 7, dim) + torch.tensor([1.0, -2.0, 0.5])[:, None, None]
    t = torch.rand(3, 7)
    out = nets[0].forward_stacked(params, x, t)
    assert out.shape == (3, 7, dim)
    (out * torch.arange(1.0, dim + 1)).sum().backward()
    for k, net in enumerate(nets):
        ref = net(x[k], t[k])
        assert torch.allclose(out[k], ref, atol=1e-5)
        (ref * torch.arange(1.0, dim + 1)).sum().backward()
        for name, p in net.named_parameters():  # seed k's gradient lands in slice k only
            assert torch.allclose(params[name].grad[k], p.grad, atol=1e-5)
    # a network on another seed's inputs gives another output (the slices are not shared)
    assert not torch.allclose(out[1], nets[1](x[0], t[0]), atol=1e-3)
