"""A small ResNet-style network (BatchNorm + residual connections) for small images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from beyondsgd.models.activations import make_activation


class BasicBlock(nn.Module):
    """``act(x' + F(x))`` with ``F = conv3x3 -> BN -> act -> conv3x3 -> BN``.

    ``x'`` is ``x`` itself, or a 1x1 strided conv + BN when the block changes the channel
    count or the resolution (the "projection shortcut" of He et al. 2016, option B).

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        stride: stride of the first conv (2 halves the resolution).
        activation: activation name.

    References:
        K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = make_activation(activation)
        self.shortcut: nn.Module
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = nn.Identity()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch ``F(x)`` (before the addition)."""
        return self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``act(shortcut(x) + F(x))``."""
        return self.act2(self.shortcut(x) + self.residual(x))


class SmallResNet(nn.Module):
    """A small ResNet: stem conv -> BN -> act, one :class:`BasicBlock` per stage, global average pool, linear.

    With the default ``channels=(8, 16, 32)`` it has about 20k parameters (10 classes; 78k with ``(16, 32, 64)``), small
    enough that a few thousand 28x28 images train in seconds per epoch on a CPU core; every
    stage after the first halves the resolution.  BatchNorm makes the conv weights scale
    invariant (the output of ``conv -> BN`` does not change when the conv weight is scaled),
    one of the mechanisms by which multiplicative updates may behave differently there.

    Args:
        input_shape: ``(channels, height, width)``; any image of at least 4x4 pixels.
        num_outputs: number of classes.
        channels: output channels of the stages (the stem has ``channels[0]``); at least one.
        activation: activation name (:func:`beyondsgd.models.available_activations`).

    Raises:
        ValueError: non-image ``input_shape``, images smaller than 4x4, or bad ``channels``.

    References:
        K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016.
        S. Ioffe, C. Szegedy, "Batch normalization", ICML 2015.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        channels: Sequence[int] = (8, 16, 32),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"SmallResNet needs image inputs with input_shape (channels, height, width); got {tuple(input_shape)}"
            )
        c, h, w = (int(s) for s in input_shape)
        if h < 4 or w < 4:
            raise ValueError(f"SmallResNet needs images of at least 4x4 pixels; got {h}x{w}")
        chans = tuple(int(x) for x in channels)
        if not chans or any(x < 1 for x in chans):
            raise ValueError(f"invalid channels={tuple(channels)!r}: expected one or more positive integers")
        if num_outputs < 1:
            raise ValueError(f"invalid num_outputs={num_outputs!r}: expected a positive integer")
        self.stem = nn.Sequential(
            nn.Conv2d(c, chans[0], 3, padding=1, bias=False), nn.BatchNorm2d(chans[0]), make_activation(activation)
        )
        blocks = []
        prev = chans[0]
        for i, ch in enumerate(chans):
            stride = 1 if i == 0 or min(h, w) >> i < 2 else 2
            blocks.append(BasicBlock(prev, ch, stride, activation))
            prev = ch
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(prev, num_outputs)
        self.input_shape = (c, h, w)
        self.num_outputs = num_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(n, num_outputs)`` for a batch ``(n, c, h, w)``."""
        return self.head(self.pool(self.blocks(self.stem(x))).flatten(1))
