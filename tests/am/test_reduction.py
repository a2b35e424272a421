"""The reduction points of data-parallel AM, in one process (the 2-rank checks are in tests/distributed)."""

import math

import torch

from beyondsgd.am.blocks import backtracking_step
from beyondsgd.am.reduction import Reducer, max_abs


def test_single_process_reducer_returns_its_inputs():
    a, b = torch.randn(3, 2), torch.tensor(1.5)
    red = Reducer(False)
    out = red.sums(a, b)
    assert out[0] is a and out[1] is b  # no copy, no arithmetic: single-process runs are unchanged
    assert red.max(2.5) == 2.5


def test_max_abs_of_an_empty_shard_is_zero():
    assert max_abs(torch.zeros(0, 4)) == 0.0
    assert max_abs(torch.tensor([[-3.0, 1.0]])) == 3.0


def test_max_abs_is_the_largest_absolute_entry():
    g = torch.Generator().manual_seed(0)
    for t in (torch.randn(300, 7, generator=g), -torch.rand(50, generator=g), torch.rand(4, 4, generator=g)):
        assert max_abs(t) == float(t.abs().max())
    assert math.isnan(max_abs(torch.tensor([1.0, float("nan")])))


def test_backtracking_on_split_sums_equals_the_whole_block():
    # A per-sample block split in two "ranks" (rows): the test taken on summed
    # (value, <grad, d>, ||d||^2) accepts the same theta and point as on the whole block.
    torch.manual_seed(0)
    A = torch.randn(6, 4, dtype=torch.float64)
    target = torch.randn(6, 3, dtype=torch.float64)
    W = torch.randn(3, 4, dtype=torch.float64)

    def f(U, rows=slice(None)):
        return 0.5 * (U @ W.T - target[rows]).pow(2).sum()

    grad = (A @ W.T - target) @ W
    whole = backtracking_step(f, f(A), grad, A, A, theta=0.1)
    assert whole.doublings > 0  # the test decided something
    top, bottom = slice(0, 4), slice(4, 6)
    other = {}  # the second "rank"'s contribution, computed at the same theta

    def reduce(local):
        theta = 0.1 * 2 ** other.setdefault("trial", 0)
        other["trial"] += 1
        u = A[bottom] - grad[bottom] / theta
        d = u - A[bottom]
        return local + torch.stack([f(u, bottom), (grad[bottom] * d).sum(), d.pow(2).sum()])

    split = backtracking_step(lambda U: f(U, top), f(A), grad[top], A[top], A[top], theta=0.1, reduce=reduce)
    assert split.theta == whole.theta and split.doublings == whole.doublings
    assert torch.allclose(split.u, whole.u[top]) and torch.allclose(split.value, whole.value)
