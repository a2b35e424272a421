"""Declarative argument checks shared by every algorithm, model and runner.

Each algorithm states the range of every hyperparameter once, as a table of
constraints; :func:`check_hyperparams` applies the table and raises a
``ValueError`` that names the argument, the value and what is allowed.  Keeping
the ranges as data (rather than scattered ``if`` statements) lets one
table-driven test exercise every algorithm.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Constraint:
    """What values one argument may take."""

    def allows(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def check(self, name: str, value: Any, owner: str = "") -> None:
        """Raise ``ValueError`` unless ``value`` is allowed."""
        if not self.allows(value):
            where = f" for {owner}" if owner else ""
            raise ValueError(f"invalid {name}={value!r}{where}: expected {self.describe()}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval(Constraint):
    """A real (or integer) number in an interval; NaN and +-inf are never allowed (an infinite bound is open)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def allows(self, value: Any) -> bool:
        if self.integer:
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                return False
        elif not _is_real(value):
            return False
        v = float(value)
        if not math.isfinite(v):  # (describe() prints an infinite bound as open)
            return False
        above = v > self.low if self.low_open else v >= self.low
        below = v < self.high if self.high_open else v <= self.high
        return above and below

    def clip(self, lo: float, hi: float) -> tuple[float, float]:
        """The part of ``[lo, hi]`` this interval allows (an open bound moved in by one float step).

        E.g. a search range around a default kept inside the hyperparameter's range.
        """
        low = math.nextafter(self.low, math.inf) if self.low_open else self.low
        high = math.nextafter(self.high, -math.inf) if self.high_open else self.high
        return max(lo, low), min(hi, high)

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        lo = "(" if self.low_open or self.low == -math.inf else "["
        hi = ")" if self.high_open or self.high == math.inf else "]"
        return f"{kind} in {lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}"


def _fmt(x: float) -> str:
    if x == math.inf:
        return "inf"
    if x == -math.inf:
        return "-inf"
    return f"{x:g}"


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a fixed set of values (strings, booleans, None...)."""

    choices: tuple

    def allows(self, value: Any) -> bool:
        return any(value is c or (type(value) is type(c) and value == c) for c in self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class TupleOf(Constraint):
    """A fixed-length tuple whose items each satisfy their own constraint (e.g. Adam's betas)."""

    items: tuple[Constraint, ...]

    def allows(self, value: Any) -> bool:
        if not isinstance(value, (tuple, list)) or len(value) != len(self.items):
            return False
        return all(c.allows(v) for c, v in zip(self.items, value))

    def describe(self) -> str:
        return "a tuple of " + str(len(self.items)) + " items: (" + ", ".join(c.describe() for c in self.items) + ")"


@dataclass(frozen=True)
class AnyOf(Constraint):
    """Allowed if any of the alternatives allows it (e.g. a number or None)."""

    alternatives: tuple[Constraint, ...]

    def allows(self, value: Any) -> bool:
        return any(c.allows(value) for c in self.alternatives)

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.alternatives)


# Ready-made constraints used across the package.
NONNEGATIVE = Interval(0.0)
POSITIVE = Interval(0.0, low_open=True)
UNIT = Interval(0.0, 1.0)  # [0, 1]
UNIT_HALF_OPEN = Interval(0.0, 1.0, high_open=True)  # [0, 1)
POSITIVE_INT = Interval(1, integer=True)
NONNEGATIVE_INT = Interval(0, integer=True)
BOOL = OneOf((True, False))
OPTIONAL_BOOL = OneOf((True, False, None))


def check_hyperparams(
    owner: str,
    values: Mapping[str, Any],
    table: Mapping[str, Constraint],
) -> None:
    """Check every entry of ``values`` against ``table``.

    Args:
        owner: what the values belong to, for the message (e.g. ``"optimizer 'sgd'"``).
        values: argument name -> value.
        table: argument name -> constraint; names missing from the table are unknown.

    Raises:
        ValueError: on an unknown name (listing the allowed ones) or a value out of range.
    """
    for name, value in values.items():
        if name not in table:
            allowed = ", ".join(sorted(table)) or "(none)"
            raise ValueError(f"unknown hyperparameter {name!r} for {owner}; allowed: {allowed}")
        table[name].check(name, value, owner)


__all__ = [
    "BOOL",
    "NONNEGATIVE",
    "NONNEGATIVE_INT",
    "OPTIONAL_BOOL",
    "POSITIVE",
    "POSITIVE_INT",
    "UNIT",
    "UNIT_HALF_OPEN",
    "AnyOf",
    "Constraint",
    "Interval",
    "OneOf",
    "TupleOf",
    "check_hyperparams",
]
