"""The update rules against their closed formulas, and foreach against the reference path."""

import math

import pytest
import torch

from beyondsgd.optim.update_rules import RULES, RuleArgs, get_rule


def _tensors(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(7, 5), (5,), (2, 3, 4)][:n]
    ps = [torch.randn(s, generator=g) for s in shapes]
    ds = [3 * torch.randn(s, generator=g) for s in shapes]
    return ps, ds


@pytest.mark.parametrize("eta_in", [1.0, 0.3])
def test_one_multiplicative_step_is_the_closed_formula(eta_in):
    (p,), (d,) = _tensors(1)
    args = RuleArgs(lr=0.1, eta_in=eta_in, eta_out=0.02)
    q = p.clone()
    get_rule("multiplicative").apply_one(q, d, 1.0, args, {})
    expected = p * (1 - 0.02 * torch.sign(p) * torch.tanh(eta_in * d))
    torch.testing.assert_close(q, expected, rtol=1e-6, atol=1e-7)
    # The relative change is bounded by eta_out.
    assert ((q - p).abs() <= 0.02 * p.abs() + 1e-7).all()


def test_one_hybrid_step_is_the_closed_formula_with_scale():
    (p,), (d,) = _tensors(1)
    args = RuleArgs(lr=0.1, eta_in=2.0, eta_out=0.05, gamma=0.3)
    q = p.clone()
    get_rule("hybrid").apply_one(q, d, 0.5, args, {})
    expected = p - (0.3 * 0.05 * 0.5 * p.abs() * torch.tanh(2.0 * d) + 0.7 * 0.1 * 0.5 * d)
    torch.testing.assert_close(q, expected, rtol=1e-6, atol=1e-7)


def test_additive_rule_ignores_gamma_and_eta():
    (p,), (d,) = _tensors(1)
    q = p.clone()
    get_rule("additive").apply_one(q, d, 2.0, RuleArgs(lr=0.1, eta_out=9.0, gamma=1.0), {})
    torch.testing.assert_close(q, p - 0.2 * d)


def test_exp_rule_is_madam_formula_with_clamp():
    (p,), (d,) = _tensors(1)
    args = RuleArgs(lr=0.0, eta_in=1.0, eta_out=0.3, squash="clip", clip_bound=1.5, max_scale=1.1)
    q, st = p.clone(), {}
    rule = get_rule("exp")
    rule.init_state(q, st, args)
    rule.apply_one(q, d, 1.0, args, st)
    bound = 1.1 * p.pow(2).mean().sqrt()
    expected = (p * torch.exp(-0.3 * torch.sign(p) * d.clamp(-1.5, 1.5))).clamp(-bound, bound)
    torch.testing.assert_close(q, expected)
    assert (q.abs() <= bound + 1e-6).all() and (q.abs() == bound).any()  # the clamp is active


def test_exp_rule_base_two_tanh():
    (p,), (d,) = _tensors(1)
    args = RuleArgs(lr=0.0, eta_in=0.5, eta_out=0.2, exp_base=2.0, squash="tanh")
    q = p.clone()
    get_rule("exp").apply_one(q, d, 1.0, args, {})
    torch.testing.assert_close(q, p * 2.0 ** (-0.2 * torch.sign(p) * torch.tanh(0.5 * d)))


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("eta_in", [1.0, 0.7])
def test_foreach_equals_reference(name, eta_in):
    ps, ds = _tensors()
    args = RuleArgs(lr=0.1, eta_in=eta_in, eta_out=0.05, gamma=0.4, max_scale=2.0 if name == "exp" else None)
    scales = [1.0, 0.5, 1.0]  # two scale groups, as after a param missed a step
    a, b = [p.clone() for p in ps], [p.clone() for p in ps]
    rule = get_rule(name)
    sa, sb = [{} for _ in ps], [{} for _ in ps]
    for p, s in zip(a, sa):
        rule.init_state(p, s, args)
    for p, s in zip(b, sb):
        rule.init_state(p, s, args)
    for p, d, sc, s in zip(a, ds, scales, sa):
        rule.apply_one(p, d, sc, args, s)
    rule.apply_many(b, ds, scales, args, sb)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["multiplicative", "exp"])
@pytest.mark.parametrize("eta_out", [0.3, 1.0])
def test_no_sign_flips_over_many_steps(name, eta_out):
    g = torch.Generator().manual_seed(1)
    p0 = torch.randn(2000, generator=g)
    p = p0.clone()
    args = RuleArgs(lr=0.0, eta_in=5.0, eta_out=eta_out)  # 1.0: the largest eta_out that keeps signs
    for _ in range(60):
        # Adversarial directions: pushing every weight towards (and past) zero, hard.
        d = torch.sign(p) * 10 * torch.rand(2000, generator=g)
        get_rule(name).apply_many([p], [d], [1.0], args, [{}])
    # In float32 tanh saturates to exactly 1, so with eta_out = 1 a weight may reach 0 (and stay
    # there), but it never crosses to the other sign.
    assert not (torch.sign(p) == -torch.sign(p0)).any()
    assert (p != p0).any()
    if eta_out < 1.0:
        assert (p != 0).all()


def test_zeros_stay_zero_under_m_and_exp_and_move_under_h():
    d = torch.ones(4)
    for name, moves in (("multiplicative", False), ("exp", False), ("hybrid", True), ("additive", True)):
        p = torch.tensor([0.0, 1.0, -1.0, 0.0])
        for _ in range(10):
            get_rule(name).apply_one(p, d, 1.0, RuleArgs(lr=0.1, eta_out=0.1, gamma=0.5), {})
        assert (p[[0, 3]] != 0).all() == moves, name


def test_unknown_rule_message():
    with pytest.raises(ValueError, match="invalid rule='nope': expected one of 'additive'"):
        get_rule("nope")


def test_small_step_limit_is_gd_with_per_weight_rate():
    (p,), (d,) = _tensors(1)
    p, d = p.double(), d.double()
    q = p.clone()
    eta_in, eta_out = 1e-4, 1e-2
    get_rule("multiplicative").apply_one(q, d, 1.0, RuleArgs(lr=0.0, eta_in=eta_in, eta_out=eta_out), {})
    torch.testing.assert_close(q - p, -eta_in * eta_out * p.abs() * d, rtol=1e-4, atol=1e-10)
    assert math.isfinite(float(q.sum()))
