"""The fused exp rule's short-range ``exp2`` (Taylor polynomials), the host's choice of one, and its sign flip."""

import math

import pytest
import torch

from beyondsgd.optim import fused


@pytest.mark.parametrize("limit,degree", fused.SHORT_EXP2)
def test_short_exp2_agrees_with_exp2_to_float32_rounding_over_its_range(limit, degree):
    x = torch.linspace(-limit, limit, 200_001)
    exact = torch.exp2(x.double())
    ours = fused._exp2_short(x, degree)
    rel = ((ours.double() - exact) / exact).abs().max().item()
    torch_rel = ((torch.exp2(x).double() - exact) / exact).abs().max().item()
    assert rel <= 1.5 * torch_rel  # as close as float32's own exp2 (both ~6e-8)
    # in float64 the truncation error itself, at most ~2e-9 relative at the range's edge
    trunc = ((fused._exp2_short(x.double(), degree) - exact) / exact).abs().max().item()
    assert 1e-12 < trunc < 2e-9
    assert fused._exp2_short(torch.tensor([0.0]), degree).item() == 1.0


@pytest.mark.parametrize(
    "rule,a,dtype,expected",
    [
        (("exp", "clip", 10.0, True), [-0.01 / math.log(2.0)], torch.float32, 5),  # Madam's defaults: 0.144
        (("exp", "clip", 10.0, True), [-0.02 / math.log(2.0)], torch.float32, 0),  # 0.289 > 0.25
        (("exp", "clip", 10.0, True), [-0.02, -0.015], torch.float32, 6),  # 0.2: the longer range
        (("exp", "tanh", 10.0, False), [-0.1], torch.bfloat16, 5),  # tanh: |s| <= 1
        (("exp", "tanh", 10.0, False), [-0.3], torch.float32, 0),
        (("exp", "clip", 10.0, True), [-0.001], torch.float64, 0),  # float64: not accurate enough
        (("exp", "clip", 10.0, True), [float("nan")], torch.float32, 0),
        (("multiplicative",), [0.001], torch.float32, 0),
    ],
)
def test_short_exp2_only_where_every_exponent_is_provably_in_range(rule, a, dtype, expected):
    assert fused.short_exp2_degree(rule, a, dtype) == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_sign_flip_by_the_weights_sign_gives_sign_p_times_s(dtype):
    p = torch.tensor([1.5, -2.0, 0.0, -0.0, 3.0, -1e-30, float("inf"), float("-inf")], dtype=dtype)
    s = torch.tensor([0.1, 0.1, -0.2, 0.3, -0.05, 0.07, 0.01, -0.01], dtype=dtype)
    flipped = fused._signed_by(s, p)
    expected = torch.sign(p) * s  # the rule's sign(p) s
    nonzero = p != 0
    assert torch.equal(flipped[nonzero], expected[nonzero])
    # at p = 0 the factor does not matter: the rule's result p * 2^x is the same zero
    assert torch.equal(p * torch.exp2(flipped), p * torch.exp2(expected))
