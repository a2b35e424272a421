"""A small convolutional network for image data."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from beyondsgd.models.activations import make_activation


class SmallCNN(nn.Sequential):
    """Two conv blocks (conv 3x3 -> act -> 2x2 max-pool) and a linear classifier.

    Works for any image at least 4x4 pixels (8x8 digits up to 32x32 CIFAR).

    Args:
        input_shape: ``(channels, height, width)``.
        num_outputs: number of classes.
        channels: output channels of the two conv blocks.
        activation: activation name.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        channels: Sequence[int] = (16, 32),
        activation: str = "relu",
    ) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"SmallCNN needs image inputs with input_shape (channels, height, width); got {tuple(input_shape)}"
            )
        c, h, w = (int(s) for s in input_shape)
        if h < 4 or w < 4:
            raise ValueError(f"SmallCNN needs images of at least 4x4 pixels; got {h}x{w}")
        c1, c2 = (int(x) for x in channels)
        super().__init__(
            nn.Conv2d(c, c1, 3, padding=1),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            make_activation(activation),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * (h // 4) * (w // 4), num_outputs),
        )
        self.input_shape = (c, h, w)
        self.num_outputs = num_outputs
