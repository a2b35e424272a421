"""The fused path (``fused=True``): one generated loop per tensor for the rule optimizers, hb and nag.

The reference paths (:meth:`~beyondsgd.optim.multiplicative.RuleOptimizer._step_one`, the
``_update_single`` methods of :mod:`beyondsgd.optim.momentum`) are sequences of torch ops, each
one pass over the tensor's memory.  Here the whole update of one tensor (gradient sign and
weight decay, the base optimizer's direction and state, the update rule) is written as one pure
elementwise function of ``(param, grad, state tensors, scalars)`` and compiled once by
``torch.compile`` (inductor): it generates a single loop (C++ on CPU, Triton on CUDA) that reads
each input once and writes the new parameter and state in place.

* Static choices (rule, squash, momentum or not, amsgrad, centered, weight decay or not) select
  the kernel; each kernel is compiled once per process and cached in this module (one code
  object per kernel, so dynamo's per-code recompile limit is never shared between them).
* One compiled call steps every tensor of a param group (of one device and dtype), so the
  fixed cost of calling compiled code (tens of microseconds) is paid once per group; the
  generated code still runs one loop per tensor.  Compiled with ``dynamic=True``: sizes are
  symbols, so a new size does not recompile (a group with another number or rank of tensors
  is another kernel; sizes 0 and 1 are specialized by dynamo).
* Tensors that are not contiguous take the reference path.
* ``hb`` in float32/float64 needs no generated code: its update is torch's own fused SGD kernel
  applied to the displacement (see :func:`step_momentum`).
* Hyperparameters, step-dependent factors (bias corrections) and the momentum schedule are one
  tensor of scalars (float64 for float64 parameters, else float32), so new values never recompile.

No buffer is kept between steps and a step allocates only the small scalar tensor.  The
arithmetic is the reference's, but not its rounding: inductor may fuse multiply-adds and uses
``exp2`` for ``tanh`` and ``exp`` (the CPU reference computes ``tanh`` as ``2 sigmoid(2x) - 1``), and
where the host proves the argument small, polynomials (:func:`_exp2_short`, :func:`_tanh_short`), so the
two paths agree to float rounding (tested at ``rtol 1e-5``), not bit for bit.  That, and the
one-time compilation (seconds to a minute on a CPU), is why ``fused`` is off by default.
CUDA is supported by the same code but was not tested (no GPU was available).

References:
    PyTorch, ``torch.compile`` and TorchInductor (Ansel et al., "PyTorch 2", ASPLOS 2024).
"""

from __future__ import annotations

import math
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

State = dict[str, Any]

#: Device types the fused path runs on (inductor's C++ and Triton backends).
FUSED_DEVICES = ("cpu", "cuda")

_LOCK = threading.Lock()
_KERNELS: dict[tuple[Any, ...], Callable[..., None]] = {}


def check_fused(owner: str, fused: Any, foreach: Any) -> None:
    """Raise ``ValueError`` for ``fused=True`` with ``foreach=True`` (torch.optim's rule)."""
    if fused and foreach:
        raise ValueError(f"{owner}: fused=True and foreach=True cannot be used together: choose one path")


def check_device(owner: str, device: torch.device) -> None:
    """Raise ``RuntimeError`` if ``device`` is one the fused path does not support."""
    if device.type not in FUSED_DEVICES:
        raise RuntimeError(
            f"{owner}: fused=True supports devices {', '.join(FUSED_DEVICES)}; got a parameter on "
            f"{device}. Use fused=False."
        )


def _many(ps, gs, ss, sc, bounds, *, body, statics):
    """``body`` on every tensor of a group: one compiled call per group (per-call overhead of a
    compiled function, tens of microseconds, is paid once), one generated loop per tensor."""
    for i in range(len(ps)):
        body(ps[i], gs[i], ss[i], sc[i], bounds[i] if bounds else None, **statics)


def _compile(key: tuple[Any, ...], body: Callable[..., None], statics: Mapping[str, Any]) -> Callable[..., None]:
    """``body`` with ``statics`` bound, compiled once per ``key`` under its own code object
    (dynamo caches, and limits recompiles, per code object)."""
    with _LOCK:
        fn = _KERNELS.get(key)
        if fn is None:
            name = f"fused_kernel_{len(_KERNELS)}"
            code = body.__code__.replace(co_name=name, co_qualname=name)
            own = types.FunctionType(code, body.__globals__, name, body.__defaults__, body.__closure__)
            own.__kwdefaults__ = dict(statics)  # the static choices are constants of this function
            # dynamo's guards already check sizes and strides: inductor's own asserts would cost ~1 us per tensor.
            options: dict[str, str | int | bool | Callable[..., Any]] = {"size_asserts": False, "scalar_asserts": False}
            fn = _KERNELS[key] = torch.compile(own, dynamic=True, fullgraph=True, options=options)
        return fn


def run(owner: str, key: tuple[Any, ...], body: Callable[..., None], statics: Mapping[str, Any], *args: Any) -> None:
    """Call the kernel of ``key`` (compiling it on first use) on the tensors ``args``.

    Raises:
        RuntimeError: compilation failed (e.g. no C++ compiler on a CPU machine), naming the
            optimizer and the way out (``fused=False``); the original error is chained.
    """
    fn = _compile(key, body, statics)
    try:
        fn(*args)
    except Exception as err:  # inductor's errors are long tracebacks deep inside torch
        raise RuntimeError(
            f"{owner}: the fused step (torch.compile) failed: {type(err).__name__}: {str(err)[:300]}. "
            "Use fused=False (the reference path)."
        ) from err


# --------------------------------------------------------------------------- rule optimizers


def _gradient(p: torch.Tensor, g: torch.Tensor, sc: torch.Tensor, wd: bool, neg: bool) -> torch.Tensor:
    """``(-)g (+ weight_decay * p)``: ``neg`` (maximize) and ``wd`` are static (a plain step has no
    multiplication by a sign), ``sc[0]`` is the decay."""
    g = -g if neg else g
    return g + p * sc[0] if wd else g


#: ``-2 log2(e)``: ``exp(-2x) = exp2(-2 log2(e) x)``.
_MINUS_TWO_LOG2E = -2.0 / math.log(2.0)


def _tanh_of(d: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``tanh(eta_in d)`` given ``k = -2 log2(e) eta_in`` (:func:`rule_scalars`): ``2 / (1 + exp2(k d)) - 1``.

    Inductor's vectorized ``tanh`` is several times slower than its ``exp``, and its ``exp2`` is
    not slower than ``exp`` (``benchmarks/fused_exp_variants.py``; docs/optimizers.md); folding
    ``eta_in`` into ``k`` saves a multiplication per entry. The rounding differs from the
    reference path's (``2 sigmoid(2x) - 1``) by a few float32 ulps: they agree to rounding.
    """
    return 2.0 / (1.0 + torch.exp2(d * k)) - 1.0


#: ``(largest |x|, degree in x^2)`` of the odd polynomials :func:`_tanh_short` may use, shortest range
#: first. Their truncation error is at most 3.2e-10 (degree 5 to 0.5) and 4.4e-9 (degree 7 to 1)
#: relative, under float32's rounding; evaluated in float32 they agree with ``tanh`` to 1.2e-7 relative
#: (``torch.tanh`` itself: 6e-8), also near 0, where ``2 / (1 + exp2(k x)) - 1`` loses digits to
#: cancellation (tested).
SHORT_TANH = ((0.5, 5), (1.0, 7))
#: Each polynomial is fitted on its range widened by this factor, so that a bound that is the range's
#: limit plus rounding (Adagrad's ``|d| <= 1`` at ``eta_in = 1``, its default) still takes it.
_TANH_RANGE_SLACK = 1.001


def _tanh_over_x_coefficients(limit: float, degree: int) -> tuple[float, ...]:
    """Power-basis coefficients (in ``t = x^2``, constant first) of the Chebyshev interpolant of degree
    ``degree`` of ``tanh(x) / x`` on ``t in [0, limit^2]`` (near-minimax; computed in float64)."""
    t = (limit * limit) * (1.0 - np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))) / 2.0
    x = np.sqrt(t)
    values = np.tanh(x) / x
    return tuple(float(c) for c in np.polynomial.polynomial.polyfit(t, values, degree))


#: degree -> coefficients of :func:`_tanh_short` (each degree is used for one range only).
_TANH_COEFFICIENTS = {
    degree: _tanh_over_x_coefficients(limit * _TANH_RANGE_SLACK, degree) for limit, degree in SHORT_TANH
}


def _tanh_short(x: torch.Tensor, degree: int) -> torch.Tensor:
    """``tanh(x)`` for ``|x|`` within the range of ``degree`` (:data:`SHORT_TANH`): ``x q(x^2)`` (Horner).

    Where the host can bound the squashed argument before the step (:func:`short_tanh_degree`), this
    replaces the kernel's ``exp2`` and division by a few multiply-adds. Outside its range the
    polynomial is wrong, so it is used only where the bound is proven.
    """
    coefficients = _TANH_COEFFICIENTS[degree]
    t = x * x
    acc = t * coefficients[-1] + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        acc = acc * t + c
    return x * acc


def short_tanh_degree(direction: str, rule: tuple, eta_in: float, dtype: torch.dtype) -> int:
    """The degree of :func:`_tanh_short` for a rule's ``tanh(eta_in d)``, or 0 (the ``exp2`` form).

    Only Adagrad's direction has a bound known before the step: ``d = g / (sqrt(s) + eps)`` with
    ``s = s_prev + g^2 >= g^2`` (``s_prev >= 0``, ``eps > 0``: validated), so ``|d| <= 1`` (to
    rounding, allowed for), whatever the gradients. Not for float64 parameters (the polynomials are
    accurate to float32), not for a rule that does not squash with ``tanh``.
    """
    squashes = rule[0] in ("multiplicative", "hybrid") or (rule[0] == "exp" and rule[1] == "tanh")
    if direction != "adagrad" or not squashes or dtype == torch.float64:
        return 0
    x_max = abs(float(eta_in)) * (1.0 + 2.0**-20)
    return next((degree for limit, degree in SHORT_TANH if x_max <= limit * _TANH_RANGE_SLACK), 0)


def _tanh_in_rule(d: torch.Tensor, first: torch.Tensor, rule: tuple) -> torch.Tensor:
    """``tanh(eta_in d)``; ``rule[-1]`` is the degree of :func:`_tanh_short` (then ``first`` is
    ``eta_in``) or 0 (then ``first`` is ``k``, :func:`_tanh_of`); see :func:`rule_scalars`."""
    return _tanh_short(d * first, rule[-1]) if rule[-1] else _tanh_of(d, first)


#: ``(largest |x|, degree)`` of the Taylor polynomials :func:`_exp2_short` may use, shortest range first.
#: Truncation error ``(x ln 2)^(n+1) / (n+1)!`` and the next terms: at most 1.9e-9 (degree 5 to 0.15)
#: and 1.1e-9 (degree 6 to 0.25) relative, far under float32's rounding (6e-8). Beyond 0.25 (or for
#: float64) the kernel calls ``exp2``.
SHORT_EXP2 = ((0.15, 5), (0.25, 6))
#: ``ln(2)^k / k!``, ``k = 1..6``: the Taylor coefficients of ``2^x = e^(x ln 2)``.
_EXP2_TAYLOR = tuple(math.log(2.0) ** k / math.factorial(k) for k in range(1, 7))


def _exp2_short(x: torch.Tensor, degree: int) -> torch.Tensor:
    """``2^x`` for small ``|x|`` (see :data:`SHORT_EXP2`) by its Taylor polynomial of ``degree`` (Horner).

    The exp rule's exponent is ``sign(p) s a`` with ``|s|`` at most the clip bound (1 under ``tanh``)
    and ``a = -eta_out log2(base)`` times the step's scale: at Madam's defaults ``|x| <= 0.144``. The
    host knows that bound before the step and picks the polynomial only within its range (see
    :func:`short_exp2_degree`); the general ``exp2`` is the kernel's costliest operation. The result
    agrees with ``exp2`` to float32 rounding (tested).
    """
    acc = x * _EXP2_TAYLOR[degree - 1]
    for c in reversed(_EXP2_TAYLOR[: degree - 1]):
        acc = x * (acc + c)
    return acc + 1.0


def short_exp2_degree(rule: tuple, a_values: list[float], dtype: torch.dtype) -> int:
    """The degree of :func:`_exp2_short` that is exact to float32 rounding for every exponent the exp rule
    can take with these coefficients ``a``, or 0 (use ``exp2``): beyond the ranges, for another rule, or
    for float64 parameters (where the polynomial is not accurate enough)."""
    if rule[0] != "exp" or dtype == torch.float64 or not a_values:
        return 0
    s_max = 1.0 if rule[1] == "tanh" else float(rule[2])
    x_max = max(abs(a) for a in a_values) * s_max
    return next((degree for limit, degree in SHORT_EXP2 if x_max <= limit), 0)


def _signed_by(s: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``s`` with its sign flipped where ``p`` is negative: ``sign(p) s`` wherever ``p != 0`` (where the
    rule multiplies ``p = 0`` by the factor, it stays 0 whatever the sign).

    A select (compare and blend in the generated loop). An XOR of the sign bits through int32 views,
    used before, is lowered by inductor's C++ backend to a store and a scalar reload per vector: on an
    AVX-512 CPU it ran Madam's fused step 2.7x torch's fused Adam against 1.2x with the select
    (``benchmarks/bench_update_rules.py --only madam``).
    """
    return torch.where(p >= 0, s, -s)


def _rule_update(p: torch.Tensor, d: torch.Tensor, sc: torch.Tensor, bound: torch.Tensor, rule: tuple) -> torch.Tensor:
    """The new weight; ``sc[1:4]`` = ``(eta_in or k, a, b)``, see :func:`rule_scalars`.

    For the exp rule, ``rule[4]`` (set per step by :func:`step_rule_group`) is the degree of
    :func:`_exp2_short`, or 0 for ``exp2``; for every rule, ``rule[-1]`` is the degree of
    :func:`_tanh_short`, or 0 (see :func:`_tanh_in_rule`).
    """
    kind = rule[0]
    if kind == "exp":
        s = _tanh_in_rule(d, sc[1], rule) if rule[1] == "tanh" else (d * sc[1]).clamp(-rule[2], rule[2])
        x = _signed_by(s * sc[2], p)  # sc[2] in log2 units (rule_scalars)
        new = p * (_exp2_short(x, rule[4]) if rule[4] else torch.exp2(x))
        if not rule[3]:
            return new
        # sc[-1] is 0, or inf in a frozen group (lr = 0): there the bound is inf, so no clamp moves it
        lim = torch.maximum(bound, sc[-1])
        return torch.minimum(torch.maximum(new, -lim), lim)
    if kind == "additive":
        return p - d * sc[3]
    t = _tanh_in_rule(d, sc[1], rule)
    if kind == "multiplicative":
        return p - t * torch.abs(p) * sc[2]
    return p - d * sc[3] - t * torch.abs(p) * sc[2]


def rule_key(rule_name: str, group: Mapping[str, Any]) -> tuple[Any, ...]:
    """The static part of a rule (what selects a kernel)."""
    if rule_name == "exp":
        return ("exp", group["squash"], float(group["clip_bound"]), group["max_scale"] is not None)
    if rule_name == "hybrid" and float(group["gamma"]) in (0.0, 1.0):
        return ("additive",) if float(group["gamma"]) == 0.0 else ("multiplicative",)
    return (rule_name,)


def rule_scalars(rule: tuple, args: Any, scale: float, short_tanh: bool = False) -> tuple[float, float, float]:
    """``(eta_in or k, a, b)``: the multiplicative coefficient ``a`` and the additive ``b`` (both times ``scale``).

    The first is ``k = -2 log2(e) eta_in`` where the rule squashes with ``tanh`` (see
    :func:`_tanh_of`), else ``eta_in``; also ``eta_in`` where ``short_tanh`` (:func:`_tanh_short`
    takes ``eta_in d``). For the exp rule ``a = -eta_out * scale * log2(base)`` (the kernel takes
    ``exp2``, so ``2**(a u) = base**(-eta_out * scale * u)``); for M/H ``a = gamma * eta_out * scale``
    and ``b = (1 - gamma) * lr * scale`` (as :class:`~beyondsgd.optim.update_rules.HybridRule`).
    """
    tanh_k = float(args.eta_in) * (1.0 if short_tanh else _MINUS_TWO_LOG2E)
    if rule[0] == "exp":
        first = tanh_k if rule[1] == "tanh" else float(args.eta_in)
        return first, -float(args.eta_out) * scale * math.log2(args.exp_base), 0.0
    gamma = {"additive": 0.0, "multiplicative": 1.0}.get(rule[0], float(args.gamma))
    return tanh_k, gamma * float(args.eta_out) * scale, (1.0 - gamma) * float(args.lr) * scale


def _sgd_body(p, g, s, sc, bound, *, wd, neg, momentum, nesterov, rule):
    # s: [momentum_buffer] or []; sc: wd, eta_in, a, b, c1, c2, mu (first step: c1 = 0, c2 = 1: buf = g)
    g = _gradient(p, g, sc, wd, neg)
    if momentum:
        b = s[0] * sc[4] + g * sc[5]
        d = g + b * sc[6] if nesterov else b
        s[0].copy_(b)
    else:
        d = g
    p.copy_(_rule_update(p, d, sc, bound, rule))


def _adam_body(p, g, s, sc, bound, *, wd, neg, amsgrad, first_moment, inside, rule):
    # s: [exp_avg,] exp_avg_sq[, max_exp_avg_sq] (no exp_avg when beta1 = 0: first_moment False);
    # sc: wd, eta_in, a, b, 1 - beta1, beta2, 1 - beta2, 1 / sqrt(bc2), eps,
    # dmul (1 / bc1 with bias_correction="inside", else 1), beta1
    g = _gradient(p, g, sc, wd, neg)
    if first_moment:
        # lerp(m, g, 1 - beta1) as beta1 m + (1 - beta1) g: the same value to rounding, without
        # lerp's two-branch blend per entry.
        m_new = s[0] * sc[10] + g * sc[4]
        s[0].copy_(m_new)
    else:
        m_new = g  # beta1 = 0: the reference's lerp(m, g, 1) is g exactly
    k = 1 if first_moment else 0
    v_new = s[k] * sc[5] + g * g * sc[6]
    s[k].copy_(v_new)
    if amsgrad:
        v_new = torch.maximum(s[k + 1], v_new)
        s[k + 1].copy_(v_new)
    d = m_new / (torch.sqrt(v_new) * sc[7] + sc[8])
    if inside:  # bias_correction="inside": 1 / bc1 here (else that factor is 1, and multiplying by it is skipped)
        d = d * sc[9]
    p.copy_(_rule_update(p, d, sc, bound, rule))


def _rmsprop_body(p, g, s, sc, bound, *, wd, neg, centered, momentum, rule):
    # s: square_avg[, grad_avg][, momentum_buffer]; sc: wd, eta_in, a, b, alpha, 1 - alpha, eps, mu
    g = _gradient(p, g, sc, wd, neg)
    sq_new = s[0] * sc[4] + g * g * sc[5]
    s[0].copy_(sq_new)
    if centered:
        ga_new = torch.lerp(s[1], g, sc[5])
        s[1].copy_(ga_new)
        avg = torch.sqrt(sq_new - ga_new * ga_new) + sc[6]
    else:
        avg = torch.sqrt(sq_new) + sc[6]
    if momentum:
        buf = s[-1]
        d = buf * sc[7] + g / avg
        buf.copy_(d)
    else:
        d = g / avg
    p.copy_(_rule_update(p, d, sc, bound, rule))


def _adagrad_body(p, g, s, sc, bound, *, wd, neg, rule):
    # s: [sum]; sc: wd, eta_in, a, b, eps
    g = _gradient(p, g, sc, wd, neg)
    s_new = s[0] + g * g
    s[0].copy_(s_new)
    d = g / (torch.sqrt(s_new) + sc[4])
    p.copy_(_rule_update(p, d, sc, bound, rule))


_BODIES = {"sgd": _sgd_body, "adam": _adam_body, "rmsprop": _rmsprop_body, "adagrad": _adagrad_body}


def _statics(name: str, group: Mapping[str, Any], rule: tuple, wd: bool) -> dict[str, Any]:
    common = {"wd": wd, "neg": bool(group["maximize"]), "rule": rule}
    if name == "sgd":
        return {**common, "momentum": group["momentum"] != 0.0, "nesterov": bool(group["nesterov"])}
    if name == "adam":
        return {
            **common,
            "amsgrad": bool(group["amsgrad"]),
            "first_moment": float(group["betas"][0]) != 0.0,
            "inside": group["bias_correction"] == "inside",
        }
    if name == "rmsprop":
        return {**common, "centered": bool(group["centered"]), "momentum": group["momentum"] > 0}
    return common


def _scalar_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of a kernel's scalars: float64 for float64 tensors, else float32.

    The reference path's Python-number scalars enter float32 (and, computed in float32,
    bfloat16/float16) arithmetic as float32 values, so float32 scalars are the same numbers, and
    the generated loop then needs no float64-to-float32 conversion per vector.
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def step_rule_group(owner: str, direction: Any, group: Mapping[str, Any], params, grads, states, rule_name, args):
    """One fused step of a rule optimizer's param group (``params``/``grads`` real views, states initialized
    by the rule).  Tensors that are not contiguous are returned (the caller steps them on the reference path).

    Returns:
        The indices of tensors left to the reference path.
    """
    rule = rule_key(rule_name, group)
    wd = group["weight_decay"] != 0.0
    base = (float(group["weight_decay"]),)
    name = direction.name
    left: list[int] = []
    todo_by: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, (p, g, st) in enumerate(zip(params, grads, states)):
        # (A plain loop: this runs for every tensor at every step, and generators cost more than the test.)
        ok = p.is_contiguous() and g.is_contiguous()
        if ok:
            for t in st.values():
                if isinstance(t, torch.Tensor) and t.dim() > 0 and not t.is_contiguous():
                    ok = False
                    break
        device = p.device
        check_device(owner, device)
        if ok:
            todo_by.setdefault((device, p.dtype), []).append(i)
        else:
            left.append(i)
    todo = [i for idx in todo_by.values() for i in idx]
    if name == "sgd":
        _new_sgd_buffers(group, [params[i] for i in todo], [states[i] for i in todo])
    elif todo:
        torch._foreach_add_([states[i]["step"] for i in todo], 1.0)
    statics = _statics(name, group, rule, wd)
    for (device, dtype), idx in todo_by.items():
        tanh_degree = short_tanh_degree(name, rule, args.eta_in, dtype)
        rows, bounds = [], []
        memo: dict[Any, tuple[float, ...]] = {}  # tensors at the same step share their row (the usual case)
        for i in idx:
            st = states[i]
            at = _scalars_key(name, st)
            row = memo.get(at)
            if row is None:
                dir_scalars, scale = _direction_scalars(name, group, at)
                rs = rule_scalars(rule, args, scale, short_tanh=tanh_degree > 0)
                row = memo[at] = (*base, *rs, *dir_scalars, 0.0 if rs[1] != 0.0 else math.inf)
            rows.append(row)
            if rule[0] == "exp" and rule[3]:
                bounds.append(st["max_abs"])
        sc = _scalars_tensor(rows, dtype, device, one_row=len(memo) == 1)
        # The exp rule's kernel: the short-range exp2 when every exponent provably stays in its range.
        exp2_degree = (short_exp2_degree(rule, [row[2] for row in memo.values()], dtype),) if rule[0] == "exp" else ()
        group_rule = (*rule, *exp2_degree, tanh_degree)
        group_statics = {**statics, "rule": group_rule}
        ps = [params[i] for i in idx]
        gs = [grads[i] for i in idx]
        ss = [_state_tensors(name, group, states[i]) for i in idx]
        key = (name, *sorted(group_statics.items()), dtype, device.type, tuple(p.dim() for p in ps))
        run(owner, key, _many, {"body": _BODIES[name], "statics": group_statics}, ps, gs, ss, sc, bounds)
    return left


#: Scalar tensors of recent steps whose tensors all share one row (the usual case), by (row, count,
#: dtype, device): a step with the same scalars as a recent one (SGD at a constant lr) reuses the
#: tensor instead of building it again (~15 us for 20 rows). The kernels only read it.
_ROW_TENSORS: dict[tuple[Any, ...], torch.Tensor] = {}
_ROW_TENSORS_MAX = 32
_ROW_LOCK = threading.Lock()


def _scalars_tensor(rows: list[tuple[float, ...]], dtype, device, *, one_row: bool) -> torch.Tensor:
    """The ``[tensors, scalars]`` tensor of a group's kernel call; ``one_row``: every row is ``rows[0]``
    (then it may come from :data:`_ROW_TENSORS`)."""
    scalar_dtype = _scalar_dtype(dtype)
    if not one_row:
        return torch.tensor(rows, dtype=scalar_dtype, device=device)
    key = (rows[0], len(rows), scalar_dtype, device)
    with _ROW_LOCK:  # (optimizers stepped from several threads share the cache)
        sc = _ROW_TENSORS.get(key)
        if sc is None:
            if len(_ROW_TENSORS) >= _ROW_TENSORS_MAX:
                _ROW_TENSORS.pop(next(iter(_ROW_TENSORS)))  # the oldest
            sc = _ROW_TENSORS[key] = torch.tensor(rows, dtype=scalar_dtype, device=device)
    return sc


def _new_sgd_buffers(group: Mapping[str, Any], params: list[torch.Tensor], states: list[State]) -> None:
    """SGD's momentum buffer for the fused kernel: zeros, flagged new (the kernel's first step sets it to
    the gradient). The other bases' state is made by ``Direction.init_state`` in ``_init_group``."""
    if group["momentum"] == 0.0:
        return
    for p, st in zip(params, states):
        if "momentum_buffer" not in st:
            st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["_fused_new"] = True


def _state_tensors(name: str, group: Mapping[str, Any], st: State) -> list[torch.Tensor]:
    if name == "sgd":
        return [st["momentum_buffer"]] if group["momentum"] != 0.0 else []
    if name == "adam":
        first = [st["exp_avg"]] if float(group["betas"][0]) != 0.0 else []
        return first + [st["exp_avg_sq"]] + ([st["max_exp_avg_sq"]] if group["amsgrad"] else [])
    if name == "rmsprop":
        return (
            [st["square_avg"]]
            + ([st["grad_avg"]] if group["centered"] else [])
            + ([st["momentum_buffer"]] if group["momentum"] > 0 else [])
        )
    return [st["sum"]]


def _scalars_key(name: str, st: State) -> Any:
    """What a tensor's base scalars depend on: SGD, whether its buffer is new (the flag is consumed);
    the others, the step count."""
    if name == "sgd":
        return bool(st.pop("_fused_new", False))
    return float(st["step"])


def _direction_scalars(name: str, group: Mapping[str, Any], at: Any) -> tuple[tuple[float, ...], float]:
    """The base optimizer's scalars at ``at`` (:func:`_scalars_key`), and its step-size factor ``scale``."""
    if name == "sgd":
        mu = float(group["momentum"])
        if at:  # a new buffer: the kernel writes g into it
            return (0.0, 1.0, mu), 1.0
        return (mu, 1.0 - float(group["dampening"]), mu), 1.0
    t = float(at)
    if name == "adam":
        beta1, beta2 = (float(b) for b in group["betas"])
        bc1, bc2_sqrt = 1.0 - beta1**t, (1.0 - beta2**t) ** 0.5
        inside = group["bias_correction"] == "inside"
        scalars = (1.0 - beta1, beta2, 1.0 - beta2, 1.0 / bc2_sqrt, float(group["eps"]), 1.0 / bc1 if inside else 1.0)
        return (*scalars, beta1), (1.0 if inside else 1.0 / bc1)
    if name == "rmsprop":
        alpha = float(group["alpha"])
        return (alpha, 1.0 - alpha, float(group["eps"]), float(group["momentum"])), 1.0
    return (float(group["eps"]),), 1.0 / (1.0 + (t - 1) * float(group["lr_decay"]))


# --------------------------------------------------------------------------- hb and nag


def _momentum_body(p, g, d, sc, bound, *, wd, neg, nesterov):
    # sc: wd, lr, beta_k, beta_{k+1}
    g = _gradient(p, g, sc, wd, neg)
    d_new = d * sc[2] - g * sc[1]
    if nesterov:
        p.copy_(p - d * sc[2] + d_new * (1.0 + sc[3]))
    else:
        p.copy_(p + d_new)
    d.copy_(d_new)


#: Where hb runs on torch's fused SGD kernel. float32/float64 only: in bfloat16 the CPU kernel's momentum
#: buffer did not follow ``v <- mu v + (1 - dampening) g`` when we checked (torch 2.13), so reduced
#: precision keeps the generated kernel. Below this lr, ``1 - (1 + lr)`` would lose more than 1e-10 of lr.
_TORCH_SGD_DTYPES = (torch.float32, torch.float64)
_TORCH_SGD_MIN_LR = 1e-6


def _torch_sgd_kernel_fits(device: torch.device, dtype: torch.dtype, lr: float) -> bool:
    return device.type in FUSED_DEVICES and dtype in _TORCH_SGD_DTYPES and lr >= _TORCH_SGD_MIN_LR


def step_momentum(
    owner: str, group: Mapping[str, Any], params, grads, disps, lr, beta, beta_next, nesterov
) -> list[int]:
    """One fused hb/nag step; returns the indices of tensors left to the reference path.

    Those are the tensors that are not contiguous, and hb's at a step with ``beta = 0``. hb in float32 and
    float64 (lr >= 1e-6) runs on torch's own fused SGD kernel; nag and other dtypes on the generated kernel.
    """
    wd = group["weight_decay"] != 0.0
    values = (
        float(group["weight_decay"]),
        float(lr),
        float(beta),
        float(beta_next),
    )
    left: list[int] = []
    by: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, (p, g, d) in enumerate(zip(params, grads, disps)):
        device = p.device
        check_device(owner, device)
        if not (p.is_contiguous() and g.is_contiguous() and d.is_contiguous()):
            left.append(i)
        else:
            by.setdefault((device, p.dtype), []).append(i)
    statics = {"wd": wd, "neg": bool(group["maximize"]), "nesterov": nesterov}
    for (device, dtype), idx in by.items():
        ps, gs, ds = ([ts[i] for i in idx] for ts in (params, grads, disps))
        if not nesterov and _torch_sgd_kernel_fits(device, dtype, float(lr)):
            if float(beta) == 0.0:  # (the convex schedule's first two steps) torch's kernel then has no buffer
                left.extend(idx)
                continue
            # HB in the papers' form is torch's own fused SGD kernel on the displacement d:
            # v <- mu v + (1 - dampening) g with v = d, mu = beta, dampening = 1 + lr gives
            # d <- beta d - lr g, and p <- p - lr' v with lr' = -1 gives p <- p + d. Weight decay and
            # maximize enter g exactly as in that kernel; the gradients are not modified.
            torch._fused_sgd_(
                ps,
                gs,
                ds,
                weight_decay=float(group["weight_decay"]),
                momentum=float(beta),
                lr=-1.0,
                dampening=1.0 + float(lr),
                nesterov=False,
                maximize=bool(group["maximize"]),
                is_first_step=False,
            )
            continue
        sc = _scalars_tensor([values] * len(idx), dtype, device, one_row=True)
        key = ("nag" if nesterov else "hb", *sorted(statics.items()), dtype, device.type, tuple(p.dim() for p in ps))
        run(owner, key, _many, {"body": _momentum_body, "statics": statics}, ps, gs, ds, sc, [])
    return left
