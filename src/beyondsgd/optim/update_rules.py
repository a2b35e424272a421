"""Update rules: how a base optimizer's direction ``d`` changes a weight ``theta``.

Every first-order optimizer computes, per parameter, a direction ``d`` from its
own state (the gradient, a momentum buffer, ``m / (sqrt(v) + eps)``...) and then
*adds* ``-lr * d``.  An update rule replaces only that last step
(Kirtas et al., "Multiplicative update rules for accelerating deep learning training and increasing robustness",
arXiv 2307.07189):

* additive (A):        ``theta <- theta - lr * d``
* multiplicative (M):  ``theta <- theta - eta_out * |theta| * tanh(eta_in * d)``
* hybrid (H):          ``theta <- theta - [gamma * eta_out * |theta| * tanh(eta_in * d)
  + (1 - gamma) * lr * d]``
* exponential (exp, Madam-style; Bernstein et al. 2020, arXiv 2006.14560):
  ``theta <- theta * base ** (-eta_out * sign(theta) * s(eta_in * d))`` with ``s``
  either ``tanh`` or a clip to ``[-clip_bound, clip_bound]``, optionally followed by
  clamping ``|theta|`` to ``max_scale`` times the weight's initial RMS.

Each rule is a small object with a readable per-tensor reference path
(:meth:`UpdateRule.apply_one`) and a multi-tensor ``torch._foreach_*`` path
(:meth:`UpdateRule.apply_many`) that equals it to rounding.  The optimizers of
:mod:`beyondsgd.optim.multiplicative` call them where the base optimizer would
add its step.

``scale`` is the base optimizer's own step-size factor (Adam's ``1 / (1 - beta1^t)``,
Adagrad's ``1 / (1 + (t - 1) * lr_decay)``); it multiplies both ``lr`` and
``eta_out``, *outside* the ``tanh``, as in the authors' Adam.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class RuleArgs:
    """The scalars one step of a rule needs (read from a param group each step).

    Attributes:
        lr: additive step size.
        eta_in: input scale of the ``tanh`` (where it saturates).
        eta_out: bound on the relative change ``|delta theta| / |theta|`` of the M part.
        gamma: hybrid mixing weight, 1 = multiplicative, 0 = additive.
        exp_base: base of the exponential rule (``e`` for Madam, 2 for the authors' variant).
        squash: ``"tanh"`` or ``"clip"`` (exponential rule only).
        clip_bound: the clip range of ``squash="clip"``.
        max_scale: exponential rule: clamp ``|theta|`` to this times its initial RMS
            (``None``: no clamp).
    """

    lr: float
    eta_in: float = 1.0
    eta_out: float = 1e-2
    gamma: float = 1.0
    exp_base: float = math.e
    squash: str = "tanh"
    clip_bound: float = 10.0
    max_scale: float | None = None


class UpdateRule:
    """How a direction becomes a weight change. Subclasses implement both paths."""

    name: str = ""

    def freezes_zeros(self, args: RuleArgs) -> bool:
        """True if an exact zero weight can never move under this rule."""
        return False

    def init_state(self, param: torch.Tensor, state: dict[str, Any], args: RuleArgs) -> None:
        """Create any per-parameter state the rule needs (called before the first step)."""

    def apply_one(
        self,
        param: torch.Tensor,
        d: torch.Tensor,
        scale: float,
        args: RuleArgs,
        state: dict[str, Any],
        owned: bool = False,
    ) -> None:
        """Reference path: update one tensor in place.

        ``owned``: ``d`` is a temporary the rule may overwrite (saves a copy)."""
        raise NotImplementedError

    def apply_many(
        self,
        params: list[torch.Tensor],
        dirs: list[torch.Tensor],
        scales: Sequence[float],
        args: RuleArgs,
        states: list[dict[str, Any]],
        owned: bool = False,
        work: Workspace | None = None,
    ) -> None:
        """Multi-tensor path; must equal :meth:`apply_one` on each tensor to rounding.

        ``work``: reusable scratch buffers (``None``: allocate temporaries)."""
        raise NotImplementedError


def tanh_(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """In place, ``x <- tanh(scale * x)``.

    On CPU computed as ``2 sigmoid(2 scale x) - 1``: within 2e-7 (absolute) of ``torch.tanh``
    in float32 (rounding level for a weight change already scaled by ``eta_out |theta|``) and
    several times faster than torch's CPU ``tanh``, which otherwise dominates the step time.
    The identity keeps ``|result| <= 1``, so rule M still never flips a sign.
    """
    if x.is_cuda:
        return (x.mul_(scale) if scale != 1.0 else x).tanh_()
    return x.mul_(2.0 * scale).sigmoid_().mul_(2.0).sub_(1.0)


def _foreach_tanh_(xs: list[torch.Tensor], scale: float = 1.0) -> None:
    """:func:`tanh_` on a list of tensors (same arithmetic, so both paths agree)."""
    cuda = [x for x in xs if x.is_cuda]
    cpu = [x for x in xs if not x.is_cuda]
    if cuda:
        if scale != 1.0:
            torch._foreach_mul_(cuda, scale)
        torch._foreach_tanh_(cuda)
    if cpu:
        torch._foreach_mul_(cpu, 2.0 * scale)
        torch._foreach_sigmoid_(cpu)
        torch._foreach_mul_(cpu, 2.0)
        torch._foreach_sub_(cpu, 1.0)


class Workspace:
    """Scratch tensors kept from step to step, one per parameter and slot.

    Re-allocating parameter-sized temporaries every step is the main cost of the rules on
    CPU (fresh memory is page-faulted in on first touch); reusing them costs their memory
    (at most two copies of the parameters) and nothing else.  Not part of any state_dict.
    """

    def __init__(self) -> None:
        self._bufs: dict[tuple[int, int], torch.Tensor] = {}

    def get(self, params: Sequence[torch.Tensor], slot: int) -> list[torch.Tensor]:
        out = []
        for p in params:
            buf = self._bufs.get((id(p), slot))
            if buf is None or buf.shape != p.shape or buf.dtype != p.dtype or buf.device != p.device:
                buf = self._bufs[(id(p), slot)] = torch.empty_like(p, memory_format=torch.preserve_format)
            out.append(buf)
        return out

    def copy_of(self, tensors: Sequence[torch.Tensor], like: Sequence[torch.Tensor], slot: int) -> list[torch.Tensor]:
        """``tensors`` copied into this slot's buffers (shaped like ``like``)."""
        bufs = self.get(like, slot)
        torch._foreach_copy_(bufs, list(tensors))
        return bufs

    def clear(self) -> None:
        self._bufs.clear()


def _by_scale(scales: Sequence[float]) -> list[tuple[float, list[int]]]:
    """Indices grouped by equal scale, so each foreach call takes scalar arguments.

    Almost always one group (every parameter of a group has taken the same number of steps).
    """
    groups: dict[float, list[int]] = defaultdict(list)
    for i, s in enumerate(scales):
        groups[float(s)].append(i)
    return list(groups.items())


class HybridRule(UpdateRule):
    """``theta <- theta - [a * |theta| * tanh(eta_in * d) + b * d]``.

    With ``a = gamma * eta_out * scale`` and ``b = (1 - gamma) * lr * scale``
    (Kirtas et al. 2023, the hybrid rule H).  Subclasses fix ``gamma``: the
    additive rule is ``gamma = 0`` (exactly ``theta - lr * scale * d``, so it matches
    torch.optim), the multiplicative rule M is ``gamma = 1``.
    """

    name = "hybrid"

    def gamma(self, args: RuleArgs) -> float:
        return float(args.gamma)

    def coefficients(self, args: RuleArgs, scale: float) -> tuple[float, float]:
        g = self.gamma(args)
        return g * args.eta_out * scale, (1.0 - g) * args.lr * scale

    def freezes_zeros(self, args: RuleArgs) -> bool:
        return self.gamma(args) == 1.0

    def apply_one(self, param, d, scale, args, state, owned=False):
        a, b = self.coefficients(args, scale)
        if a == 0.0:
            if b != 0.0:
                param.add_(d, alpha=-b)
            return
        abs_old = param.abs()  # the multiplicative part uses the weight *before* this step
        if b != 0.0:
            param.add_(d, alpha=-b)
        t = d if owned else d.clone()
        param.addcmul_(tanh_(t, args.eta_in), abs_old, value=-a)

    def apply_many(self, params, dirs, scales, args, states, owned=False, work=None):
        work = work or Workspace()
        for scale, idx in _by_scale(scales):
            ps = [params[i] for i in idx]
            ds = [dirs[i] for i in idx]
            a, b = self.coefficients(args, scale)
            if a == 0.0:
                if b != 0.0:
                    torch._foreach_add_(ps, ds, alpha=-b)
                continue
            abs_old = work.copy_of(ps, ps, 0)
            torch._foreach_abs_(abs_old)
            if b != 0.0:
                torch._foreach_add_(ps, ds, alpha=-b)
            t = ds if owned else work.copy_of(ds, ps, 1)
            _foreach_tanh_(t, args.eta_in)
            # p -= a * tanh(eta_in d) * |p_old|, fused in one pass.
            torch._foreach_addcmul_(ps, t, abs_old, value=-a)


class AdditiveRule(HybridRule):
    """The usual rule, ``theta <- theta - lr * scale * d`` (gamma fixed to 0)."""

    name = "additive"

    def gamma(self, args: RuleArgs) -> float:
        return 0.0


class MultiplicativeRule(HybridRule):
    """Rule M, ``theta <- theta - eta_out * scale * |theta| * tanh(eta_in * d)`` (gamma fixed to 1).

    With ``eta_out * scale <= 1`` a weight never changes sign (``|tanh| < 1``) and an
    exact zero never moves.
    """

    name = "multiplicative"

    def gamma(self, args: RuleArgs) -> float:
        return 1.0


class ExponentialRule(UpdateRule):
    """``theta <- theta * base ** (-eta_out * scale * sign(theta) * s(eta_in * d))``.

    Madam (Bernstein et al. 2020, Algorithm 1) is this rule on Adam's normalized
    gradient with ``beta1 = 0``, ``s`` = clip to ``[-10, 10]``, base ``e`` and weights
    clamped to 3x their initial RMS.  The authors of the hybrid paper also ship a
    base-2 variant with ``s = tanh``.  Signs never change and zeros never move.
    """

    name = "exp"

    def freezes_zeros(self, args: RuleArgs) -> bool:
        return True

    def init_state(self, param, state, args):
        if args.max_scale is not None and "max_abs" not in state:
            # The clamp is relative to the weight's size at the start (Madam's p_scale * RMS).
            state["max_abs"] = param.detach().pow(2).mean().sqrt() * args.max_scale

    def _squash(self, x: torch.Tensor, args: RuleArgs) -> torch.Tensor:
        return tanh_(x) if args.squash == "tanh" else x.clamp_(-args.clip_bound, args.clip_bound)

    def apply_one(self, param, d, scale, args, state, owned=False):
        s = self._squash(d.mul_(args.eta_in) if owned else d * args.eta_in, args)  # see tanh_
        # base ** x = exp(x * ln(base)); the sign makes |theta| shrink when d agrees with theta.
        s.mul_(param.sign()).mul_(-args.eta_out * scale * math.log(args.exp_base)).exp_()
        param.mul_(s)
        if "max_abs" in state:
            param.copy_(torch.clamp(param, -state["max_abs"], state["max_abs"]))

    def apply_many(self, params, dirs, scales, args, states, owned=False, work=None):
        for scale, idx in _by_scale(scales):
            ps = [params[i] for i in idx]
            s = [dirs[i] for i in idx]
            if not owned:
                s = work.copy_of(s, ps, 1) if work is not None else torch._foreach_mul(s, 1.0)
            torch._foreach_mul_(s, args.eta_in)
            if args.squash == "tanh":
                _foreach_tanh_(s)
            else:
                torch._foreach_clamp_min_(s, -args.clip_bound)
                torch._foreach_clamp_max_(s, args.clip_bound)
            sign = work.copy_of(ps, ps, 0) if work is not None else torch._foreach_mul(ps, 1.0)
            torch._foreach_sign_(sign)
            torch._foreach_mul_(s, sign)
            torch._foreach_mul_(s, -args.eta_out * scale * math.log(args.exp_base))
            torch._foreach_exp_(s)
            torch._foreach_mul_(ps, s)
        for p, st in zip(params, states):
            if "max_abs" in st:  # a per-tensor bound: one clamp per tensor, not per entry
                p.copy_(torch.clamp(p, -st["max_abs"], st["max_abs"]))


RULES: dict[str, UpdateRule] = {
    r.name: r for r in (AdditiveRule(), MultiplicativeRule(), HybridRule(), ExponentialRule())
}


def get_rule(name: str) -> UpdateRule:
    """The rule called ``name`` (``additive``, ``multiplicative``, ``hybrid``, ``exp``).

    Raises:
        ValueError: unknown name, listing the known ones.
    """
    if name not in RULES:
        raise ValueError(f"invalid rule={name!r}: expected one of {', '.join(repr(r) for r in RULES)}")
    return RULES[name]
