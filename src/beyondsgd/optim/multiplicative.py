"""Multiplicative and hybrid update rules on top of SGD, Adam, RMSprop and Adagrad.

Kirtas et al., "Multiplicative update rules for accelerating deep learning training and increasing robustness"
(arXiv 2307.07189), and Madam (Bernstein et al. 2020, arXiv 2006.14560).

A :class:`RuleOptimizer` composes two pieces: a base optimizer's
:class:`~beyondsgd.optim.directions.Direction` (its state and direction ``d``,
computed exactly as ``torch.optim`` does) and, per param group, an
:class:`~beyondsgd.optim.update_rules.UpdateRule` (additive, multiplicative,
hybrid or exponential) applied where the base optimizer would add ``-lr * d``::

    opt = RuleAdam([
        {"params": weights, "rule": "hybrid", "gamma": 0.5},
        {"params": biases, "rule": "additive"},    # zero-initialized biases must move
    ], lr=1e-3, eta_out=1e-3)

Registered as ``m_sgd``, ``h_sgd``, ``m_adam``, ``h_adam``, ``m_rmsprop``,
``h_rmsprop``, ``m_adagrad``, ``h_adagrad`` and ``madam`` (family
"multiplicative").
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, cast

import torch
from torch.optim import Optimizer

from beyondsgd.optim import fused as _fused
from beyondsgd.optim._groups import collect_with_grad
from beyondsgd.optim._scalars import as_step, checkable, compiling, value
from beyondsgd.optim.directions import (
    AdagradDirection,
    AdamDirection,
    Direction,
    RMSpropDirection,
    SGDDirection,
)
from beyondsgd.optim.registry import OptimizerSpec, register
from beyondsgd.optim.update_rules import RULES, SLOT_GRAD, RuleArgs, Scratch, copy_into, get_rule, into
from beyondsgd.validation import (
    BOOL,
    NONNEGATIVE,
    OPTIONAL_BOOL,
    POSITIVE,
    UNIT,
    AnyOf,
    Constraint,
    Interval,
    OneOf,
    check_hyperparams,
)


class FrozenZerosWarning(UserWarning):
    """A param group under a rule that cannot move exact zeros holds exact zeros."""


#: Options of every rule optimizer (the base optimizer adds its own).
RULE_HYPERPARAMS: dict[str, Constraint] = {
    "rule": OneOf(tuple(RULES)),
    "lr": NONNEGATIVE,
    "eta_in": POSITIVE,
    "eta_out": NONNEGATIVE,
    "gamma": UNIT,
    "weight_decay": NONNEGATIVE,
    "maximize": BOOL,
    "foreach": OPTIONAL_BOOL,
    "fused": OPTIONAL_BOOL,
    "exp_base": Interval(1.0, low_open=True),
    "squash": OneOf(("tanh", "clip")),
    "clip_bound": POSITIVE,
    "max_scale": AnyOf((POSITIVE, OneOf((None,)))),
    "scheduler_scales_eta_out": BOOL,
}

_RULE_DEFAULTS: dict[str, Any] = {
    "rule": "hybrid",
    "eta_in": 1.0,
    "gamma": 1.0,
    "weight_decay": 0.0,
    "maximize": False,
    "foreach": None,
    "fused": None,
    "exp_base": math.e,
    "squash": "tanh",
    "clip_bound": 10.0,
    "max_scale": None,
    "scheduler_scales_eta_out": True,
}


#: Rules without an additive part: their only step size is ``eta_out``, and ``lr`` is its alias.
_MULTIPLICATIVE_ONLY = ("multiplicative", "exp")


def _multiplicative_only(rule: str, gamma: Any) -> bool:
    return rule in _MULTIPLICATIVE_ONLY or (rule == "hybrid" and gamma == 1.0)


def _alias_lr(owner: str, options: dict[str, Any], rule: str, gamma: Any) -> None:
    """For M/exp rules, make ``lr`` and ``eta_out`` one knob (in place on ``options``)."""
    if not _multiplicative_only(rule, gamma):
        return
    has_lr, has_eta = "lr" in options, "eta_out" in options
    if has_lr and has_eta:
        if rule == "hybrid":
            # gamma = 1 now, but a schedule may move gamma (schedules.HoldThenDecay): two values
            # given are two knobs, lr stepping the additive part once gamma < 1.
            return
        lr, eta = (float(options[k]) if isinstance(options[k], torch.Tensor) else options[k] for k in ("lr", "eta_out"))
        if lr != eta:
            raise ValueError(
                f"{owner}: rule {rule!r} has no additive step: its step size is eta_out and lr is another name "
                f"for it (so LR schedulers and lr=0 act on it); got lr={lr!r} and eta_out={eta!r}. Give one of them."
            )
    elif has_lr:
        # A number, not the same object: a Tensor lr is changed in place by LR schedulers, and
        # the multiplicative step already follows lr through lr / lr_ref.
        options["eta_out"] = _number(options["lr"])
    elif has_eta:
        options["lr"] = options["eta_out"]


class RuleOptimizer(Optimizer):
    """A base optimizer whose additive step is replaced by an update rule.

    Subclasses set :attr:`direction` (the base optimizer) and :attr:`base_defaults`.

    Step sizes (one table in docs/multiplicative.md): the additive part of a rule steps by
    ``lr``; the multiplicative part by ``eta_out * lr / lr_ref`` where ``lr_ref`` is the
    group's ``lr`` when the group was added (so LR schedulers, or setting ``group["lr"]``,
    scale it; ``scheduler_scales_eta_out=False`` keeps ``eta_out`` fixed).  ``lr = 0``
    freezes a group under every rule.  For rules without an additive part (M, ``exp``,
    hybrid with ``gamma = 1``) ``lr`` and ``eta_out`` are one knob: give either (giving
    both with different values is an error for M and ``exp``; for hybrid with ``gamma = 1``
    they stay two knobs, since a schedule may move ``gamma`` below 1).

    Args:
        params: parameters or param groups; any option below can be set per group
            (e.g. ``{"params": biases, "rule": "additive"}``).
        rule: ``"additive"`` (the base optimizer itself), ``"multiplicative"`` (M),
            ``"hybrid"`` (H, mixing weight ``gamma``) or ``"exp"`` (Madam-style). Default:
            ``"hybrid"`` with ``gamma = 1``, the authors' defaults (that is, rule M).
        lr: additive step size (rules A and H; the alias of ``eta_out`` for M/exp); a
            float or a one-element Tensor (read with ``.item()`` in eager mode).
        eta_in: ``tanh`` input scale: where the direction saturates; default 1.
        eta_out: multiplicative step size, the bound on ``|delta theta| / |theta|``.
        gamma: hybrid mixing weight in [0, 1] (1 = M, 0 = additive); default 1.
        weight_decay: L2 penalty added to the gradient, as in torch.optim.
        maximize: ascend instead of descend.
        foreach: ``True``: the multi-tensor (``torch._foreach_*``) path; ``False``: one
            tensor at a time (the reference, and on CPU the faster path: every op of a
            tensor runs while it is in cache); ``None`` (default): ``False`` on CPU,
            ``True`` on accelerators, as torch.optim chooses.
        fused: ``True``: the whole update of a tensor (direction, state and rule) as one
            loop generated by ``torch.compile`` (:mod:`beyondsgd.optim.fused`): one pass
            over memory, equal to the reference to float rounding; compiled once per
            kernel and process (seconds to a minute on a CPU). CPU and CUDA (CUDA
            untested). ``None``/``False`` (default): the paths above. Cannot be combined
            with ``foreach=True``.
        exp_base, squash, clip_bound, max_scale: options of the ``exp`` rule, see
            :class:`~beyondsgd.optim.update_rules.ExponentialRule`.
        scheduler_scales_eta_out: scale ``eta_out`` by ``lr / lr_ref`` (see above), so
            LR schedulers act on the multiplicative step too (the project's choice; the
            paper has no schedulers).
        **base_options: the base optimizer's own options (momentum, betas, ...).

    Complex parameters are optimized as ``torch.view_as_real`` pairs (torch.optim's
    convention); their state is kept in that real form.

    Raises:
        ValueError: an option out of range (the message names it and the range), or
            ``lr`` and ``eta_out`` that disagree for a rule without an additive part.

    References:
        Kirtas et al. 2023 (arXiv 2307.07189), the M and H rules; Bernstein et al. 2020
        (arXiv 2006.14560), Madam.
    """

    direction: ClassVar[Direction]
    base_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, params: Iterable[Any], **options: Any) -> None:
        name = type(self).__name__
        merged = {**_RULE_DEFAULTS, **self.direction.defaults, **self.base_defaults}
        options = dict(options)
        table = self.hyperparams()
        # The caller's own values first, so an error names the option they gave (not its alias).
        check_hyperparams(name, checkable(name, {k: v for k, v in options.items() if k in table}), table)
        rule = options.get("rule", merged["rule"])
        gamma = options.get("gamma", merged["gamma"])
        _alias_lr(name, options, rule, gamma)
        defaults = {**merged, **options}
        if _multiplicative_only(rule, gamma) and "lr" not in options and "eta_out" in defaults:
            defaults["lr"] = defaults["eta_out"]
        if rule == "additive":
            defaults.setdefault("eta_out", 0.0)  # (the additive rule has no multiplicative step)
        missing = [k for k in ("lr", "eta_out") if k not in defaults]
        if missing:
            raise ValueError(
                f"{name}: rule {rule!r} needs {' and '.join(missing)} (no class default; "
                "beyondsgd.optim.create supplies the registry's)"
            )
        check_hyperparams(name, checkable(name, defaults), self.hyperparams())
        _fused.check_fused(name, defaults["fused"], defaults["foreach"])
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # As torch.optim does: groups of an older state_dict get the options added since.
        super().__setstate__(state)
        for group in self.param_groups:
            for key, val in {**_RULE_DEFAULTS, **self.direction.defaults, **self.base_defaults}.items():
                group.setdefault(key, val)
            group.setdefault("lr_ref", _number(group.get("initial_lr", group["lr"])))
        for st in self.state.values():
            if isinstance(st, dict) and "step" in st:
                st["step"] = as_step(st["step"])

    @classmethod
    def hyperparams(cls) -> dict[str, Constraint]:
        """Every accepted option and its allowed values."""
        return {**RULE_HYPERPARAMS, **cls.direction.hyperparams}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(param_group, dict) and hasattr(self, "defaults"):
            rule = param_group.get("rule", self.defaults["rule"])
            gamma = param_group.get("gamma", self.defaults["gamma"])
            given: dict[str, Any] = {k: param_group[k] for k in ("lr", "eta_out") if k in param_group}
            _alias_lr(f"{name} param group {len(self.param_groups)}", given, rule, gamma)
            param_group = {**param_group, **given}
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        table = self.hyperparams()
        check_hyperparams(name, checkable(name, {k: v for k, v in group.items() if k in table}), table)
        _fused.check_fused(f"{name} param group {len(self.param_groups) - 1}", group["fused"], group["foreach"])
        self.direction.check(group)
        group.setdefault("lr_ref", _number(group["lr"]))
        rule = get_rule(group["rule"])
        if rule.freezes_zeros(self._rule_args(group)):
            with torch.no_grad():
                # (meta tensors hold no values: nothing to check)
                zeros = [i for i, p in enumerate(group["params"]) if not p.is_meta and bool((p == 0).any())]
            if zeros:
                warnings.warn(
                    f"{name}: param group {len(self.param_groups) - 1} uses rule "
                    f"{rule.name!r}, which can never move an exact zero, and parameters {zeros} of that "
                    "group hold exact zeros (zero-initialized biases?). Put them in a group with "
                    "rule='additive' or 'hybrid' (gamma < 1).",
                    FrozenZerosWarning,
                    stacklevel=3,
                )

    @staticmethod
    def _take_lr_reference(group: dict[str, Any]) -> None:
        """A group added frozen (``lr = 0``) takes its first non-zero ``lr`` as ``lr_ref``.

        Until then ``lr / lr_ref`` is undefined. For M and ``exp``, whose ``eta_out`` is lr's
        alias and so was 0, that lr is also ``eta_out``. Called from :meth:`_init_group` in eager
        steps; a compiled step does not keep the change, so :meth:`_rule_args` covers that case.
        """
        if group.get("lr_ref"):
            return
        lr = _number(group["lr"])
        if lr != 0.0:
            if RuleOptimizer._eta_out_frozen_by_alias(group):
                group["eta_out"] = lr
            group["lr_ref"] = lr

    @staticmethod
    def _eta_out_frozen_by_alias(group: Mapping[str, Any]) -> bool:
        """M or ``exp`` with ``eta_out`` 0 because it is lr's alias and the group was added with ``lr = 0``."""
        return _multiplicative_only(group["rule"], group["gamma"]) and _number(group["eta_out"]) == 0.0

    @staticmethod
    def _rule_args(group: dict[str, Any]) -> RuleArgs:
        lr = value(group["lr"])  # a number, or a traced tensor under torch.compile
        eta_out = value(group["eta_out"])
        ref = group.get("lr_ref", 0.0)
        if not isinstance(lr, torch.Tensor) and lr == 0.0:
            eta_out = 0.0  # lr = 0 freezes the group under every rule
        elif not ref:  # added frozen, stepped compiled (no host decision, no reference kept)
            if RuleOptimizer._eta_out_frozen_by_alias(group):
                eta_out = lr  # (M's step is lr itself, its alias)
            else:  # frozen while lr is 0, then eta_out unscaled (lr_ref is set by the next eager step)
                eta_out = eta_out * (lr != 0)
        elif group["scheduler_scales_eta_out"]:
            eta_out = eta_out * (lr / ref)
        return RuleArgs(
            lr=lr,
            eta_in=group["eta_in"],
            eta_out=eta_out,
            gamma=group["gamma"],
            exp_base=group["exp_base"],
            squash=group["squash"],
            clip_bound=group["clip_bound"],
            max_scale=group["max_scale"],
        )

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter that has a gradient.

        Args:
            closure: re-evaluates the model and returns the loss (optional).

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            self._init_group(group, params)
            if not params:
                continue
            states = [self.state[p] for p in params]
            # Complex tensors are optimized as (real, imag) pairs, as torch.optim does.
            grads = [cast(torch.Tensor, p.grad) for p in params]  # (_init_group kept those with one)
            grads = [torch.view_as_real(g) if g.is_complex() else g for g in grads]
            reals = [torch.view_as_real(p) if p.is_complex() else p for p in params]
            rule, args = get_rule(group["rule"]), self._rule_args(group)
            if group["fused"] and not compiling():
                owner = type(self).__name__
                left = _fused.step_rule_group(owner, self.direction, group, reals, grads, states, group["rule"], args)
                if left:  # not contiguous: the reference path
                    pick = [reals[i] for i in left], [grads[i] for i in left], [states[i] for i in left]
                    self._step_one(group, *pick, rule, args)
            elif compiling() or not self._use_foreach(group, reals):
                self._step_one(group, reals, grads, states, rule, args)
            else:
                self._step_many(group, reals, grads, states, rule, args)
            if not compiling():
                for p in params:  # no empty entries where there is nothing to keep (SGD without momentum)
                    if not self.state[p]:
                        del self.state[p]
        return loss

    def _init_group(self, group: dict[str, Any], params: list[torch.Tensor]) -> bool:
        """Append the group's parameters that have a gradient to ``params`` and create their state.

        torch.optim's hook of this name: ``torch.compile`` (dynamo) runs it eagerly instead of
        tracing it and guards on the state it made, so a compiled ``step`` traces one frame even
        from an empty state, as torch's Adam does. (SGD's momentum buffer is the first gradient,
        made inside the step, as torch's SGD makes it: there the first step is a frame of its own.)

        Returns:
            Whether any of the parameters is complex.
        """
        self._take_lr_reference(group)
        rule, args = get_rule(group["rule"]), None
        first = len(params)
        has_complex = collect_with_grad(type(self).__name__, group, params)
        for p in params[first:]:
            real = torch.view_as_real(p) if p.is_complex() else p
            st = self.state[p]
            if args is None:
                args = self._rule_args(group)
            rule.init_state(real, st, args)  # (the rule's keys first, as before this hook)
            self.direction.init_state(real, st, group)
        return has_complex

    @staticmethod
    def _use_foreach(group: Mapping[str, Any], params: list[torch.Tensor]) -> bool:
        if group["foreach"] is not None:
            return bool(group["foreach"])
        return all(p.device.type != "cpu" for p in params)

    def _step_one(self, group, params, grads, states, rule, args) -> None:
        """One tensor at a time (the reference; on CPU also the faster path).

        Temporaries come from one :class:`~beyondsgd.optim.update_rules.Scratch` per step
        (each slot the size of the largest tensor, freed after the step); under
        ``torch.compile`` they are plain temporaries that inductor fuses away.
        """
        owned = self.direction.owns(group)
        scratch = None if compiling() else Scratch(max(p.numel() for p in params))
        for p, g, st in zip(params, grads, states):
            if group["maximize"] or group["weight_decay"] != 0.0:
                g = (
                    torch.neg(g, **into(scratch, SLOT_GRAD, p))
                    if group["maximize"]
                    else copy_into(scratch, SLOT_GRAD, g)
                )
                if group["weight_decay"] != 0.0:
                    g.add_(p, alpha=group["weight_decay"])
            d, scale = self.direction.one(p, g, st, group, scratch)
            rule.apply_one(p, d, scale, args, st, owned=owned, scratch=scratch)

    def _step_many(self, group, params, grads, states, rule, args) -> None:
        """Multi-tensor path (``torch._foreach_*``), equal to :meth:`_step_one` to rounding."""
        if group["maximize"]:
            grads = torch._foreach_neg(grads)
        if group["weight_decay"] != 0.0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        dirs, scales = self.direction.many(params, grads, states, group)
        rule.apply_many(params, dirs, scales, args, states, owned=self.direction.owns(group))


def _number(x: Any) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


class RuleSGD(RuleOptimizer):
    """SGD (momentum, dampening, Nesterov as torch.optim.SGD) with an update rule.

    See :class:`RuleOptimizer` for the rule options.
    """

    direction = SGDDirection()


class RuleAdam(RuleOptimizer):
    """Adam (torch.optim.Adam; ``bias_correction`` chooses where ``1 / (1 - beta1^t)`` goes)
    with an update rule. See :class:`RuleOptimizer` and
    :class:`~beyondsgd.optim.directions.AdamDirection`."""

    direction = AdamDirection()


class RuleRMSprop(RuleOptimizer):
    """RMSprop (plain, momentum, centered; torch.optim.RMSprop) with an update rule."""

    direction = RMSpropDirection()


class RuleAdagrad(RuleOptimizer):
    """Adagrad (torch.optim.Adagrad) with an update rule."""

    direction = AdagradDirection()


class Madam(RuleAdam):
    """Madam (Bernstein et al. 2020, Algorithm 1) as the ``exp`` rule on Adam's direction.

    ``theta <- theta * exp(-eta_out * sign(theta) * clip(g / sqrt(v_hat), +-10))``, then
    ``|theta|`` clamped to 3x its initial RMS; ``v`` is Adam's second moment with
    ``beta2 = 0.999`` and no first moment (``betas = (0, 0.999)``).  Defaults are
    Madam's (``eta_out = 0.01``).
    """

    base_defaults = {
        "rule": "exp",
        "betas": (0.0, 0.999),
        "lr": 0.01,
        "eta_out": 0.01,
        "squash": "clip",
        "clip_bound": 10.0,
        "max_scale": 3.0,
    }


# --- registry -------------------------------------------------------------------------------
# Defaults: the authors' code where it gives them (Adam: lr = eta_out = 1e-3; RMSprop and
# Adagrad: lr = eta_out = 1e-2; eta_in = 1), changed where the quick digits/MLP sweep
# (benchmarks/sweep_multiplicative_defaults.py, numbers in docs/multiplicative.md) showed the
# paper's value barely trains in 10-20 epochs: m_adam/h_adam eta_out 1e-2, m_adagrad eta_out 0.1.
# SGD has no default there: raw gradients are small, so eta_in = 10 moves tanh out of its
# linear range; eta_out = 0.3.  Hybrid gamma: the authors default to 1.0, which makes H identical
# to M; we use 0.5.
_FAMILY = "multiplicative"
_LR_ALIASES = {"lr": "eta_out", "eta_out": "lr"}
_HYBRID_GAMMA = 0.5
#: base -> (class, label, defaults of m_<base>, defaults of h_<base>)
_DEFAULTS = {
    "sgd": (RuleSGD, "SGD", {"lr": 0.05, "eta_in": 10.0, "eta_out": 0.3}, {"lr": 0.05, "eta_in": 10.0, "eta_out": 0.3}),
    "adam": (
        RuleAdam,
        "Adam",
        {"lr": 1e-3, "eta_in": 1.0, "eta_out": 1e-2},
        {"lr": 1e-3, "eta_in": 1.0, "eta_out": 1e-2},
    ),
    "rmsprop": (
        RuleRMSprop,
        "RMSprop",
        {"lr": 1e-2, "eta_in": 1.0, "eta_out": 1e-2},
        {"lr": 1e-2, "eta_in": 1.0, "eta_out": 1e-2},
    ),
    "adagrad": (
        RuleAdagrad,
        "Adagrad",
        {"lr": 1e-2, "eta_in": 1.0, "eta_out": 0.1},
        {"lr": 1e-2, "eta_in": 1.0, "eta_out": 1e-2},
    ),
}


def _factory(cls: type[RuleOptimizer], rule: str):
    def make(params: Any, **hp: Any) -> RuleOptimizer:
        return cls(params, rule=rule, **hp)

    make.__name__ = f"{rule}_{cls.__name__}"
    return make


def _when_gamma_is_one(spec: OptimizerSpec, hyperparams: Mapping[str, Any]) -> OptimizerSpec | None:
    return spec if hyperparams.get("gamma") == 1.0 else None


def _register_all() -> None:
    for base, (cls, label, m_defaults, h_defaults) in _DEFAULTS.items():
        table = {
            k: v
            for k, v in cls.hyperparams().items()
            if k not in ("rule", "exp_base", "squash", "clip_bound", "max_scale")
        }
        m_table = {k: v for k, v in table.items() if k != "gamma"}
        register(
            OptimizerSpec(
                name=f"m_{base}",
                factory=_factory(cls, "multiplicative"),
                hyperparams=m_table,
                # Rule M has no additive step: lr is the alias of eta_out (see RuleOptimizer).
                defaults={k: v for k, v in m_defaults.items() if k != "lr"},
                aliases=_LR_ALIASES,
                family=_FAMILY,
                shardable=True,  # elementwise rule and direction
                description=f"{label} with the multiplicative rule M (Kirtas et al. 2023)",
            )
        )
        hybrid = OptimizerSpec(
            name=f"h_{base}",
            factory=_factory(cls, "hybrid"),
            hyperparams=table,
            defaults={**h_defaults, "gamma": _HYBRID_GAMMA},
            family=_FAMILY,
            shardable=True,
            description=f"{label} with the hybrid rule H, gamma-mix of M and additive (Kirtas et al. 2023)",
        )
        # gamma = 1 leaves no additive step: then lr is eta_out's alias, as for m_*, and the
        # registered lr default (H's additive step) is not passed next to eta_out's.
        as_m = dataclasses.replace(
            hybrid, defaults={k: v for k, v in hybrid.defaults.items() if k != "lr"}, aliases=_LR_ALIASES
        )
        register(dataclasses.replace(hybrid, variant=functools.partial(_when_gamma_is_one, as_m)))
    # (gamma mixes H's two parts; the exp rule has one, so madam refuses it rather than ignore it)
    madam_table = {k: v for k, v in Madam.hyperparams().items() if k not in ("rule", "gamma")}
    register(
        OptimizerSpec(
            name="madam",
            factory=Madam,
            hyperparams=madam_table,
            defaults={"eta_out": 0.01},
            aliases=_LR_ALIASES,
            family=_FAMILY,
            description="Madam: exponential multiplicative rule on the normalized gradient (Bernstein et al. 2020)",
        )
    )


_register_all()
