"""The two-layer ReLU network of the NTK analyses (Du et al. 2019).

    f(W, x) = (1/sqrt(m)) * sum_r a_r * relu(w_r^T x)

Only the first layer ``W`` (m x d) is trained; ``a_r`` are fixed random signs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn


class TwoLayerReLU(nn.Module):
    """Over-parameterized two-layer ReLU net with a fixed second layer.

    Args:
        input_shape: shape of one sample (flattened).
        width: hidden width ``m``.
        num_outputs: outputs ``k``; each gets its own fixed sign vector.
        generator: optional ``torch.Generator`` for reproducible initialization.

    Attributes:
        W: trained first layer, ``w_r(0) ~ N(0, I)``.
        a: fixed second layer (buffer), entries ``+-1``; the ``1/sqrt(m)`` factor is applied in forward.

    References:
        Du, Zhai, Poczos, Singh, "Gradient descent provably optimizes over-parameterized
        neural networks", ICLR 2019, eq. (1).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        width: int = 1000,
        num_outputs: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"invalid width={width!r}: expected a positive integer")
        d = math.prod(input_shape)
        self.input_shape = tuple(input_shape)
        self.width = int(width)
        self.num_outputs = int(num_outputs)
        self.W = nn.Parameter(torch.randn(width, d, generator=generator))
        signs = torch.randint(0, 2, (width, num_outputs), generator=generator).float() * 2 - 1
        self.register_buffer("a", signs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(x.flatten(1) @ self.W.T)  # (n, m)
        a = cast(torch.Tensor, self.a)  # a buffer (fixed signs), not a parameter
        return (h @ a) / math.sqrt(self.width)  # (n, k)
