"""Output losses R(z_L; Y) of the alternating-minimization trainers and their proximal maps.

Both work per sample ("sum form": the value of sample i and the prox of
``R_i(z) + (rho/2)||z - v_i||^2``), vectorized over the batch.  The trainer
divides sums by the batch size, so ``R`` is the *mean* loss the runner uses
(``F.cross_entropy`` / ``F.mse_loss``).
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class OutputLoss(abc.ABC):
    """A loss whose per-sample proximal map the ``z_L`` block needs."""

    name = ""

    @abc.abstractmethod
    def sum(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``sum_i R_i(z_i; y_i)`` (0-d), such that ``sum / N`` is the runner's mean loss."""

    @abc.abstractmethod
    def prox(self, v: torch.Tensor, y: torch.Tensor, rho: float, start: torch.Tensor) -> torch.Tensor:
        """``argmin_z sum_i R_i(z_i) + (rho/2)||z - v||^2`` (separable over samples).

        Args:
            v: centres, ``(m, C)``.
            y: targets of the batch.
            rho: weight of the quadratic.
            start: warm start for iterative solvers (e.g. the previous ``z_L``).
        """

    def target(self, y: torch.Tensor, num_outputs: int, dtype: torch.dtype) -> torch.Tensor:
        """Initial ``z_L`` when started at the labels (mDLAM: +1 at the label, -1 elsewhere)."""
        raise NotImplementedError

    @abc.abstractmethod
    def check_targets(self, y: torch.Tensor, num_outputs: int) -> torch.Tensor:
        """``y`` checked against the model's ``num_outputs`` and put in the form the loss uses.

        Raises:
            ValueError: targets this loss cannot take, naming what was found and what is allowed.
        """


class CrossEntropy(OutputLoss):
    """Softmax cross-entropy; prox by Nesterov's method for strongly convex functions.

    The objective ``CE(z) + (rho/2)||z - v||^2`` per sample has gradient
    ``softmax(z) - e_y + rho (z - v)``; the Hessian of CE is bounded by 1/2
    (Böhning's bound), so the gradient is ``(rho + 1/2)``-Lipschitz and the
    function ``rho``-strongly convex: constant momentum
    ``(sqrt(k) - 1)/(sqrt(k) + 1)`` with ``k = (rho + 1/2)/rho`` converges
    linearly, no Newton step or matrix inverse needed.

    With label smoothing ``s`` the target is ``q = (1 - s) e_y + s/C`` and the
    gradient ``softmax(z) - q + rho (z - v)``: the same bounds hold.

    Args:
        max_iters: inner iteration cap (the predecessors use 500).
        tol: stop when every sample's gradient norm is below ``tol``.
        reduce_max: under data parallelism, the maximum over ranks (samples are
            split across ranks, and the stopping test is global: every sample's
            ``z`` depends on the iteration count, so all ranks must stop together).
            ``None``: one process.
        label_smoothing: as in ``F.cross_entropy``, in ``[0, 1)``.
        stopping: when the inner solver stops. ``"bound"``: after the number of iterations
            that provably brings every sample's gradient norm below ``tol``
            (:meth:`iterations_bound`), with no host sync; ``"test"``: when the largest
            gradient norm is below ``tol``, tested every 10 iterations (one host sync per
            test; fewer iterations, since the bound is worst-case); ``"auto"``: ``"bound"`` on
            accelerators, where a sync stalls the device, ``"test"`` on CPU, where it costs
            nothing. The project's choice (the papers do not specify the inner solver).
            Either way the bound falls back to the test when it exceeds ``max_iters``.
    """

    name = "cross_entropy"

    #: Values of ``stopping``.
    STOPPING = ("auto", "bound", "test")

    def __init__(
        self,
        max_iters: int = 500,
        tol: float = 1e-4,
        reduce_max: Callable[[float], float] | None = None,
        label_smoothing: float = 0.0,
        stopping: str = "auto",
    ) -> None:
        if stopping not in self.STOPPING:
            raise ValueError(f"CrossEntropy: stopping={stopping!r}; expected one of {', '.join(self.STOPPING)}")
        self.max_iters, self.tol = int(max_iters), float(tol)
        self.reduce_max = reduce_max
        self.label_smoothing = float(label_smoothing)
        self.stopping = stopping
        self.last_iters = 0

    def _soft_target(self, y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
        q = F.one_hot(y, num_classes).to(dtype)
        s = self.label_smoothing
        return q if s == 0.0 else (1.0 - s) * q + s / num_classes

    def _converged(self, z: torch.Tensor, onehot: torch.Tensor, v: torch.Tensor, rho: float, dim: int = 1) -> bool:
        # sqrt(sum of squares) rather than torch.linalg.vector_norm: over the classes dimension
        # of the (classes x samples) layout that is ~30x slower (benchmarks/bench_am_kernels.py).
        # Overflow is no new risk: a square overflows where an entry exceeds ~1e19, and
        # vector_norm (float32, no rescaling) overflows there too (tested).
        norms = self._grad(z, onehot, v, rho, dim).square_().sum(dim).sqrt_()
        if self.reduce_max is None:
            return float(norms.max()) <= self.tol
        return self.reduce_max(float(norms.max()) if norms.numel() else 0.0) <= self.tol

    def sum(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(z, y, reduction="sum", label_smoothing=self.label_smoothing)

    def check_targets(self, y: torch.Tensor, num_outputs: int) -> torch.Tensor:
        """Class indices of shape ``(N,)`` in ``[0, num_outputs)``, any integer dtype (returned as int64).

        Float targets are refused: for ``F.cross_entropy`` they mean class probabilities,
        which the prox does not implement.
        """
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(
                f"cross-entropy targets must be integer class indices of shape (N,); got dtype {y.dtype} with shape "
                f"{tuple(y.shape)} (class-probability targets are not supported by the cross-entropy prox; "
                "integer-valued float labels: pass y.long())"
            )
        if y.dim() != 1:
            raise ValueError(f"cross-entropy targets must be class indices of shape (N,); got shape {tuple(y.shape)}")
        y = y.long()
        if y.numel():
            lo, hi = (int(v) for v in torch.aminmax(y))
            if lo < 0 or hi >= num_outputs:
                raise ValueError(
                    f"cross-entropy targets must be class indices in [0, {num_outputs}) for the model's "
                    f"{num_outputs} outputs; found values from {lo} to {hi}"
                )
        return y

    def _grad(self, z: torch.Tensor, onehot: torch.Tensor, v: torch.Tensor, rho: float, dim: int = 1) -> torch.Tensor:
        d = z - v
        if rho != 1.0:  # (x * 1.0 == x: the pass is skipped at the default rho = 1, same bits)
            d.mul_(rho)
        return torch.softmax(z, dim=dim).sub_(onehot).add_(d)

    #: Iterate on the transpose (classes x samples) on CPU: torch's softmax over a short last
    #: dimension (10 classes) is about 20x slower there than over the first dimension of the
    #: transpose (benchmarks/bench_tiam.py). The same iteration; only the summation order
    #: inside the softmax differs (equal to rounding, tested). ``False``: samples x classes.
    classes_first_on_cpu = True

    def prox(self, v: torch.Tensor, y: torch.Tensor, rho: float, start: torch.Tensor) -> torch.Tensor:
        onehot = self._soft_target(y, v.shape[1], v.dtype)
        if self.classes_first_on_cpu and v.device.type == "cpu":
            return self._nesterov(v.T.contiguous(), onehot.T.contiguous(), rho, start.T.contiguous(), 0).T.contiguous()
        return self._nesterov(v, onehot, rho, start.clone(), 1)

    def iterations_bound(self, rho: float) -> int | None:
        """Inner iterations that provably bring every sample's gradient norm below ``tol``.

        With ``mu = rho``, ``L = rho + 1/2`` and the start within ``D`` of the minimizer,
        Nesterov's constant-momentum method gives ``f(z_k) - f* <= (1 - sqrt(mu/L))^k
        (f(z_0) - f* + (mu/2) D^2)`` (Nesterov 2004, Thm 2.2.3 with ``gamma_0 = mu``), and
        ``f(z_0) - f* <= (L/2) D^2``, ``||grad f||^2 <= 2 L (f - f*)``; so
        ``||grad f(z_k)||^2 <= L (L + mu) (1 - sqrt(mu/L))^k D^2``. The minimizer satisfies
        ``rho (z* - v) = q - softmax(z*)``, a difference of two probability vectors, so
        ``||z* - v|| <= sqrt(2)/rho``; the start is moved into that ball (:meth:`_start_in_ball`),
        hence ``D <= 2 sqrt(2)/rho``. At ``rho = 1``, ``tol = 1e-4``: 13 iterations.

        Returns:
            That count, or ``None`` when it exceeds ``max_iters`` (small ``rho``): the solver then
            tests convergence instead (one host sync per test).
        """
        mu, lip = rho, rho + 0.5
        d_sq = 8.0 / (rho * rho)
        contraction = -math.log1p(-math.sqrt(mu / lip))
        k = math.ceil(math.log(lip * (lip + mu) * d_sq / (self.tol * self.tol)) / contraction)
        k = max(k, 1)
        return k if k <= self.max_iters else None

    @staticmethod
    def _start_in_ball(z: torch.Tensor, v: torch.Tensor, rho: float, dim: int) -> torch.Tensor:
        """``z`` projected, per sample, on the ball of radius ``sqrt(2)/rho`` around ``v``.

        The minimizer lies in that ball, so the projection only moves a start closer to it.
        Starts already inside are kept bit for bit. No host sync.
        """
        radius = math.sqrt(2.0) / rho
        d = z - v
        norm = d.square().sum(dim, keepdim=True).sqrt_()
        scale = (radius / norm).clamp_(max=1.0)
        return torch.where(norm > radius, d.mul_(scale).add_(v), z)

    def _nesterov(self, v: torch.Tensor, onehot: torch.Tensor, rho: float, z: torch.Tensor, dim: int) -> torch.Tensor:
        """Nesterov's constant-momentum method from ``z`` (a fresh tensor); classes along ``dim``.

        With ``stopping="bound"`` (``"auto"`` off the CPU) and :meth:`iterations_bound` within
        ``max_iters``, the start is moved into the ball around ``v`` that holds the minimizer
        and exactly that many iterations run, with no stopping test: no host sync (and no
        all-reduce across ranks). Otherwise convergence is tested every 10 iterations (one
        host sync per test).
        """
        step = 1.0 / (rho + 0.5)
        kappa = (rho + 0.5) / rho
        beta = (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)
        use_bound = self.stopping == "bound" or (self.stopping == "auto" and v.device.type != "cpu")
        bound = self.iterations_bound(rho) if use_bound else None
        if bound is not None:
            z = self._start_in_ball(z, v, rho, dim)
        limit = self.max_iters if bound is None else bound
        z_prev = z
        it = 0
        while it < limit:
            w = z + beta * (z - z_prev)
            z_prev, z = z, w.sub_(self._grad(w, onehot, v, rho, dim).mul_(step))
            it += 1
            # Without a bound, convergence is checked every 10 iterations: one host sync per check.
            if bound is None and it % 10 == 0 and self._converged(z, onehot, v, rho, dim):
                break
        self.last_iters = it
        return z

    def target(self, y: torch.Tensor, num_outputs: int, dtype: torch.dtype) -> torch.Tensor:
        return 2.0 * F.one_hot(y, num_outputs).to(dtype) - 1.0


class Squared(OutputLoss):
    """Mean squared error over all entries (``F.mse_loss``): closed-form prox.

    ``R = (1/(N C)) sum_i ||z_i - y_i||^2``, so per sample ``R_i = ||z_i - y_i||^2 / C``
    and ``prox = (2 y / C + rho v) / (2 / C + rho)``.
    """

    name = "squared"

    def _shape(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return y.reshape(like.shape).to(like.dtype)

    def sum(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (z - self._shape(y, z)).pow(2).sum() / z.shape[1]

    def prox(self, v: torch.Tensor, y: torch.Tensor, rho: float, start: torch.Tensor) -> torch.Tensor:
        c = 2.0 / v.shape[1]
        return (c * self._shape(y, v) + rho * v) / (c + rho)

    def target(self, y: torch.Tensor, num_outputs: int, dtype: torch.dtype) -> torch.Tensor:
        return y.reshape(-1, num_outputs).to(dtype)

    def check_targets(self, y: torch.Tensor, num_outputs: int) -> torch.Tensor:
        """Targets of shape ``(N, num_outputs)`` (or ``(N,)`` for one output), finite; returned as ``(N, C)``.

        Integer targets are returned in the default float dtype (``F.mse_loss`` needs floats).
        """
        n = y.shape[0] if y.dim() else 0
        shapes = f"(N, {num_outputs})" + (" or (N,)" if num_outputs == 1 else "")
        if y.dim() == 0 or not (tuple(y.shape) == (n, num_outputs) or (num_outputs == 1 and y.dim() == 1)):
            raise ValueError(
                f"MSE targets must have shape {shapes} for the model's {num_outputs} outputs; got {tuple(y.shape)}"
            )
        if not y.is_floating_point():
            y = y.to(torch.get_default_dtype())
        bad = int((~torch.isfinite(y)).sum())
        if bad:
            raise ValueError(f"MSE targets contain {bad} NaN or inf values")
        return y.reshape(n, num_outputs)


def _loss_kind(loss_fn: Any) -> tuple[str, dict[str, Any], str]:
    """``(kind, options, description)`` of a loss given as a function, a ``functools.partial`` or a module."""
    if isinstance(loss_fn, functools.partial) and not loss_fn.args:
        kind, opts, desc = _loss_kind(loss_fn.func)
        return kind, {**opts, **loss_fn.keywords}, f"functools.partial({desc}, ...)"
    if loss_fn is F.cross_entropy:
        return "ce", {}, "F.cross_entropy"
    if loss_fn is F.mse_loss:
        return "mse", {}, "F.mse_loss"
    if type(loss_fn) is nn.CrossEntropyLoss:
        opts = {"weight": loss_fn.weight, "reduction": loss_fn.reduction, "label_smoothing": loss_fn.label_smoothing}
        return "ce", {**opts, "ignore_index": loss_fn.ignore_index}, "nn.CrossEntropyLoss"
    if type(loss_fn) is nn.MSELoss:
        return "mse", {"reduction": loss_fn.reduction}, "nn.MSELoss"
    raise ValueError(
        "alternating minimization supports the output losses torch.nn.functional.cross_entropy "
        "and torch.nn.functional.mse_loss (as functions, functools.partial or the modules nn.CrossEntropyLoss(), "
        f"nn.MSELoss()); got {loss_fn!r}"
    )


def output_loss_for(
    loss_fn: Any,
    prox_iters: int = 500,
    prox_tol: float = 1e-4,
    reduce_max: Callable[[float], float] | None = None,
    y: torch.Tensor | None = None,
    prox_stopping: str = "auto",
) -> OutputLoss:
    """The :class:`OutputLoss` (with its prox) matching the runner's or the user's ``loss_fn``.

    Supported options: ``reduction="mean"`` (the objective's scale), ``label_smoothing``
    (cross-entropy: in the prox), ``ignore_index`` when no target equals it. Refused by
    name: class ``weight``, other reductions, any other option.

    Args:
        loss_fn: ``F.cross_entropy``, ``F.mse_loss``, a ``functools.partial`` of one of them
            with keyword options, ``nn.CrossEntropyLoss(...)`` or ``nn.MSELoss(...)``.
        prox_iters, prox_tol: the cross-entropy prox's inner solver.
        reduce_max: the maximum over ranks, for the cross-entropy prox's global stopping test.
        y: the targets, to check ``ignore_index`` against (``None``: not checked).
        prox_stopping: ``stopping`` of :class:`CrossEntropy`.

    Raises:
        ValueError: another loss, or an option the prox does not implement.
    """
    kind, opts, desc = _loss_kind(loss_fn)
    opts = dict(opts)
    reduction = opts.pop("reduction", "mean")
    if reduction != "mean":
        raise ValueError(
            f"{desc}: reduction={reduction!r} is not supported by alternating minimization "
            "(its objective is the mean loss); use reduction='mean'"
        )
    if kind == "ce":
        if opts.pop("weight", None) is not None:
            raise ValueError(f"{desc}: class weights (weight=...) are not supported by the cross-entropy prox")
        ignore = opts.pop("ignore_index", -100)
        if y is not None and not y.is_floating_point() and bool((y == ignore).any()):
            raise ValueError(
                f"{desc}: some targets equal ignore_index={ignore}; ignored samples are not supported by "
                "alternating minimization (drop them from the training set)"
            )
        smoothing = float(opts.pop("label_smoothing", 0.0))
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"{desc}: invalid label_smoothing={smoothing}: expected a value in [0, 1)")
        if opts:
            raise ValueError(f"{desc}: options {sorted(opts)} are not supported by alternating minimization")
        return CrossEntropy(prox_iters, prox_tol, reduce_max, label_smoothing=smoothing, stopping=prox_stopping)
    if opts:
        raise ValueError(f"{desc}: options {sorted(opts)} are not supported by alternating minimization")
    return Squared()
