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

from beyondsgd.optim._scalars import Scalar, axpy_


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

    lr: Scalar
    eta_in: float = 1.0
    eta_out: Scalar = 1e-2
    gamma: float = 1.0
    exp_base: float = math.e
    squash: str = "tanh"
    clip_bound: float = 10.0
    max_scale: float | None = None


class UpdateRule:
    """How a direction becomes a weight change. Subclasses implement both paths.

    Scalars (``scale`` and the :class:`RuleArgs` step sizes) are Python numbers in eager mode;
    :meth:`apply_one` also takes 0-dim tensors (the form they have under ``torch.compile``).
    """

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
        scale: Scalar,
        args: RuleArgs,
        state: dict[str, Any],
        owned: bool = False,
        scratch: Scratch | None = None,
    ) -> None:
        """Reference path: update one tensor in place.

        ``owned``: ``d`` is a temporary the rule may overwrite (saves a copy);
        ``scratch``: where temporaries come from (``None``: allocated)."""
        raise NotImplementedError

    def apply_many(
        self,
        params: list[torch.Tensor],
        dirs: list[torch.Tensor],
        scales: Sequence[float],
        args: RuleArgs,
        states: list[dict[str, Any]],
        owned: bool = False,
    ) -> None:
        """Multi-tensor path; must equal :meth:`apply_one` on each tensor to rounding.

        Its temporaries live only during the call (no buffer is kept between steps)."""
        raise NotImplementedError


class Scratch:
    """Temporaries of one step, reused tensor after tensor (the per-tensor path).

    Each slot is one buffer the size of the group's largest tensor, allocated on first use
    and dropped with the object after the step: no memory is kept between steps, and a
    step allocates once per slot instead of once per tensor and temporary (fresh CPU
    memory costs a page fault per page on first touch, which dominated the step).
    """

    def __init__(self, numel: int) -> None:
        self.numel = int(numel)
        self._bufs: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}

    def get(self, slot: int, like: torch.Tensor) -> torch.Tensor:
        """An uninitialized tensor shaped like ``like`` (slot ``slot``, reused across tensors)."""
        key = (slot, like.dtype, like.device)
        buf = self._bufs.get(key)
        if buf is None or buf.numel() < like.numel():
            buf = self._bufs[key] = torch.empty(max(self.numel, like.numel()), dtype=like.dtype, device=like.device)
        return buf[: like.numel()].view(like.shape)


def into(scratch: Scratch | None, slot: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
    """``out=`` keyword arguments for an op writing a temporary: a scratch buffer, or ``{}``
    (a fresh result; the form ``torch.compile`` traces, where inductor fuses temporaries away)."""
    return {} if scratch is None else {"out": scratch.get(slot, like)}


def reuse(scratch: Scratch | None, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """``out=t`` where ``t`` is a scratch buffer (so an op overwrites it), else ``{}``."""
    return {} if scratch is None else {"out": t}


def copy_into(scratch: Scratch | None, slot: int, t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t``: in a scratch buffer, or a fresh clone."""
    return t.clone() if scratch is None else scratch.get(slot, t).copy_(t)


#: Scratch slots: 0 and 1 for the rules, 2 for the directions, 3 for the gradient.
SLOT_RULE_A, SLOT_RULE_B, SLOT_DIRECTION, SLOT_GRAD = 0, 1, 2, 3


def tanh_(x: torch.Tensor, scale: Scalar = 1.0) -> torch.Tensor:
    """In place, ``x <- tanh(scale * x)``.

    On CPU computed as ``2 sigmoid(2 scale x) - 1``: within 2e-7 (absolute) of ``torch.tanh``
    in float32 (rounding level for a weight change already scaled by ``eta_out |theta|``) and
    several times faster than torch's CPU ``tanh``, which otherwise dominates the step time.
    The identity keeps ``|result| <= 1``, so rule M still never flips a sign.
    """
    if x.is_cuda:
        return (x.mul_(scale) if not _is_one(scale) else x).tanh_()
    return x.mul_(2.0 * scale).sigmoid_().mul_(2.0).sub_(1.0)


def tanh_of(d: torch.Tensor, scale: Scalar, owned: bool, scratch: Scratch | None, slot: int) -> torch.Tensor:
    """``tanh(scale * d)`` as :func:`tanh_` computes it: in ``d`` itself when ``owned``, else in a
    temporary, with the copy folded into the first multiplication (one pass less)."""
    if owned:
        return tanh_(d, scale)
    if d.is_cuda:
        return torch.mul(d, scale, **into(scratch, slot, d)).tanh_()
    return torch.mul(d, 2.0 * scale, **into(scratch, slot, d)).sigmoid_().mul_(2.0).sub_(1.0)


def _is_one(c: Scalar) -> bool:
    return not isinstance(c, torch.Tensor) and c == 1.0


def _is_zero(c: Scalar) -> bool:
    return not isinstance(c, torch.Tensor) and c == 0.0


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

    def coefficients(self, args: RuleArgs, scale: Scalar) -> tuple[Scalar, Scalar]:
        g = self.gamma(args)
        return g * args.eta_out * scale, (1.0 - g) * args.lr * scale

    def freezes_zeros(self, args: RuleArgs) -> bool:
        return self.gamma(args) == 1.0

    def apply_one(self, param, d, scale, args, state, owned=False, scratch=None):
        g = self.gamma(args)
        a, b = self.coefficients(args, scale)
        if g == 0.0 or _is_zero(a):
            if g != 1.0 and not _is_zero(b):
                axpy_(param, d, -b)
            return
        # The multiplicative part uses the weight *before* this step.
        abs_old = torch.abs(param, **into(scratch, SLOT_RULE_A, param))
        if g != 1.0 and not _is_zero(b):
            axpy_(param, d, -b)
        t = tanh_of(d, args.eta_in, owned, scratch, SLOT_RULE_B)
        if isinstance(a, torch.Tensor):
            param.addcmul_(t.mul_(a), abs_old, value=-1.0)
        else:
            param.addcmul_(t, abs_old, value=-a)

    def apply_many(self, params, dirs, scales, args, states, owned=False):
        g = self.gamma(args)
        for scale, idx in _by_scale(scales):
            ps = [params[i] for i in idx]
            ds = [dirs[i] for i in idx]
            a, b = self.coefficients(args, scale)
            if g == 0.0 or a == 0.0:
                if g != 1.0 and b != 0.0:
                    torch._foreach_add_(ps, ds, alpha=-b)
                continue
            abs_old = torch._foreach_abs(ps)
            if g != 1.0 and b != 0.0:
                torch._foreach_add_(ps, ds, alpha=-b)
            t = ds if owned else torch._foreach_mul(ds, 1.0)
            _foreach_tanh_(t, args.eta_in)
            # p -= a * tanh(eta_in d) * |p_old|, fused in one pass.
            torch._foreach_addcmul_(ps, t, abs_old, value=-a)
            del abs_old, t


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

    def apply_one(self, param, d, scale, args, state, owned=False, scratch=None):
        c = args.eta_out * scale
        if _is_zero(c):  # a frozen group (lr = 0) does not move, clamp included
            return
        s = d.mul_(args.eta_in) if owned else torch.mul(d, args.eta_in, **into(scratch, SLOT_RULE_B, param))
        s = self._squash(s, args)  # see tanh_
        # base ** x = exp(x * ln(base)); the sign makes |theta| shrink when d agrees with theta.
        s.mul_(torch.sign(param, **into(scratch, SLOT_RULE_A, param))).mul_(c * -math.log(args.exp_base)).exp_()
        param.mul_(s)
        if "max_abs" in state:
            m = state["max_abs"]
            param.clamp_(-m, m)

    def apply_many(self, params, dirs, scales, args, states, owned=False):
        moved = []
        for scale, idx in _by_scale(scales):
            c = args.eta_out * scale
            if c == 0.0:
                continue
            moved.extend(idx)
            ps = [params[i] for i in idx]
            s = [dirs[i] for i in idx]
            s = torch._foreach_mul(s, args.eta_in) if not owned else s
            if owned:
                torch._foreach_mul_(s, args.eta_in)
            if args.squash == "tanh":
                _foreach_tanh_(s)
            else:
                torch._foreach_clamp_min_(s, -args.clip_bound)
                torch._foreach_clamp_max_(s, args.clip_bound)
            sign = torch._foreach_sign(ps)
            torch._foreach_mul_(s, sign)
            del sign
            torch._foreach_mul_(s, -c * math.log(args.exp_base))
            torch._foreach_exp_(s)
            torch._foreach_mul_(ps, s)
        for i in moved:
            if "max_abs" in states[i]:  # a per-tensor bound: one clamp per tensor, not per entry
                m = states[i]["max_abs"]
                params[i].clamp_(-m, m)


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
