"""Gram matrices of the two-layer ReLU net: the infinite-width H_inf and the empirical NTK H(t).

For ``f(W, x) = m^{-1/2} sum_r a_r relu(w_r^T x)`` with only ``W`` trained and
``a_r = +-1`` (Du et al. 2019)::

    H(t)[i,j] = (1/m) x_i^T x_j sum_r 1{w_r^T x_i >= 0, w_r^T x_j >= 0}   (= J J^T)
    H_inf[i,j] = E_{w ~ N(0,I)} H[i,j] = x_i^T x_j (pi - arccos(cos_ij)) / (2 pi)

with ``cos_ij`` the cosine of the angle between ``x_i`` and ``x_j`` (for unit-norm
inputs ``cos_ij = x_i^T x_j``).

References:
    S. S. Du, X. Zhai, B. Poczos, A. Singh, "Gradient descent provably optimizes
    over-parameterized neural networks", ICLR 2019, eq. (3)-(4) and Assumption 3.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from beyondsgd.models.two_layer import TwoLayerReLU


def _as_matrix(X: Any, dtype: torch.dtype) -> torch.Tensor:
    # Lists straight to ``dtype``: torch.as_tensor(list) would round them to float32 first.
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(X, dtype=dtype)
    if X.dim() < 2:
        raise ValueError(f"X must have shape (n, ...) with n samples, got shape {tuple(X.shape)}")
    X = X.reshape(X.shape[0], -1).to(dtype)
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X contains NaN or infinite values")
    return X


def gram_inf(X: Any, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The infinite-width Gram matrix ``H_inf`` of the two-layer ReLU net.

    Exact formula (no sampling); one matrix product plus elementwise work done
    in place.  The cosine is clipped to ``[-1, 1]`` before ``arccos`` so rounding
    cannot produce NaN for (anti)parallel pairs, and the diagonal is set to its exact
    value ``||x_i||^2 / 2`` (angle 0): through ``arccos`` a cosine that rounds to
    ``1 - 1 ulp`` would give e.g. 0.2949999980 instead of 0.295 for ``[[0.1, 0.7, 0.3]]``.

    Args:
        X: inputs, shape ``(n, ...)`` (flattened per sample); tensor or array.
            The NTK analyses assume ``||x_i|| = 1``; other norms are allowed and
            give the exact expectation for those inputs.
        dtype: computation dtype (float64 by default: ``lambda_min`` is small).

    Returns:
        ``(n, n)`` symmetric tensor on ``X``'s device.

    Raises:
        ValueError: non-finite input, a zero row, or fewer than 2 dimensions.

    References:
        Du et al. 2019, eq. (4) (the closed form of the expectation is the
        arc-cosine kernel of degree 0 times ``x_i^T x_j``; Cho & Saul 2009).
    """
    X = _as_matrix(X, dtype)
    G = X @ X.T
    norms = G.diagonal().sqrt()
    if bool((norms == 0).any()):
        raise ValueError("X has a zero row: the angle to it (and H_inf) is undefined")
    inv = 1.0 / norms
    H = G * inv[:, None]  # cosines, built in one new buffer and then updated in place
    H.mul_(inv[None, :]).clamp_(-1.0, 1.0).arccos_()
    H.neg_().add_(math.pi).mul_(G).div_(2 * math.pi)
    H.diagonal().copy_(G.diagonal() / 2)  # exact: theta_ii = 0
    return H


def activation_patterns(W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``1{w_r^T x_i >= 0}`` as an ``(n, m)`` tensor of X's dtype."""
    return (X @ W.T >= 0).to(X.dtype)


@torch.no_grad()
def empirical_ntk(model: nn.Module, X: Any, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The empirical NTK ``H = J J^T`` of a model on inputs ``X``.

    For :class:`~beyondsgd.models.TwoLayerReLU` this is the closed form above
    (``a_r^2 = 1``; with several outputs the kernel is the same ``n x n`` block
    for every output).  Any other scalar-output model gets ``J J^T`` from
    autograd (``torch.func``), with ``J`` the Jacobian of the outputs with
    respect to all trainable parameters.

    Args:
        model: the network.
        X: inputs, shape ``(n, *input_shape)``.
        dtype: dtype of the result (and of the closed-form computation).

    Returns:
        ``(n, n)`` tensor.
    """
    if isinstance(model, TwoLayerReLU):
        Xf = _as_matrix(X, dtype).to(model.W.device)
        A = activation_patterns(model.W.detach().to(dtype), Xf)
        scale = (model.a.to(dtype) ** 2).mean(dim=1)  # = 1 for +-1 signs
        return (Xf @ Xf.T) * ((A * scale) @ A.T) / model.width
    return _autograd_ntk(model, torch.as_tensor(X)).to(dtype)


def _autograd_ntk(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())

    def f(p, x):
        out = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        if out.numel() != 1:
            raise ValueError("the autograd NTK supports scalar-output models only")
        return out.reshape(())

    with torch.enable_grad():
        jac = vmap(jacrev(f), in_dims=(None, 0))(params, X)
    J = torch.cat([j.reshape(X.shape[0], -1) for j in jac.values()], dim=1)
    return J @ J.T


@dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of a symmetric PSD Gram matrix.

    Attributes:
        eigenvalues: ascending, float64 numpy array.
        eigenvectors: columns match ``eigenvalues`` (orthonormal), numpy array.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def condition_number(self) -> float:
        """``lambda_max / lambda_min`` (``inf`` for a singular matrix)."""
        return self.lambda_max / self.lambda_min if self.lambda_min > 0 else math.inf


def spectrum(H: Any) -> Spectrum:
    """Eigen-decomposition (float64, symmetrized) of a Gram matrix."""
    H = torch.as_tensor(H).detach().to("cpu", torch.float64)
    if H.dim() != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {tuple(H.shape)}")
    vals, vecs = torch.linalg.eigh(0.5 * (H + H.T))
    return Spectrum(vals.numpy(), vecs.numpy())


def lambda_min(H: Any) -> float:
    """Smallest eigenvalue of a symmetric matrix (``lambda_0`` when ``H = H_inf``)."""
    H = torch.as_tensor(H).detach().to("cpu", torch.float64)
    return float(torch.linalg.eigvalsh(0.5 * (H + H.T))[0])


def condition_number(H: Any) -> float:
    """``lambda_max / lambda_min`` of a symmetric PSD matrix."""
    H = torch.as_tensor(H).detach().to("cpu", torch.float64)
    vals = torch.linalg.eigvalsh(0.5 * (H + H.T))
    return float(vals[-1] / vals[0]) if vals[0] > 0 else math.inf
