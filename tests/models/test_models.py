import math

import pytest
import torch

from beyondsgd.models import MLP, TwoLayerReLU, available_activations, create_model


@pytest.mark.parametrize("activation", available_activations())
def test_mlp_shapes_and_activation(activation):
    net = create_model("mlp", (1, 8, 8), 10, widths=(16, 8), activation=activation)
    assert isinstance(net, MLP)
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert [l.out_features for l in net.linear_layers()] == [16, 8, 10]


def test_cnn_on_digits_and_cifar_shapes():
    assert create_model("cnn", (1, 8, 8), 10)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert create_model("cnn", (3, 32, 32), 10)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="image inputs"):
        create_model("cnn", (40,), 10)


def test_two_layer_matches_formula():
    g = torch.Generator().manual_seed(1)
    net = TwoLayerReLU((5,), width=64, num_outputs=1, generator=g)
    x = torch.randn(7, 5)
    expected = sum(net.a[r, 0] * torch.relu(x @ net.W[r]) for r in range(64)) / math.sqrt(64)
    torch.testing.assert_close(net(x)[:, 0], expected)
    assert set(net.a.unique().tolist()) <= {-1.0, 1.0}
    assert [n for n, _ in net.named_parameters()] == ["W"]  # second layer is not trained


def test_init_scale_and_errors():
    torch.manual_seed(0)
    a = create_model("mlp", (4,), 2)
    torch.manual_seed(0)
    b = create_model("mlp", (4,), 2, init_scale=3.0)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(3 * pa, pb)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        create_model("resnet", (4,), 2)
    with pytest.raises(ValueError, match="unknown activation 'swish2'"):
        create_model("mlp", (4,), 2, activation="swish2")
    with pytest.raises(ValueError, match="bad option for model 'mlp'"):
        create_model("mlp", (4,), 2, depth=3)
    with pytest.raises(ValueError, match="init_scale"):
        create_model("mlp", (4,), 2, init_scale=0)
