"""Layer norms for DSGD: base norms with their duals, and the bound-mode layer constants.

A layer's parameters (weight ``W`` and bias ``b``) are viewed as one matrix
``[W | b]`` (the bias is an extra column; conv kernels are flattened to
``out x (in*kh*kw)``).  A *base norm* ``|||.|||`` on that matrix comes with its
dual norm ``|||.|||_*`` and a duality map ``rho`` with ``<G, rho(G)> = |||G|||_*^2``
and ``|||rho(G)||| = |||G|||_*``.

:func:`layer_curvature_bounds` gives, for an MLP with smooth activations, the
constant ``kappa_i(w) = L_i c_i(w)^2`` of the per-layer inequality

    f(w + u) <= f(w) + <D_i f(w), u> + (kappa_i(w) / 2) |||u|||^2   (u on layer i)

which holds uniformly while layer ``i`` moves (``kappa_i`` depends on the other
layers only).  The derivation is in ``docs/dsgd.md``.

References:
    Flynn, "The duality structure gradient descent algorithm: analysis and
    applications to neural networks", arXiv:1708.00523 (the layer-wise Finsler
    structure; the constants here are this project's own derivation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# ----------------------------------------------------------------------------- layer matrices


def layer_matrix(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[W | b]``: the weight flattened to ``out x fan_in`` with the bias (if any) as last column.

    Args:
        tensors: ``[weight]`` or ``[weight, bias]`` (or their gradients); a 1-D
            lone tensor is treated as a single row.
    """
    w = tensors[0]
    mat = w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(1, -1)
    if len(tensors) > 1:
        mat = torch.cat([mat] + [t.reshape(mat.shape[0], -1) for t in tensors[1:]], dim=1)
    return mat


def split_layer_matrix(mat: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Inverse of :func:`layer_matrix`: cut ``mat`` back into tensors shaped like ``like``."""
    sizes = [t.numel() // mat.shape[0] for t in like]
    return [piece.reshape(t.shape) for piece, t in zip(mat.split(sizes, dim=1), like)]


# ----------------------------------------------------------------------------- base norms


class BaseNorm:
    """A norm on layer matrices with its dual norm and duality map."""

    name: str = ""

    def norm(self, mat: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def dual_norm(self, mat: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def dual_map(self, mat: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class FrobeniusNorm(BaseNorm):
    """Self-dual: ``|||G|||_* = ||G||_F`` and ``rho(G) = G`` (plain gradient direction)."""

    name = "frobenius"

    def norm(self, mat: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(mat)

    dual_norm = norm

    def dual_map(self, mat: torch.Tensor) -> torch.Tensor:
        return mat


class SpectralNorm(BaseNorm):
    """Spectral norm; dual is the nuclear norm, ``rho(G) = ||G||_nuc U V^T`` for ``G = U S V^T``.

    ``U V^T`` is the orthogonalized gradient of Muon / spectral descent (Carlson et
    al. 2015); DSGD scales it by the nuclear norm, it is not normalized.
    """

    name = "spectral"

    def norm(self, mat: torch.Tensor) -> torch.Tensor:
        return torch.linalg.matrix_norm(mat, ord=2)

    def dual_norm(self, mat: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svdvals(mat).sum()

    def dual_map(self, mat: torch.Tensor) -> torch.Tensor:
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        # For a rank-deficient G the duality map is set-valued: any partial isometry that
        # agrees with U_r V_r^T on the range works. Singular vectors of (numerically) zero
        # singular values are rounding noise, so we take the canonical element U_r V_r^T
        # (for a rank-1 G that is exactly G); it is also what keeps data-parallel runs,
        # whose gradients differ from one process's by rounding, on the same path.
        tol = s.amax() * max(mat.shape) * torch.finfo(mat.dtype).eps
        keep = (s > tol).to(mat.dtype)
        return s.sum() * (u @ (keep[:, None] * vh))


BASE_NORMS: dict[str, BaseNorm] = {n.name: n for n in (FrobeniusNorm(), SpectralNorm())}


# ----------------------------------------------------------------------------- activations and losses


@dataclass(frozen=True)
class ActivationBounds:
    """Global bounds of a scalar activation sigma.

    Attributes:
        value: ``sup |sigma|`` (``inf`` if unbounded).
        at_zero: ``|sigma(0)|`` (with ``lipschitz`` it bounds unbounded activations).
        lipschitz: ``sup |sigma'|``.
        curvature: ``sup |sigma''|``.
    """

    value: float
    at_zero: float
    lipschitz: float
    curvature: float


#: Smooth activations supported by the bound mode (sup|sigma''| computed in docs/dsgd.md).
ACTIVATION_BOUNDS: dict[str, ActivationBounds] = {
    "tanh": ActivationBounds(1.0, 0.0, 1.0, 4.0 / (3.0 * math.sqrt(3.0))),
    "sigmoid": ActivationBounds(1.0, 0.5, 0.25, 1.0 / (6.0 * math.sqrt(3.0))),
    "softplus": ActivationBounds(math.inf, math.log(2.0), 1.0, 0.25),
}

#: ``(sup ||grad_z l||_2, sup ||Hess_z l||_op)`` of softmax cross-entropy in the logits.
CROSS_ENTROPY_BOUNDS: tuple[float, float] = (math.sqrt(2.0), 0.5)


def input_bound(X: torch.Tensor) -> float:
    """``B = max_s ||x_s||_2`` over the rows of ``X`` (samples flattened): DSGD's ``input_bound``.

    Compute it on every input the optimizer will see (the training set); the
    bound-mode guarantee assumes ``||x|| <= B`` for every sample of every batch.
    """
    return float(torch.linalg.vector_norm(X.reshape(X.shape[0], -1).double(), dim=1).max())


# ----------------------------------------------------------------------------- bound-mode constants


def layer_op_norms(layer: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(||W||_op, ||[W b]||_op)`` of one layer, exactly (SVD; power iteration would underestimate)."""
    w = layer[0].detach()
    op_w = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)
    op_full = torch.linalg.matrix_norm(layer_matrix([t.detach() for t in layer]), ord=2) if len(layer) > 1 else op_w
    return op_w, op_full


def layer_curvature_bounds(
    layers: Sequence[Sequence[torch.Tensor]],
    activations: Sequence[str],
    input_bound: float,
    loss_bounds: tuple[float, float] = CROSS_ENTROPY_BOUNDS,
    op_norms: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """``kappa_i = L_i c_i(w)^2`` for every layer of an MLP ``z_l = W_l h_{l-1} + b_l, h_l = sigma_l(z_l)``.

    For ``u`` on layer ``i`` and every value of ``W_i, b_i`` (the other layers
    fixed), ``|d^2/dt^2 f(w + t u)| <= kappa_i |||u|||^2`` for both base norms
    (both dominate the operator norm).  With ``A_{i-1}`` a bound on
    ``||[h_{i-1}; 1]||``, ``p_i = A_{i-1}, q_i = 0`` and for ``l > i``
    ``p_l = s1 ||W_l|| p_{l-1}``, ``q_l = ||W_l|| (s2 p_{l-1}^2 + s1 q_{l-1})``;
    then ``kappa_i = H p_k^2 + G q_k`` (docs/dsgd.md, section "Bound mode").

    Args:
        layers: per layer, ``[W]`` or ``[W, b]`` with ``W`` of shape ``out x in``,
            input to output.
        activations: activation after layers ``1..k-1`` (names of
            :data:`ACTIVATION_BOUNDS`); the output layer has none.
        input_bound: ``B >= ||x||`` for every input.
        loss_bounds: ``(G, H)``: bounds on the norm of the loss gradient and on the
            operator norm of its Hessian in the network output, per sample.
        op_norms: :func:`layer_op_norms` of every layer, if already known (DSGD
            caches them: one step changes one layer).

    Returns:
        A 1-D tensor of ``k`` constants (dtype/device of the weights).

    Raises:
        ValueError: unsupported activation or mismatched lengths.
    """
    k = len(layers)
    if len(activations) != k - 1:
        raise ValueError(f"expected {k - 1} activations for {k} layers, got {len(activations)}")
    acts = []
    for name in activations:
        if name not in ACTIVATION_BOUNDS:
            raise ValueError(
                f"bound mode needs smooth activations with bounded derivatives "
                f"({', '.join(ACTIVATION_BOUNDS)}); got {name!r}. Use mode='adaptive' for it."
            )
        acts.append(ACTIVATION_BOUNDS[name])
    grad_bound, hess_bound = loss_bounds
    if op_norms is None:
        op_norms = [layer_op_norms(layer) for layer in layers]
    op = [n[0] for n in op_norms]

    # a_bounds[i] bounds ||[h_{i-1}; 1]||, the input of layer i with the bias's constant 1.
    a_bounds = []
    h = op[0].new_tensor(float(input_bound))
    for i in range(k):
        a = torch.sqrt(h * h + (1.0 if len(layers[i]) > 1 else 0.0))
        a_bounds.append(a)
        if i < k - 1:
            width, s = layers[i][0].shape[0], acts[i]
            # |sigma(z)| <= |sigma(0)| + Lip |z| with ||z|| <= ||[W b]||_op ||a|| (layer i is upstream of
            # every layer that uses this bound, so it is fixed), and ||h|| <= sup|sigma| sqrt(n) if bounded.
            h = s.at_zero * math.sqrt(width) + s.lipschitz * op_norms[i][1] * a
            if math.isfinite(s.value):
                h = torch.clamp(h, max=s.value * math.sqrt(width))

    kappas = []
    for i in range(k):
        p, q = a_bounds[i], torch.zeros_like(a_bounds[i])
        for j in range(i + 1, k):
            s = acts[j - 1]
            p, q = s.lipschitz * op[j] * p, op[j] * (s.curvature * p * p + s.lipschitz * q)
        kappas.append(hess_bound * p * p + grad_bound * q)
    return torch.stack(kappas)
