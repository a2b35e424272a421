"""create(name, model): decay/no-decay groups by name, and all-zero tensors out of rules that freeze zeros."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from beyondsgd.optim import create, layer_groups
from beyondsgd.optim.grouping import decay_groups, no_decay_names
from beyondsgd.optim.multiplicative import FrozenZerosWarning


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 3))
    nn.init.zeros_(model[0].bias)  # LayerNorm's bias is zero too; model[3].bias is not
    return model


def _names(opt: torch.optim.Optimizer) -> list[tuple[list[str], float, str | None]]:
    return [(g["param_names"], g["weight_decay"], g.get("rule")) for g in opt.param_groups]


def test_no_decay_names_match_parameter_and_module_names():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    model.add_module("norm_free", nn.Linear(2, 2, bias=False))
    assert no_decay_names(model) == ["0.bias", "1.weight", "1.bias", "norm_free.weight"]
    assert no_decay_names(model, ("BIAS",)) == ["0.bias", "1.bias"]
    assert no_decay_names(model, ()) == []


@pytest.mark.parametrize("bad", ["bias", ("bias", ""), (1,), 3])
def test_bad_no_decay_is_refused(bad):
    with pytest.raises(TypeError, match="no_decay"):
        create("adam", _model(), weight_decay=0.1, no_decay=bad)


def test_adam_gets_decay_and_no_decay_groups():
    opt = create("adam", _model(), weight_decay=0.1)
    assert _names(opt) == [
        (["0.weight", "3.weight"], 0.1, None),
        (["0.bias", "1.weight", "1.bias", "3.bias"], 0.0, None),
    ]
    assert create("adam", _model(), weight_decay=0.1, no_decay=()).param_groups[0]["weight_decay"] == 0.1
    # Without weight decay there is nothing to split: one group, as before.
    assert len(create("adam", _model()).param_groups) == 1


def test_no_decay_group_is_not_decayed():
    """A step with zero gradients moves decayed weights only."""
    model = _model()
    opt = create("sgd", model, lr=0.5, weight_decay=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"0.weight", "3.weight"}


@pytest.mark.parametrize("name", ["m_sgd", "m_adam", "madam"])
def test_zero_tensors_go_to_an_additive_group(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrozenZerosWarning)
        opt = create(name, _model(), weight_decay=0.1)
    rule = "exp" if name == "madam" else "multiplicative"
    assert _names(opt) == [
        (["0.weight", "3.weight"], 0.1, rule),
        (["1.weight", "3.bias"], 0.0, rule),
        (["0.bias", "1.bias"], 0.0, "additive"),
    ]


def test_zero_biases_move_under_m_rules_only_through_the_additive_group():
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    for additive_zeros, moves in ((True, True), (False, False)):
        model = _model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FrozenZerosWarning)
            opt = create("m_sgd", model, additive_zeros=additive_zeros)
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        assert bool(model[0].bias.any()) is moves


def test_additive_zeros_off_keeps_groups_and_warns_with_the_hint():
    with pytest.warns(FrozenZerosWarning, match=r"create\(name, model\) does this by default.*additive_zeros"):
        opt = create("m_sgd", _model(), additive_zeros=False)
    assert len(opt.param_groups) == 1
    with pytest.raises(TypeError, match="additive_zeros"):
        create("m_sgd", _model(), additive_zeros="no")


def test_rules_that_move_zeros_are_not_split():
    for name in ("h_sgd", "h_adam", "adam", "hb"):
        assert len(create(name, _model()).param_groups) == 1, name
    # h_* with gamma = 1 is rule M: zeros are split off.
    assert [g["rule"] for g in create("h_sgd", _model(), gamma=1.0, lr=0.3, eta_out=0.3).param_groups] == [
        "hybrid",
        "additive",
    ]


def test_partly_zero_tensors_stay_and_are_warned_about():
    model = _model()
    with torch.no_grad():
        model[3].weight[0, 0] = 0.0
    with pytest.warns(FrozenZerosWarning):
        opt = create("m_sgd", model)
    assert "3.weight" in opt.param_groups[0]["param_names"]


def test_dsgd_keeps_one_group_per_layer():
    model = _model()
    opt = create("dsgd", model, mode="adaptive")
    expected = layer_groups(model)
    assert [g["name"] for g in opt.param_groups] == [g["name"] for g in expected]
    assert [len(g["params"]) for g in opt.param_groups] == [len(g["params"]) for g in expected]
    with pytest.raises(ValueError, match="weight_decay"):
        create("dsgd", model, weight_decay=0.1)


def test_resume_creates_the_optimizer_on_the_model_as_initialized():
    """The documented resume order: build the model, create the optimizer, then load both states."""
    model = _model()
    opt = create("m_adam", model, weight_decay=0.1)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    fresh = _model()
    other = create("m_adam", fresh, weight_decay=0.1)
    fresh.load_state_dict(model.state_dict())
    other.load_state_dict(opt.state_dict())
    assert _names(other) == _names(opt)
    # The grouping reads the weights: on the trained model the biases are no longer zero.
    assert len(create("m_adam", model, weight_decay=0.1).param_groups) == len(opt.param_groups) - 1


def test_frozen_parameters_are_kept_as_model_parameters_gives_them():
    model = _model()
    model[3].weight.requires_grad_(False)
    groups = decay_groups(model, 0.1)
    assert [n for n, _ in groups[0]["params"]] == ["0.weight", "3.weight"]
    assert sum(len(g["params"]) for g in create("adam", model).param_groups) == len(list(model.parameters()))
