"""Heavy ball (Polyak) and Nesterov momentum, written in the papers' form.

Both optimizers keep, per parameter, the displacement ``d_k = W_k - W_{k-1}``
of the iterate (``d_0 = 0``), so the update reads exactly as in the papers::

    HB:   W_{k+1} = W_k - eta * g(W_k) + beta_k * (W_k - W_{k-1})
    NAG:  Y_k     = W_k + beta_k * (W_k - W_{k-1})          (look-ahead point)
          W_{k+1} = Y_k - eta * g(Y_k)

``torch.optim`` optimizers see the gradient at the model's current parameters,
so :class:`Nesterov` keeps the model at the look-ahead point ``Y_k`` (the
gradient is taken there) and :meth:`Nesterov.iterates` recovers ``W_k``.
Eliminating ``W`` gives ``Y_{k+1} = Y_k - beta_k d_k + (1 + beta_{k+1}) d_{k+1}``
with ``d_{k+1} = beta_k d_k - eta g(Y_k)``.

Mapping to ``torch.optim.SGD`` (``v <- mu v + g; p <- p - lr v``, and with
``nesterov=True``: ``p <- p - lr (g + mu v)``), exact for a constant learning
rate and constant momentum: ``lr = eta``, ``momentum = beta``, ``dampening=0``;
torch's ``v`` equals ``-d / lr``.  ``HeavyBall`` matches ``nesterov=False`` and
``Nesterov`` matches ``nesterov=True`` (torch's parameters are the look-ahead
point ``Y``).  With a learning rate that changes (a scheduler), torch's update
is ``p_{k+1} = p_k - lr_k g_k + mu (lr_k / lr_{k-1}) (p_k - p_{k-1})``: its
effective momentum is rescaled by ``lr_k / lr_{k-1}``, while these optimizers
keep ``beta`` as given (the papers' form).  Weight decay adds ``weight_decay * p``
to the gradient, as torch does.

References:
    B. T. Polyak, "Some methods of speeding up the convergence of iteration
    methods", USSR Comput. Math. Math. Phys. 4(5), 1964 (heavy ball, eq. (9)).
    Y. Nesterov, "A method for solving the convex programming problem with
    convergence rate O(1/k^2)", Soviet Math. Dokl. 27, 1983 (the (k-1)/(k+2) schedule).
    X. Liu et al., "Provable acceleration of Nesterov's accelerated gradient
    method over heavy ball method in training over-parameterized neural
    networks", arXiv:2208.03941 (the HB and NAG forms used here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import torch
from torch.optim import Optimizer

from beyondsgd.optim import fused as _fused
from beyondsgd.optim._groups import collect_with_grad
from beyondsgd.optim._scalars import as_step, axpy_, checkable, compiling, new_step, value
from beyondsgd.optim.registry import OptimizerSpec, register
from beyondsgd.validation import BOOL, NONNEGATIVE, OPTIONAL_BOOL, UNIT_HALF_OPEN, OneOf, check_hyperparams

#: ``"constant"``: ``beta_k = momentum``; ``"convex"``: Nesterov's ``beta_k = (k-1)/(k+2)``.
MOMENTUM_SCHEDULES = ("constant", "convex")

#: One table for both optimizers, used by their constructors and by the registry.
MOMENTUM_HYPERPARAMS = {
    "lr": NONNEGATIVE,
    "momentum": UNIT_HALF_OPEN,
    "momentum_schedule": OneOf(MOMENTUM_SCHEDULES),
    "weight_decay": NONNEGATIVE,
    "maximize": BOOL,
    "foreach": OPTIONAL_BOOL,
    "fused": OPTIONAL_BOOL,
}


def momentum_at(group: dict[str, Any], k: Any) -> Any:
    """The momentum ``beta_k`` used at iterate ``k`` (``k`` = steps already taken).

    With the ``"convex"`` schedule ``beta_k = (k-1)/(k+2)``, so ``beta_1 = 0``,
    ``beta_2 = 1/4``, ... (``beta_0`` multiplies ``d_0 = 0`` and is set to 0).
    ``k`` may be a 0-dim tensor (under ``torch.compile``); the result is then one too.
    """
    if group["momentum_schedule"] == "constant":
        return float(group["momentum"])
    if isinstance(k, torch.Tensor):
        return ((k - 1) / (k + 2)).clamp(min=0.0)
    return max(0.0, (k - 1) / (k + 2))


class _DisplacementMomentum(Optimizer):
    """Shared machinery: validation, param groups, state, gradient preprocessing.

    Subclasses implement ``_update_single`` (readable reference, one tensor at a
    time) and ``_update_foreach`` (the same arithmetic on lists of tensors).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        momentum: float = 0.9,
        momentum_schedule: str = "constant",
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            momentum_schedule=momentum_schedule,
            weight_decay=weight_decay,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
        )
        check_hyperparams(type(self).__name__, checkable(type(self).__name__, defaults), MOMENTUM_HYPERPARAMS)
        _fused.check_fused(type(self).__name__, fused, foreach)
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # As torch.optim does: an older state_dict gets the options added since, and its
        # Python-number step counters become 0-dim tensors.
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum_schedule", "constant")
            group.setdefault("weight_decay", 0.0)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("fused", None)
        for st in self.state.values():
            if isinstance(st, dict) and "step" in st:
                st["step"] = as_step(st["step"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # Groups may override any hyperparameter: check the overrides with the same table.  Other
        # keys pass through, as in torch.optim (``param_names``, user tags such as ``"name"``).
        check_hyperparams(
            type(self).__name__,
            checkable(type(self).__name__, {k: v for k, v in param_group.items() if k in MOMENTUM_HYPERPARAMS}),
            MOMENTUM_HYPERPARAMS,
        )
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        _fused.check_fused(
            f"{type(self).__name__} param group {len(self.param_groups) - 1}", group["fused"], group["foreach"]
        )

    def _init_group(self, group: dict[str, Any], params: list[torch.Tensor]) -> bool:
        """Append the group's parameters that have a gradient to ``params`` and create their state.

        torch.optim's hook of this name: ``torch.compile`` (dynamo) runs it eagerly instead of
        tracing it and guards on the state it made, so a compiled ``step`` traces one frame even
        from an empty state, as torch's Adam does.

        Returns:
            Whether any of the parameters is complex.
        """
        first = len(params)
        has_complex = collect_with_grad(type(self).__name__, group, params)
        for p in params[first:]:
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["displacement"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return has_complex

    def _gather(
        self, group: dict[str, Any], raw: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Parameters with a gradient, their (sign-corrected, decayed) gradients, displacements, and steps.

        Complex tensors are handled as ``torch.view_as_real`` pairs, as torch.optim does.
        ``raw``: the gradients as they are (the fused kernel applies ``maximize`` and weight decay).
        """
        with_grad: list[torch.Tensor] = []
        self._init_group(group, with_grad)
        params: list[torch.Tensor] = []
        grads: list[torch.Tensor] = []
        disps: list[torch.Tensor] = []
        steps: list[torch.Tensor] = []
        for p in with_grad:
            state = self.state[p]
            steps.append(state["step"])
            real = p.is_complex()
            g = cast(torch.Tensor, p.grad)  # (every one in with_grad has a gradient)
            params.append(torch.view_as_real(p) if real else p)
            grads.append(torch.view_as_real(g) if real else g)
            disps.append(torch.view_as_real(state["displacement"]) if real else state["displacement"])
        if grads and not raw and (group["maximize"] or group["weight_decay"] != 0):
            # New tensors: the .grad fields the user sees are left untouched, as torch does.
            if self._use_foreach(group, params):
                grads = list(torch._foreach_neg(grads)) if group["maximize"] else list(grads)
                if group["weight_decay"] != 0:
                    grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
            else:
                grads = [(-g if group["maximize"] else g) for g in grads]
                if group["weight_decay"] != 0:
                    grads = [g.add(p, alpha=group["weight_decay"]) for g, p in zip(grads, params)]
        return params, grads, disps, steps

    @staticmethod
    def _by_step(group: dict[str, Any], steps: list[torch.Tensor]) -> list[tuple[Any, list[int]]]:
        """The tensors of one step count together: ``[(k, indices)]``.

        ``beta_k`` depends on each parameter's own count (as torch's ``step`` is per parameter):
        under the ``"convex"`` schedule a parameter that had no gradient in some steps is behind
        the others. With a constant momentum ``k`` does not matter: one bucket.
        """
        if group["momentum_schedule"] == "constant":
            return [(value(steps[-1]), list(range(len(steps))))]
        if compiling():  # the counts are traced tensors: one bucket per tensor, beta_k computed on the device
            return [(k, [i]) for i, k in enumerate(steps)]
        buckets: dict[float, list[int]] = {}
        for i, k in enumerate(steps):
            buckets.setdefault(value(k), []).append(i)
        return list(buckets.items())

    @staticmethod
    def _use_foreach(group: dict[str, Any], params: list[torch.Tensor]) -> bool:
        if group["foreach"] is not None:
            return bool(group["foreach"])
        # Same default as torch.optim: the multi-tensor path where every tensor is on an accelerator.
        return bool(params) and all(p.device.type != "cpu" for p in params)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        """One update of every parameter group.

        Args:
            closure: re-evaluates the model and returns the loss (optional).

        Returns:
            The loss returned by ``closure``, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            fused = bool(group["fused"]) and not compiling()
            params, grads, disps, steps = self._gather(group, raw=fused)
            if not params:
                continue
            lr = value(group["lr"])
            for k, idx in self._by_step(group, steps):
                if len(idx) == len(params):
                    self._update(group, fused, params, grads, disps, lr, k)
                else:
                    ps, gs, ds = ([t[i] for i in idx] for t in (params, grads, disps))
                    self._update(group, fused, ps, gs, ds, lr, k)
            with_grad = [self.state[p]["step"] for p in group["params"] if p.grad is not None]
            if compiling():
                for t in with_grad:
                    t += 1
            else:
                torch._foreach_add_(with_grad, 1.0)  # one call, not one per tensor
        return loss

    def _update(
        self,
        group: dict[str, Any],
        fused: bool,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        disps: list[torch.Tensor],
        lr: Any,
        k: Any,
    ) -> None:
        """The step of tensors that share the step count ``k`` (on the fused, foreach or for-loop path)."""
        beta, beta_next = momentum_at(group, k), momentum_at(group, k + 1)
        if fused:
            nesterov = isinstance(self, Nesterov)
            left = _fused.step_momentum(type(self).__name__, group, params, grads, disps, lr, beta, beta_next, nesterov)
            for i in left:  # not contiguous: the reference path (maximize and decay applied here)
                g = -grads[i] if group["maximize"] else grads[i]
                if group["weight_decay"] != 0:
                    g = g.add(params[i], alpha=group["weight_decay"])
                self._update_single(params[i], g, disps[i], lr, beta, beta_next)
        elif not compiling() and self._use_foreach(group, params):
            lists: list[list[torch.Tensor | None]] = [list(params), list(grads), list(disps)]
            grouped = Optimizer._group_tensors_by_device_and_dtype(lists)
            for (dev_params, dev_grads, dev_disps), _ in grouped.values():
                self._update_foreach(
                    cast(list[torch.Tensor], dev_params),
                    cast(list[torch.Tensor], dev_grads),
                    cast(list[torch.Tensor], dev_disps),
                    lr,
                    beta,
                    beta_next,
                )
        else:
            for p, g, d in zip(params, grads, disps):
                self._update_single(p, g, d, lr, beta, beta_next)

    def _update_single(
        self, p: torch.Tensor, g: torch.Tensor, d: torch.Tensor, lr: float, beta: float, beta_next: float
    ) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _update_foreach(
        self,
        p: list[torch.Tensor],
        g: list[torch.Tensor],
        d: list[torch.Tensor],
        lr: float,
        beta: float,
        beta_next: float,
    ) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class HeavyBall(_DisplacementMomentum):
    """Polyak's heavy ball: ``W_{k+1} = W_k - lr * g(W_k) + beta_k * (W_k - W_{k-1})``.

    Args:
        params: parameters or param groups.
        lr: step size ``eta``.
        momentum: ``beta`` in ``[0, 1)`` (used by the ``"constant"`` schedule).
        momentum_schedule: ``"constant"`` or ``"convex"`` (``beta_k = (k-1)/(k+2)``,
            ignoring ``momentum``).
        weight_decay: L2 penalty coefficient (added to the gradient).
        maximize: ascend instead of descend.
        foreach: use the multi-tensor path (``None``: only when all tensors are on an accelerator).
        fused: one loop per tensor generated by ``torch.compile`` (:mod:`beyondsgd.optim.fused`);
            off by default (compiled once per process; equal to the reference to rounding).

    Equals ``torch.optim.SGD(lr=lr, momentum=momentum)`` for constant ``lr`` and
    ``momentum`` (see the module docstring for a changing ``lr``).

    References:
        Polyak 1964, eq. (9); Liu et al., arXiv:2208.03941, the HB iteration.
    """

    def _update_single(self, p, g, d, lr, beta, beta_next):
        axpy_(d.mul_(beta), g, -lr)  # d_{k+1} = beta_k d_k - eta g_k
        p.add_(d)  # W_{k+1} = W_k + d_{k+1}

    def _update_foreach(self, p, g, d, lr, beta, beta_next):
        torch._foreach_mul_(d, beta)
        torch._foreach_add_(d, g, alpha=-lr)
        torch._foreach_add_(p, d)


class Nesterov(_DisplacementMomentum):
    """Nesterov's accelerated gradient in the look-ahead form.

    ``Y_k = W_k + beta_k (W_k - W_{k-1})``, ``W_{k+1} = Y_k - lr * g(Y_k)``.  The
    model's parameters hold the look-ahead point ``Y_k`` (where the gradient is
    evaluated); :meth:`iterates` returns ``W_k``.

    Args:
        params: parameters or param groups.
        lr: step size ``eta``.
        momentum: ``beta`` in ``[0, 1)`` (used by the ``"constant"`` schedule).
        momentum_schedule: ``"constant"`` or ``"convex"`` (``beta_k = (k-1)/(k+2)``,
            ignoring ``momentum``).
        weight_decay: L2 penalty coefficient (added to the gradient).
        maximize: ascend instead of descend.
        foreach: use the multi-tensor path (``None``: only when all tensors are on an accelerator).
        fused: one loop per tensor generated by ``torch.compile`` (:mod:`beyondsgd.optim.fused`);
            off by default (compiled once per process; equal to the reference to rounding).

    Equals ``torch.optim.SGD(lr=lr, momentum=momentum, nesterov=True)`` for constant
    ``lr`` and ``momentum``.

    References:
        Nesterov 1983; Liu et al., arXiv:2208.03941, the NAG iteration.
    """

    def _update_single(self, p, g, d, lr, beta, beta_next):
        axpy_(p, d, -beta)  # Y_k -> W_k
        axpy_(d.mul_(beta), g, -lr)  # d_{k+1} = beta_k d_k - eta g(Y_k)
        axpy_(p, d, 1.0 + beta_next)  # Y_{k+1} = W_k + (1 + beta_{k+1}) d_{k+1}

    def _update_foreach(self, p, g, d, lr, beta, beta_next):
        torch._foreach_add_(p, d, alpha=-beta)
        torch._foreach_mul_(d, beta)
        torch._foreach_add_(d, g, alpha=-lr)
        torch._foreach_add_(p, d, alpha=1.0 + beta_next)

    @torch.no_grad()
    def iterates(self) -> list[torch.Tensor]:
        """The iterate ``W_k = Y_k - beta_k d_k`` of every parameter, in group order (new tensors)."""
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if not state:
                    out.append(p.detach().clone())
                else:
                    out.append(p - momentum_at(group, int(value(state["step"]))) * state["displacement"])
        return out


_DESCRIPTION = "{}, papers' form W+ = {}"

# Defaults from benchmarks/sweep_momentum_defaults.py (digits, MLP, batch 64, 20 epochs; see
# docs/momentum-ntk.md): the same setting for both, in the middle of the grid, so a comparison
# isolates Nesterov's gradient correction.
register(
    OptimizerSpec(
        name="hb",
        factory=HeavyBall,
        hyperparams=MOMENTUM_HYPERPARAMS,
        defaults={"lr": 0.03, "momentum": 0.9},
        description=_DESCRIPTION.format("heavy ball (Polyak)", "W - lr*g(W) + beta*(W - W_prev)"),
        family="momentum",
        shardable=True,  # elementwise update
    )
)
register(
    OptimizerSpec(
        name="nag",
        factory=Nesterov,
        hyperparams=MOMENTUM_HYPERPARAMS,
        defaults={"lr": 0.03, "momentum": 0.9},
        description=_DESCRIPTION.format("Nesterov accelerated gradient", "Y - lr*g(Y), Y = W + beta*(W - W_prev)"),
        family="momentum",
        shardable=True,  # elementwise update
    )
)
