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


def _gram_eigh(mat: torch.Tensor, vectors: bool) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Eigen-decomposition of the smaller Gram matrix of ``mat``, formed and solved in float64.

    Returns ``(eigenvalues ascending, eigenvectors or None, wide)``; ``wide`` is true
    when the Gram matrix is ``mat mat^T`` (rows <= columns), else it is ``mat^T mat``.
    """
    m = mat.to(torch.float64)
    wide = mat.shape[0] <= mat.shape[1]
    gram = m @ m.T if wide else m.T @ m
    if vectors:
        evals, evecs = torch.linalg.eigh(gram)
        return evals, evecs, wide
    return torch.linalg.eigvalsh(gram), None, wide


def _gram_floor(evals: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the Gram matrix at or below its float64 rounding level, ``max(m, n) eps64 lambda_max``."""
    return evals[-1].clamp_min(0.0) * max(mat.shape) * torch.finfo(torch.float64).eps


def _cheap(mat: torch.Tensor) -> bool:
    """The float64 Gram path is exact to the input's precision for inputs below float64."""
    return mat.dtype in (torch.float32, torch.float16, torch.bfloat16) and mat.numel() > 0


def singular_values(mat: torch.Tensor) -> torch.Tensor:
    """Singular values of a matrix, descending, in ``mat``'s dtype; cheaply for float32 and below.

    For inputs below float64 they are the square roots of the eigenvalues of the smaller
    Gram matrix (``G G^T`` or ``G^T G``) formed and solved in float64 (``eigvalsh``, several
    times faster than ``svdvals`` on CPU).  Squaring doubles the relative rounding of small
    singular values, but in float64 that stays below float32's own rounding for every
    singular value above ``sqrt(max(m, n) eps64) sigma_max`` (about ``3e-7 sigma_max`` for
    ``785`` columns); eigenvalues below the Gram's rounding level ``max(m, n) eps64
    lambda_max`` (the zero singular values of a rank-deficient gradient, which would
    otherwise come out as ``sqrt`` of rounding noise) are set to zero.  float64 inputs use
    ``torch.linalg.svdvals``.

    Args:
        mat: a 2-D tensor.

    Returns:
        The ``min(m, n)`` singular values, largest first.
    """
    if not _cheap(mat):
        return torch.linalg.svdvals(mat)
    evals, _, _ = _gram_eigh(mat, vectors=False)
    evals = torch.where(evals > _gram_floor(evals, mat), evals, torch.zeros_like(evals))
    return evals.sqrt().flip(0).to(mat.dtype)


class SpectralNorm(BaseNorm):
    """Spectral norm; dual is the nuclear norm, ``rho(G) = ||G||_nuc U V^T`` for ``G = U S V^T``.

    ``U V^T`` is the orthogonalized gradient of Muon / spectral descent (Carlson et
    al. 2015); DSGD scales it by the nuclear norm, it is not normalized.  Norms come
    from :func:`singular_values` (the float64 Gram matrix for float32 and below); the
    map too: ``U_r V_r^T = U_r S_r^{-1} U_r^T G`` from the eigenvectors of ``G G^T``
    (``G V_r S_r^{-1} V_r^T`` from ``G^T G`` for a tall ``G``).
    """

    name = "spectral"

    def norm(self, mat: torch.Tensor) -> torch.Tensor:
        if not _cheap(mat):
            return torch.linalg.matrix_norm(mat, ord=2)
        evals, _, _ = _gram_eigh(mat, vectors=False)
        return evals[-1].clamp_min(0.0).sqrt().to(mat.dtype)

    def dual_norm(self, mat: torch.Tensor) -> torch.Tensor:
        return singular_values(mat).sum()

    def dual_map(self, mat: torch.Tensor) -> torch.Tensor:
        # For a rank-deficient G the duality map is set-valued: any partial isometry that
        # agrees with U_r V_r^T on the range works. Singular vectors of (numerically) zero
        # singular values are rounding noise, so we take the canonical element U_r V_r^T
        # (for a rank-1 G that is exactly G); it is also what keeps data-parallel runs,
        # whose gradients differ from one process's by rounding, on the same path.
        # The rank cut is relative to the precision of the computation: sigma > sigma_max max(m, n) eps,
        # with float64's eps for the float64 SVD and float32's for the Gram path (float32 inputs keep
        # the cut of the float32 SVD they had; for bfloat16/float16, whose eps times the width can
        # exceed 1, a cut at their own eps would drop every singular value).
        if not _cheap(mat):
            u, s, vh = torch.linalg.svd(mat, full_matrices=False)
            keep = (s > s.amax() * max(mat.shape) * torch.finfo(mat.dtype).eps).to(mat.dtype)
            return s.sum() * (u @ (keep[:, None] * vh))
        eps = torch.finfo(torch.float32).eps
        evals, evecs, wide = _gram_eigh(mat, vectors=True)
        assert evecs is not None
        s = torch.where(evals > _gram_floor(evals, mat), evals, torch.zeros_like(evals)).sqrt()
        keep = s > s[-1] * max(mat.shape) * eps
        inv = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
        proj = (evecs * inv) @ evecs.T  # U_r S_r^{-1} U_r^T (or V_r S_r^{-1} V_r^T)
        m = mat.to(torch.float64)
        iso = proj @ m if wide else m @ proj
        return (s.sum() * iso).to(mat.dtype)


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
    """``(||W||_op, ||[W b]||_op)`` of one layer, exactly (power iteration would underestimate).

    From the largest eigenvalue of the float64 Gram matrix for float32 and below (see
    :func:`singular_values`), else ``matrix_norm(ord=2)``.
    """
    w = layer[0].detach()
    spectral = BASE_NORMS["spectral"]
    op_w = spectral.norm(w.reshape(w.shape[0], -1))
    op_full = spectral.norm(layer_matrix([t.detach() for t in layer])) if len(layer) > 1 else op_w
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
