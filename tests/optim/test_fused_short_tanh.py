"""The fused path's short-range ``tanh`` (odd polynomials) and the host's proof that Adagrad's argument stays in range."""

import pytest
import torch

from beyondsgd import optim
from beyondsgd.optim import fused


@pytest.mark.parametrize("limit,degree", fused.SHORT_TANH)
def test_short_tanh_agrees_with_tanh_to_float32_rounding_over_its_widened_range(limit, degree):
    edge = limit * fused._TANH_RANGE_SLACK
    x = torch.linspace(-edge, edge, 400_001)
    exact = torch.tanh(x.double())
    nonzero = exact != 0
    rel = ((fused._tanh_short(x, degree).double() - exact) / exact)[nonzero].abs().max().item()
    torch_rel = ((torch.tanh(x).double() - exact) / exact)[nonzero].abs().max().item()
    assert rel <= 2.5 * torch_rel  # 1.1e-7 against float32 tanh's 6e-8, relative, also near 0
    # in float64 the truncation error itself, under float32's rounding
    trunc = ((fused._tanh_short(x.double(), degree) - exact) / exact)[nonzero].abs().max().item()
    assert 1e-12 < trunc < 1e-8
    # odd, exactly: tanh(-x) = -tanh(x), and 0 stays 0
    assert torch.equal(fused._tanh_short(-x, degree), -fused._tanh_short(x, degree))
    assert fused._tanh_short(torch.tensor([0.0]), degree).item() == 0.0


def test_the_exp2_form_it_replaces_loses_digits_near_zero():
    """Why the polynomial is also the more accurate one: ``2 / (1 + exp2(k x)) - 1`` cancels near 0."""
    x = torch.tensor([1e-4, 3e-6, -2e-5])
    exact = torch.tanh(x.double())
    k = torch.tensor(fused._MINUS_TWO_LOG2E)
    assert ((fused._tanh_of(x, k).double() - exact) / exact).abs().max() > 1e-4
    assert ((fused._tanh_short(x, 5).double() - exact) / exact).abs().max() < 1.2e-7


@pytest.mark.parametrize(
    "direction,rule,eta_in,dtype,expected",
    [
        ("adagrad", ("hybrid",), 1.0, torch.float32, 7),  # h_adagrad's default: |d| <= 1 (plus rounding)
        ("adagrad", ("multiplicative",), 0.5, torch.float32, 5),
        ("adagrad", ("multiplicative",), 0.7, torch.bfloat16, 7),
        ("adagrad", ("exp", "tanh", 10.0, False), 1.0, torch.float32, 7),
        ("adagrad", ("hybrid",), 1.01, torch.float32, 0),  # beyond the widest range
        ("adagrad", ("hybrid",), float("nan"), torch.float32, 0),
        ("adagrad", ("hybrid",), 1.0, torch.float64, 0),  # float64: not accurate enough
        ("adagrad", ("additive",), 1.0, torch.float32, 0),  # no tanh
        ("adagrad", ("exp", "clip", 10.0, True), 1.0, torch.float32, 0),
        ("adam", ("hybrid",), 0.01, torch.float32, 0),  # no bound known before the step
        ("rmsprop", ("multiplicative",), 0.01, torch.float32, 0),
        ("sgd", ("multiplicative",), 0.01, torch.float32, 0),
    ],
)
def test_short_tanh_only_where_the_argument_is_provably_in_range(direction, rule, eta_in, dtype, expected):
    assert fused.short_tanh_degree(direction, rule, eta_in, dtype) == expected


def test_fused_h_adagrad_on_extreme_gradients_matches_the_reference_path():
    """Adagrad's ``|d| <= 1`` holds for any gradients: entries from 1e-30 to 1e30, both signs, first
    steps (``d = g / (|g| + eps)``, at the range's edge) and later ones; the short-tanh kernel (the one
    h_adagrad's defaults take) agrees with the for-loop path's ``tanh`` to rounding."""
    g = torch.Generator().manual_seed(0)

    def params():
        return [torch.nn.Parameter(torch.rand(64, generator=torch.Generator().manual_seed(1)) + 0.5)]

    a, b = params(), params()
    ref = optim.create("h_adagrad", a, foreach=False)
    ours = optim.create("h_adagrad", b, fused=True)
    group = ours.param_groups[0]
    rule = fused.rule_key(group["rule"], group)  # the key the fused step derives
    assert fused.short_tanh_degree("adagrad", rule, group["eta_in"], torch.float32) > 0
    for _ in range(4):
        grad = torch.randn(64, generator=g).sign() * 10.0 ** (torch.rand(64, generator=g) * 60 - 30)
        for p in (*a, *b):
            p.grad = grad.clone()
        ref.step()
        ours.step()
        torch.testing.assert_close(b[0], a[0], rtol=1e-5, atol=0)
