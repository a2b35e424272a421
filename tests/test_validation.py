import math

import pytest

from beyondsgd.validation import (
    BOOL,
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    UNIT_HALF_OPEN,
    AnyOf,
    Interval,
    OneOf,
    TupleOf,
    check_hyperparams,
)


@pytest.mark.parametrize(
    "value,ok",
    [
        (0.0, True),
        (1, True),
        (-1e-9, False),
        (math.nan, False),
        (math.inf, False),
        (-math.inf, False),
        ("0.1", False),
        (True, False),
    ],
)
def test_nonnegative(value, ok):
    assert NONNEGATIVE.allows(value) is ok


def test_infinite_bound_is_open():
    # describe() prints "[0, inf)": inf itself is refused (rho=inf used to pass and give NaN weights)
    assert NONNEGATIVE.describe() == "a number in [0, inf)"
    with pytest.raises(ValueError, match=r"invalid rho=inf: expected a number in \(0, inf\)"):
        POSITIVE.check("rho", math.inf)


def test_half_open_and_integer():
    assert UNIT_HALF_OPEN.allows(0.999) and not UNIT_HALF_OPEN.allows(1.0)
    assert POSITIVE_INT.allows(3) and not POSITIVE_INT.allows(3.0) and not POSITIVE_INT.allows(0)
    assert Interval(0, 1, low_open=True).describe() == "a number in (0, 1]"


def test_tuple_oneof_anyof():
    betas = TupleOf((UNIT_HALF_OPEN, UNIT_HALF_OPEN))
    assert betas.allows((0.9, 0.999)) and not betas.allows((0.9, 1.0)) and not betas.allows(0.9)
    assert OneOf(("a", "b")).allows("a") and not OneOf(("a", "b")).allows("c")
    assert not BOOL.allows(1)  # 1 == True but is not a bool
    assert AnyOf((NONNEGATIVE, OneOf((None,)))).allows(None)


def test_check_hyperparams_messages():
    table = {"lr": NONNEGATIVE, "momentum": UNIT_HALF_OPEN}
    with pytest.raises(ValueError, match=r"invalid lr=-0.1 for opt: expected a number in \[0, inf\)"):
        check_hyperparams("opt", {"lr": -0.1}, table)
    with pytest.raises(ValueError, match="unknown hyperparameter 'lrr' for opt; allowed: lr, momentum"):
        check_hyperparams("opt", {"lrr": 0.1}, table)
    check_hyperparams("opt", {"lr": 0.1, "momentum": 0.9}, table)


def test_clip_keeps_a_range_inside_the_interval():
    assert Interval(0.0, 2.0, low_open=True, high_open=True).clip(0.1, 10.0) == (0.1, math.nextafter(2.0, 0.0))
    assert POSITIVE.clip(-1.0, 1.0) == (math.nextafter(0.0, 1.0), 1.0)
