"""Base-optimizer directions, computed exactly as ``torch.optim`` computes them.

A :class:`Direction` updates a base optimizer's own state (momentum buffer,
first/second moments, squared-gradient sums) from the gradients and returns, per
parameter, the direction ``d`` and a step-size factor ``scale`` such that the
base optimizer's own update is ``theta <- theta - lr * scale * d``.  An
:class:`~beyondsgd.optim.update_rules.UpdateRule` then turns ``d`` into the
weight change.  State keys and formulas follow torch's ``SGD``, ``Adam``,
``RMSprop`` and ``Adagrad`` (``_single_tensor_*`` / ``_multi_tensor_*``), so
``rule="additive"`` reproduces their iterates to rounding.

Each direction has a reference per-tensor path (:meth:`Direction.one`) and a
``torch._foreach_*`` path (:meth:`Direction.many`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from beyondsgd.optim._scalars import new_step, value
from beyondsgd.optim.update_rules import SLOT_DIRECTION, Scratch, into, reuse
from beyondsgd.validation import BOOL, NONNEGATIVE, POSITIVE, UNIT, UNIT_HALF_OPEN, Constraint, OneOf, TupleOf

State = dict[str, Any]


class Direction:
    """One base optimizer's direction. ``hyperparams``/``defaults``: its own options."""

    name: str = ""
    hyperparams: Mapping[str, Constraint] = {}
    defaults: Mapping[str, Any] = {}

    def check(self, group: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` on option combinations the ranges alone do not catch."""

    def init_state(self, p: torch.Tensor, state: State, group: Mapping[str, Any]) -> None:
        """Create the state the first step needs, where it can exist before that step (idempotent).

        The optimizer's ``_init_group`` calls it for every tensor before each step; :meth:`one`
        and :meth:`many` expect it done. SGD's momentum buffer is not created here: as in
        torch.optim.SGD it starts as the first gradient, inside the step."""

    def owns(self, group: Mapping[str, Any]) -> bool:
        """Whether the returned directions are fresh tensors the rule may overwrite
        (not a gradient or a state buffer); saves the rule a copy."""
        return True

    def one(
        self, p: torch.Tensor, g: torch.Tensor, state: State, group: Mapping[str, Any], scratch: Scratch | None = None
    ) -> tuple[torch.Tensor, float]:
        """Reference path: update ``state`` for one tensor and return ``(d, scale)``.

        ``g`` is the gradient with ``maximize`` and weight decay already applied;
        ``scratch`` supplies the temporary ``d`` (``None``: allocated).
        """
        raise NotImplementedError

    def many(
        self, ps: list[torch.Tensor], gs: list[torch.Tensor], states: list[State], group: Mapping[str, Any]
    ) -> tuple[list[torch.Tensor], list[float]]:
        """Multi-tensor path, equal to :meth:`one` on each tensor to rounding."""
        raise NotImplementedError


def _bump_steps(states: list[State]) -> list[float]:
    """Add one to every ``step`` (0-dim tensors, as torch.optim keeps them); their new values."""
    steps = [st["step"] for st in states]
    torch._foreach_add_(steps, 1.0)
    return [value(t) for t in steps]


def _bump_step(state: State) -> Any:
    """Add one to ``state["step"]``; its value (a number, or the tensor while compiling)."""
    state["step"] += 1
    return value(state["step"])


class SGDDirection(Direction):
    """``d = g`` or, with momentum, the buffer ``b <- mu * b + (1 - dampening) * g``
    (first step ``b = g``); Nesterov: ``d = g + mu * b`` (torch.optim.SGD)."""

    name = "sgd"
    hyperparams = {"momentum": UNIT_HALF_OPEN, "dampening": UNIT, "nesterov": BOOL}
    defaults = {"momentum": 0.0, "dampening": 0.0, "nesterov": False}

    def check(self, group):
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"invalid nesterov=True with momentum={group['momentum']!r}, "
                f"dampening={group['dampening']!r}: Nesterov needs momentum > 0 and zero dampening"
            )

    def owns(self, group):
        return group["momentum"] != 0.0 and group["nesterov"]

    def one(self, p, g, state, group, scratch=None):
        mu = group["momentum"]
        if mu == 0.0:
            return g, 1.0
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.detach().clone()
        else:
            buf.mul_(mu).add_(g, alpha=1.0 - group["dampening"])
        if group["nesterov"]:
            return torch.add(g, buf, alpha=mu, **into(scratch, SLOT_DIRECTION, p)), 1.0
        return buf, 1.0

    def many(self, ps, gs, states, group):
        mu = group["momentum"]
        if mu == 0.0:
            return list(gs), [1.0] * len(gs)
        fresh = [i for i, st in enumerate(states) if st.get("momentum_buffer") is None]
        for i in fresh:
            states[i]["momentum_buffer"] = gs[i].detach().clone()
        old = [i for i, st in enumerate(states) if i not in set(fresh)]
        if old:
            bufs = [states[i]["momentum_buffer"] for i in old]
            torch._foreach_mul_(bufs, mu)
            torch._foreach_add_(bufs, [gs[i] for i in old], alpha=1.0 - group["dampening"])
        bufs = [st["momentum_buffer"] for st in states]
        dirs = torch._foreach_add(gs, bufs, alpha=mu) if group["nesterov"] else bufs
        return dirs, [1.0] * len(gs)


class AdamDirection(Direction):
    """Adam (torch.optim.Adam, L2 weight decay): ``m <- lerp(m, g, 1 - beta1)``,
    ``v <- beta2 v + (1 - beta2) g^2``, ``d = m / (sqrt(v / bc2) + eps)`` and
    ``scale = 1 / bc1`` with ``bc_i = 1 - beta_i^t``.

    ``bias_correction="outside"`` (the authors' choice, default) keeps ``1 / bc1`` as
    the step-size factor, outside the rule's ``tanh``; ``"inside"`` folds it into
    ``d`` (``d = m_hat / (sqrt(v_hat) + eps)``, scale 1).  The additive rule is the
    same either way.  ``amsgrad`` uses the running maximum of ``v``.

    With ``beta1 = 0`` the first moment is the gradient itself (``lerp(m, g, 1) = g`` exactly),
    so no ``exp_avg`` is kept (Madam's Algorithm 1 keeps only ``v``; torch's Adam would hold a
    copy of the gradient): a full parameter copy of memory less, and one stream less per step. If
    ``beta1`` later becomes non-zero, ``exp_avg`` starts at zeros then; a state that has one
    (e.g. from before this change) keeps it, unused while ``beta1 = 0``.
    """

    name = "adam"
    hyperparams = {
        "betas": TupleOf((UNIT_HALF_OPEN, UNIT_HALF_OPEN)),
        "eps": POSITIVE,
        "amsgrad": BOOL,
        "bias_correction": OneOf(("outside", "inside")),
    }
    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False, "bias_correction": "outside"}

    def init_state(self, p, state, group):
        # As torch.optim.Adam creates it, except that beta1 = 0 keeps no exp_avg (see the class);
        # the one place every path (reference, foreach, fused) creates it.
        if "exp_avg_sq" not in state:
            state["step"] = new_step()
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["betas"][0] != 0.0 and "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def one(self, p, g, state, group, scratch=None):
        beta1, beta2 = group["betas"]
        t = _bump_step(state)
        v = state["exp_avg_sq"]
        m = state["exp_avg"].lerp_(g, 1.0 - beta1) if beta1 != 0.0 else g
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        bc1, bc2_sqrt = 1.0 - beta1**t, (1.0 - beta2**t) ** 0.5
        if group["amsgrad"]:
            torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = torch.sqrt(v, **into(scratch, SLOT_DIRECTION, p)).div_(bc2_sqrt).add_(group["eps"])
        if group["bias_correction"] == "inside":
            return torch.div(m, denom, **reuse(scratch, denom)).div_(bc1), 1.0
        return torch.div(m, denom, **reuse(scratch, denom)), 1.0 / bc1

    def many(self, ps, gs, states, group):
        beta1, beta2 = group["betas"]
        steps = _bump_steps(states)
        vs = [st["exp_avg_sq"] for st in states]
        if beta1 != 0.0:
            ms = [st["exp_avg"] for st in states]
            torch._foreach_lerp_(ms, gs, 1.0 - beta1)
        else:
            ms = list(gs)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, gs, gs, 1.0 - beta2)
        if group["amsgrad"]:
            maxs = [st["max_exp_avg_sq"] for st in states]
            torch._foreach_maximum_(maxs, vs)
            vs = maxs
        bc1 = [1.0 - beta1**t for t in steps]
        bc2_sqrt = [(1.0 - beta2**t) ** 0.5 for t in steps]
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, group["eps"])
        if group["bias_correction"] == "inside":
            dirs = torch._foreach_div(ms, bc1)
            torch._foreach_div_(dirs, denom)
            return dirs, [1.0] * len(ps)
        # d = m / denom, written into denom's memory: two in-place passes are cheaper than a
        # fresh allocation on CPU (page faults), and the rule may then overwrite d.
        torch._foreach_reciprocal_(denom)
        torch._foreach_mul_(denom, ms)
        return denom, [1.0 / b for b in bc1]


class RMSpropDirection(Direction):
    """RMSprop (torch.optim.RMSprop): ``v <- alpha v + (1 - alpha) g^2``; centered:
    ``g_avg <- lerp(g_avg, g, 1 - alpha)``, ``v - g_avg^2`` under the root;
    ``d = g / (sqrt(.) + eps)``, or with momentum the buffer ``b <- mu b + g / (sqrt(.) + eps)``."""

    name = "rmsprop"
    hyperparams = {"alpha": UNIT, "eps": POSITIVE, "momentum": UNIT_HALF_OPEN, "centered": BOOL}
    defaults = {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False}

    def owns(self, group):
        return group["momentum"] == 0.0

    def init_state(self, p, state, group):
        if "square_avg" not in state:
            state["step"] = new_step()
            state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["momentum"] > 0:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["centered"]:
                state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def one(self, p, g, state, group, scratch=None):
        _bump_step(state)
        alpha = group["alpha"]
        sq = state["square_avg"]
        sq.mul_(alpha).addcmul_(g, g, value=1.0 - alpha)
        if group["centered"]:
            ga = state["grad_avg"]
            ga.lerp_(g, 1.0 - alpha)
            avg = torch.addcmul(sq, ga, ga, value=-1.0, **into(scratch, SLOT_DIRECTION, p)).sqrt_()
        else:
            avg = torch.sqrt(sq, **into(scratch, SLOT_DIRECTION, p))
        avg.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).addcdiv_(g, avg)
            return buf, 1.0
        return torch.div(g, avg, **reuse(scratch, avg)), 1.0

    def many(self, ps, gs, states, group):
        _bump_steps(states)
        alpha = group["alpha"]
        sqs = [st["square_avg"] for st in states]
        torch._foreach_mul_(sqs, alpha)
        torch._foreach_addcmul_(sqs, gs, gs, value=1.0 - alpha)
        if group["centered"]:
            gas = [st["grad_avg"] for st in states]
            torch._foreach_lerp_(gas, gs, 1.0 - alpha)
            avg = torch._foreach_addcmul(sqs, gas, gas, value=-1.0)
            torch._foreach_sqrt_(avg)
        else:
            avg = torch._foreach_sqrt(sqs)
        torch._foreach_add_(avg, group["eps"])
        if group["momentum"] > 0:
            bufs = [st["momentum_buffer"] for st in states]
            torch._foreach_mul_(bufs, group["momentum"])
            torch._foreach_addcdiv_(bufs, gs, avg)
            return bufs, [1.0] * len(ps)
        torch._foreach_reciprocal_(avg)  # d = g / avg in avg's memory, as in Adam
        torch._foreach_mul_(avg, gs)
        return avg, [1.0] * len(ps)


class AdagradDirection(Direction):
    """Adagrad (torch.optim.Adagrad): ``s <- s + g^2`` (``s_0`` = initial_accumulator_value),
    ``d = g / (sqrt(s) + eps)``, ``scale = 1 / (1 + (t - 1) lr_decay)``."""

    name = "adagrad"
    hyperparams = {"lr_decay": NONNEGATIVE, "eps": POSITIVE, "initial_accumulator_value": NONNEGATIVE}
    defaults = {"lr_decay": 0.0, "eps": 1e-10, "initial_accumulator_value": 0.0}

    def init_state(self, p, state, group):
        if "sum" not in state:
            state["step"] = new_step()
            state["sum"] = torch.full_like(p, group["initial_accumulator_value"], memory_format=torch.preserve_format)

    def _scale(self, t: Any, group: Mapping[str, Any]) -> float:
        return 1.0 / (1.0 + (t - 1) * group["lr_decay"])

    def one(self, p, g, state, group, scratch=None):
        t = _bump_step(state)
        s = state["sum"]
        s.addcmul_(g, g, value=1.0)
        std = torch.sqrt(s, **into(scratch, SLOT_DIRECTION, p)).add_(group["eps"])
        return torch.div(g, std, **reuse(scratch, std)), self._scale(t, group)

    def many(self, ps, gs, states, group):
        steps = _bump_steps(states)
        sums = [st["sum"] for st in states]
        torch._foreach_addcmul_(sums, gs, gs, value=1.0)
        std = torch._foreach_sqrt(sums)
        torch._foreach_add_(std, group["eps"])
        torch._foreach_reciprocal_(std)  # d = g / std in std's memory, as in Adam
        torch._foreach_mul_(std, gs)
        return std, [self._scale(t, group) for t in steps]


DIRECTIONS: dict[str, Direction] = {
    d.name: d for d in (SGDDirection(), AdamDirection(), RMSpropDirection(), AdagradDirection())
}
