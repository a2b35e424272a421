"""Bad and good values generated from the registry's constraint tables.

The reliability tests read every algorithm's table, so an algorithm that
registers itself is covered without touching the tests.
"""

from __future__ import annotations

import math
import random
from typing import Any

from beyondsgd.validation import AnyOf, Constraint, Interval, OneOf, TupleOf

_JUNK: tuple[Any, ...] = ("not-a-value", math.nan, [1, 2], object())


def invalid_values(c: Constraint) -> list[Any]:
    """Values the constraint must reject (each one is checked to be rejected)."""
    if isinstance(c, Interval):
        cands: list[Any] = ["0.1", math.nan, True]
        if math.isfinite(c.low):
            cands += [c.low - 1, c.low - 1e-6] + ([c.low] if c.low_open else [])
        if math.isfinite(c.high):
            cands += [c.high + 1] + ([c.high] if c.high_open else [])
        if c.integer:
            cands += [1.5]
    elif isinstance(c, TupleOf):
        good = [valid_value(i, None, random.Random(0)) for i in c.items]
        cands = [tuple(good) + (good[0],), good[0]]
        for k, item in enumerate(c.items):
            for bad in invalid_values(item)[:2]:
                cands.append(tuple(bad if j == k else g for j, g in enumerate(good)))
    elif isinstance(c, AnyOf):
        cands = [v for alt in c.alternatives for v in invalid_values(alt)] + list(_JUNK)
    else:
        cands = list(_JUNK)
    return [v for v in cands if not c.allows(v)]


def valid_value(c: Constraint, default: Any, rng: random.Random) -> Any:
    """A random allowed value, near ``default`` for numbers (so training stays sane)."""
    if isinstance(c, OneOf):
        return rng.choice(c.choices)
    if isinstance(c, TupleOf):
        defaults = default if isinstance(default, (tuple, list)) else [None] * len(c.items)
        return tuple(valid_value(i, d, rng) for i, d in zip(c.items, defaults))
    if isinstance(c, AnyOf):
        options = [a for a in c.alternatives if default is None or a.allows(default)] or list(c.alternatives)
        return valid_value(rng.choice(options), default, rng)
    if isinstance(c, Interval):
        if c.integer:
            low = int(c.low) if math.isfinite(c.low) else 0
            high = int(c.high) if math.isfinite(c.high) else low + 5
            v = rng.randint(low, min(high, low + 5))
            return v if c.allows(v) else int(default)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and default > 0:
            v = default * 10 ** rng.uniform(-0.5, 0.5)
        else:
            low = c.low if math.isfinite(c.low) else -1.0
            high = c.high if math.isfinite(c.high) else low + 1.0
            v = rng.uniform(low, min(high, low + 1.0))
        v = min(max(v, c.low), c.high)
        if not c.allows(v):
            v = default if default is not None and c.allows(default) else (c.low + c.high) / 2
        return v
    return default
