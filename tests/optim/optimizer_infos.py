"""One table of every registry optimizer that is not a torch.optim class, for the generic tests.

The table plays the part of ``torch.testing._internal.common_optimizers.optim_db`` for
``test_generic_optimizers.py``: each entry says how to build the optimizer, which
configurations to try, and which torch.optim conventions apply to it (a written reason
wherever one does not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from beyondsgd import optim


@dataclass(frozen=True)
class OptimInput:
    """One configuration of an optimizer (keyword arguments of ``optim.create``)."""

    desc: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimInfo:
    """How the generic tests treat one registry optimizer.

    Attributes:
        name: registry name.
        fixed: keyword arguments every test passes (see :meth:`make`).
        inputs: configurations every per-configuration test runs.
        lr: a valid learning rate (the Tensor-lr and param-group tests use it).
        weight_decay: the optimizer takes ``weight_decay``.
        elementwise: the update is elementwise, so complex parameters are optimized as
            ``view_as_real`` pairs, ``torch.compile(step)`` is expected to compile once, and
            the optimizer has a ``fused=True`` path (one generated loop per tensor).
        lr_zero_allowed: ``lr = 0`` is a valid value (it then freezes the group).
        torch_state_keys: the state keys torch.optim's own base optimizer keeps per parameter
            (``None``: no torch counterpart with the same state).
        extra_state_keys: keys beyond ``torch_state_keys`` the rule adds, and why.
        late_flags: param-group keys added in later versions (a state_dict without them must load).
    """

    name: str
    inputs: tuple[OptimInput, ...]
    lr: float
    weight_decay: bool = True
    elementwise: bool = True
    lr_zero_allowed: bool = True
    torch_state_keys: Callable[[dict[str, Any]], set[str]] | None = None
    extra_state_keys: frozenset[str] = frozenset()
    late_flags: tuple[str, ...] = ("foreach", "maximize")
    fixed: dict[str, Any] = field(default_factory=dict)

    def make(self, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """``optim.create`` with ``fixed`` (e.g. a seed, so two instances agree) under ``kwargs``."""
        return optim.create(self.name, params, **{**self.fixed, **kwargs})


def _sgd_keys(kw: dict[str, Any]) -> set[str]:
    return {"momentum_buffer"} if kw.get("momentum", 0.0) else set()


def _adam_keys(kw: dict[str, Any]) -> set[str]:
    # torch's Adam keeps exp_avg even with beta1 = 0 (a copy of the gradient); ours keeps none then.
    first = {"exp_avg"} if kw.get("betas", (0.9, 0.999))[0] != 0.0 else set()
    return {"step", "exp_avg_sq"} | first | ({"max_exp_avg_sq"} if kw.get("amsgrad") else set())


def _rmsprop_keys(kw: dict[str, Any]) -> set[str]:
    keys = {"step", "square_avg"}
    if kw.get("momentum", 0.0):
        keys.add("momentum_buffer")
    if kw.get("centered"):
        keys.add("grad_avg")
    return keys


def _adagrad_keys(kw: dict[str, Any]) -> set[str]:
    return {"step", "sum"}


_RULE_FLAGS = (
    "foreach",
    "fused",
    "maximize",
    "scheduler_scales_eta_out",
    "lr_ref",
    "squash",
    "clip_bound",
    "max_scale",
)


def _rule_infos() -> list[OptimInfo]:
    out = []
    base = {
        "sgd": (
            _sgd_keys,
            [
                OptimInput("momentum", {"momentum": 0.9}),
                OptimInput("nesterov", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
            ],
        ),
        "adam": (
            _adam_keys,
            [
                OptimInput("amsgrad", {"amsgrad": True, "weight_decay": 0.01}),
                OptimInput("inside", {"bias_correction": "inside", "betas": (0.8, 0.99)}),
            ],
        ),
        "rmsprop": (
            _rmsprop_keys,
            [OptimInput("centered-momentum", {"centered": True, "momentum": 0.5, "weight_decay": 0.01})],
        ),
        "adagrad": (_adagrad_keys, [OptimInput("lr_decay", {"lr_decay": 0.05, "initial_accumulator_value": 0.1})]),
    }
    for b, (keys, extra) in base.items():
        for prefix in ("m", "h"):
            name = f"{prefix}_{b}"
            lr = optim.get_spec(name).defaults.get("eta_out" if prefix == "m" else "lr")
            inputs = (OptimInput("default"), OptimInput("maximize", {"maximize": True}), *extra)
            out.append(OptimInfo(name, inputs, lr=lr, torch_state_keys=keys, late_flags=_RULE_FLAGS))
    out.append(
        OptimInfo(
            "madam",
            (OptimInput("default"), OptimInput("maximize", {"maximize": True}), OptimInput("tanh", {"squash": "tanh"})),
            lr=0.01,
            # torch's Adam with Madam's betas (0, 0.999) would also hold exp_avg, a copy of the gradient;
            # Madam keeps only v (Bernstein et al. 2020, Algorithm 1), and so do we.
            torch_state_keys=lambda kw: {"step", "exp_avg_sq"},
            # Madam clamps |theta| to max_scale times its initial RMS, kept per tensor.
            extra_state_keys=frozenset({"max_abs"}),
            late_flags=_RULE_FLAGS,
        )
    )
    return out


_MOMENTUM_INPUTS = (
    OptimInput("default"),
    OptimInput("maximize", {"maximize": True}),
    OptimInput("convex-wd", {"momentum_schedule": "convex", "weight_decay": 0.01}),
)

_DSGD_INPUTS = (
    OptimInput("default"),
    OptimInput("maximize", {"maximize": True}),
    OptimInput("frobenius", {"norm": "frobenius"}),
)

INFOS: list[OptimInfo] = [
    *_rule_infos(),
    # hb/nag keep the papers' displacement W_k - W_{k-1}, not torch SGD's momentum buffer.
    OptimInfo("hb", _MOMENTUM_INPUTS, lr=0.03, late_flags=("foreach", "fused", "maximize")),
    OptimInfo("nag", _MOMENTUM_INPUTS, lr=0.03, late_flags=("foreach", "fused", "maximize")),
    *(
        OptimInfo(
            name,
            _DSGD_INPUTS,
            lr=1.0,
            weight_decay=False,  # DSGD has no weight decay option (its step is a layer's duality map)
            elementwise=False,  # one layer per step, chosen by norms of whole layers
            lr_zero_allowed=False,  # lr is the step multiplier on (0, 2); 0 is refused
            late_flags=("foreach", "maximize", "norm"),
            fixed={"seed": 0},  # the layer draws (random) and the saved generator state then agree
        )
        for name in ("dsgd", "dsgd_cyclic", "dsgd_random")
    ),
]

assert sorted(i.name for i in INFOS) == sorted(
    n for n in optim.available() if n not in ("sgd", "adam", "rmsprop", "adagrad")
), "every non-torch registry optimizer must have an entry"
