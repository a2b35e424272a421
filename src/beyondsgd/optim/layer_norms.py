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

import functools
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


#: Dtypes whose spectral quantities come from float64 products (the Gram matrix, or a gradient's factors):
#: exact to their own precision. float64 keeps the SVD (squaring would lose half of its digits).
GRAM_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _cheap(mat: torch.Tensor) -> bool:
    """The float64 Gram path is exact to the input's precision for inputs below float64."""
    return mat.dtype in GRAM_DTYPES and mat.numel() > 0


def _floored(evals: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Eigenvalues at or below ``floor`` (rounding noise) set to zero."""
    return torch.where(evals > floor, evals, torch.zeros_like(evals))


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
    evals = _floored(evals, _gram_floor(evals, mat))
    return evals.sqrt().flip(0).to(mat.dtype)


def _kept_inverse(s: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``1 / s`` for the singular values the duality map keeps, 0 for the rest (ascending ``s``).

    The cut ``s > s_max max(m, n) eps32`` is the float32 SVD's, for float32 and lower-precision
    gradients alike (see :meth:`SpectralNorm.dual_map`).
    """
    keep = s > s[-1] * max(shape) * torch.finfo(torch.float32).eps
    return torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))


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
        evals, evecs, wide = _gram_eigh(mat, vectors=True)
        assert evecs is not None
        s = _floored(evals, _gram_floor(evals, mat)).sqrt()
        proj = (evecs * _kept_inverse(s, mat.shape)) @ evecs.T  # U_r S_r^{-1} U_r^T (or V_r S_r^{-1} V_r^T)
        m = mat.to(torch.float64)
        iso = proj @ m if wide else m @ proj
        return (s.sum() * iso).to(mat.dtype)


BASE_NORMS: dict[str, BaseNorm] = {n.name: n for n in (FrobeniusNorm(), SpectralNorm())}


# ----------------------------------------------------------------------------- factored gradients


@dataclass(frozen=True)
class FactoredGradient:
    """A layer gradient ``G = D^T A`` kept as its factors, for its spectral norms from batch-sized problems.

    A Linear layer's batch gradient is ``[dW | db] = D^T [X | 1]`` (``D`` the ``N x out``
    output gradients, ``X`` the ``N x in`` inputs).  With ``L L^T = A A^T`` (``N x N``),
    ``G = B Q`` where ``B = D^T L`` and ``Q = L^+ A`` has orthonormal rows, so ``G`` and ``B``
    have the same singular values and ``U_r V_r^T`` of ``G`` is ``U_r W_r^T Q`` for
    ``B = U S W^T``: every spectral quantity comes from the ``N x N`` matrix ``B^T B``.  For a
    batch smaller than both sides of the layer that is far cheaper than the smaller Gram
    matrix of ``G`` (``out x out`` here); see :func:`factor_gradient`.

    Attributes:
        output_grads: ``D`` (``N x out``), float64.
        output_gram: ``D D^T`` (``N x N``), float64.
        factor_t: ``L^T`` (``r x N``).
        lower: ``L`` (``N x N``) from a Cholesky factorization, or ``None`` when ``A A^T`` is
            singular and ``L`` came from its eigendecomposition (then ``pinv`` is set).
        pinv: ``L^+`` (``r x N``) for the eigendecomposition case, else ``None``.
        inputs: ``A`` (``N x n``) in the gradient's precision (at least float32): it enters only the
            map's last product, which is taken in that precision, as the ``.grad`` it stands for is.
        floor: eigenvalues of ``B^T B`` at or below it are rounding noise (set to zero).
        dtype: the gradient's dtype (results are returned in it).
    """

    output_grads: torch.Tensor
    output_gram: torch.Tensor
    factor_t: torch.Tensor
    lower: torch.Tensor | None
    pinv: torch.Tensor | None
    inputs: torch.Tensor
    floor: torch.Tensor
    dtype: torch.dtype

    @property
    def shape(self) -> tuple[int, int]:
        """The gradient's shape ``(out, n)``."""
        return self.output_grads.shape[1], self.inputs.shape[1]

    @functools.cached_property
    def _b_gram(self) -> torch.Tensor:
        """``B^T B = L^T (D D^T) L`` (``N x N``, float64): scored by its eigenvalues, mapped by its eigenvectors."""
        return self.factor_t @ self.output_gram @ self.factor_t.T

    def _ascending_singular_values(self) -> torch.Tensor:
        """float64, from the eigenvalues of ``B^T B`` (``B`` itself is formed only for the map)."""
        return _floored(torch.linalg.eigvalsh(self._b_gram), self.floor).sqrt()

    def singular_values(self) -> torch.Tensor:
        """``G``'s singular values, largest first: ``r`` of them (at most ``N``; the other ``min(out, n) - r`` are 0)."""
        return self._ascending_singular_values().flip(0).to(self.dtype)

    def nuclear_norm(self) -> torch.Tensor:
        """``||G||_nuc``, the spectral norm's dual norm."""
        return self._ascending_singular_values().sum().to(self.dtype)

    def dual_map(self) -> torch.Tensor:
        """``||G||_nuc U_r V_r^T``, with the rank cut of :meth:`SpectralNorm.dual_map` (``out x n``)."""
        if self.factor_t.shape[0] == 0:  # inputs all zero: so is the gradient
            return torch.zeros(self.shape, dtype=self.dtype, device=self.inputs.device)
        evals, w = torch.linalg.eigh(self._b_gram)  # (the scores' matrix: B^T B, not formed again from B)
        s = _floored(evals, self.floor).sqrt()
        bt = self.factor_t @ self.output_grads
        right = (w * _kept_inverse(s, self.shape)) @ w.T @ bt  # (U_r W_r^T)^T = W S_r^{-1} W^T B^T
        if self.lower is not None:  # (U_r W_r^T L^{-1})^T: a triangular solve on the narrow side
            right = torch.linalg.solve_triangular(self.lower.T, right, upper=True)
        else:
            assert self.pinv is not None
            right = self.pinv.T @ right
        # The widest product (out x N x n) in the gradient's precision, the one .grad = D^T A is formed in:
        # its rounding is that of .grad itself, and in float32 it is ~2.4x faster than in float64 here.
        return ((right * s.sum()).T.to(self.inputs.dtype) @ self.inputs).to(self.dtype)


def factor_gradient(output_grads: torch.Tensor, inputs: torch.Tensor, dtype: torch.dtype) -> FactoredGradient:
    """:class:`FactoredGradient` of ``G = output_grads^T @ inputs``: its Gram matrices and factors in float64.

    ``L`` is the Cholesky factor of ``A A^T``; when that fails or one of its squared pivots is
    below ``sqrt(eps64)`` of the largest diagonal entry (inputs that are, or nearly are, linearly
    dependent, e.g. a sample repeated in the batch) it is ``P_r Lambda_r^{1/2}`` from the
    eigendecomposition, eigenvalues at the rounding level dropped.  Both are backward
    stable: the computed ``B^T B`` has the eigenvalues of ``G G^T`` perturbed by at most about
    ``N eps64 ||D||^2 ||A||^2``, so eigenvalues below ``max(m, n) eps64 ||D||_F^2 ||A||_F^2`` count
    as zero. The singular values they drop are below ``3e-7 ||D||_F ||A||_F`` for 785
    columns, under the float32 rounding of the ``.grad`` the factors reproduce.

    Args:
        output_grads: ``D`` (``N x out``).
        inputs: ``A`` (``N x n``), e.g. ``[X | 1]``; kept in the gradient's precision (at least
            float32) for the map's last product, converted to float64 for the Gram matrix.
        dtype: the gradient's dtype.
    """
    d = output_grads.to(torch.float64)
    a = inputs.to(torch.float64)
    product_inputs = inputs.to(torch.promote_types(torch.promote_types(dtype, inputs.dtype), torch.float32))
    gram = a @ a.T
    eps = torch.finfo(torch.float64).eps
    lower, info = torch.linalg.cholesky_ex(gram)
    pinv = None
    # A pivot near zero (a nearly repeated sample) would pass Cholesky but blow up L^{-1} in the map.
    pivots = lower.diagonal().square()
    if int(info) != 0 or not bool(pivots.min() > math.sqrt(eps) * gram.diagonal().max()):
        evals, vecs = torch.linalg.eigh(gram)
        keep = evals > evals[-1].clamp_min(0.0) * gram.shape[0] * eps
        root = evals[keep].sqrt()
        pinv = (vecs[:, keep] / root).T
        factor_t, lower = (vecs[:, keep] * root).T, None
    else:
        factor_t = lower.T  # (row-major: LAPACK's column-major L transposed, the fast product layout)
    d_gram = d @ d.T
    # ||D||_F^2 ||A||_F^2 from the two Gram matrices' traces (no pass over D or A).
    floor = max(d.shape[1], a.shape[1]) * eps * d_gram.trace() * gram.trace()
    return FactoredGradient(d, d_gram, factor_t, lower, pinv, product_inputs, floor, dtype)


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
