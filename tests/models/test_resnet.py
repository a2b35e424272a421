"""The small ResNet: shapes, registry, BatchNorm, the residual addition, and one training step."""

import pytest
import torch
from torch import nn

from beyondsgd.models import BasicBlock, SmallResNet, available_models, create_model


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32), (1, 4, 4)])
def test_shapes_and_registry(shape):
    assert "resnet_small" in available_models()
    net = create_model("resnet-small", shape, 10)
    assert isinstance(net, SmallResNet)
    assert net(torch.randn(3, *shape)).shape == (3, 10)
    n = sum(p.numel() for p in net.parameters())
    assert 5_000 < n < 100_000


def test_has_batchnorm_and_residual_blocks():
    net = create_model("resnet_small", (1, 28, 28), 10)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) >= 5
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 3
    assert isinstance(blocks[0].shortcut, nn.Identity)  # same channels, same resolution: identity shortcut
    assert not isinstance(blocks[1].shortcut, nn.Identity)  # projection where channels change


def test_forward_adds_the_shortcut_to_the_residual_branch():
    torch.manual_seed(0)
    block = BasicBlock(4, 4).eval()
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(x + block.residual(x)))
    with torch.no_grad():  # zero the last BN's scale: the branch vanishes, the block is relu(x)
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    torch.testing.assert_close(block(x), torch.relu(x))


def test_one_training_step_lowers_the_loss_on_its_batch():
    torch.manual_seed(0)
    net = create_model("resnet_small", (1, 12, 12), 3)
    x, y = torch.randn(16, 1, 12, 12), torch.randint(0, 3, (16,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss0 = nn.functional.cross_entropy(net(x), y)
    opt.zero_grad()
    loss0.backward()
    before = [p.detach().clone() for p in net.parameters()]
    opt.step()
    assert all(p.grad is not None for p in net.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert nn.functional.cross_entropy(net(x), y).item() < loss0.item()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="image inputs"):
        create_model("resnet_small", (40,), 10)
    with pytest.raises(ValueError, match="at least 4x4"):
        create_model("resnet_small", (1, 3, 3), 10)
    with pytest.raises(ValueError, match="channels"):
        create_model("resnet_small", (1, 8, 8), 10, channels=(8, 0))
    with pytest.raises(ValueError, match="bad option"):
        create_model("resnet_small", (1, 8, 8), 10, width=3)
