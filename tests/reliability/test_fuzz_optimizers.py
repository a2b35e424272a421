"""Fuzz every registered optimizer: random shapes, dtypes, param groups, zero and
missing gradients, random valid hyperparameters. No exceptions, finite results,
and a state_dict round trip that continues identically."""

import copy
import random

import pytest
import torch
from constraint_examples import valid_value
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from beyondsgd import optim

EXAMPLES_PER_OPTIMIZER = 20
STEPS = 3


def _problem(data, rng, layered):
    """Random tensors; for layer-wise optimizers (a registry ``param_groups`` builder),
    random layers ``[weight (out, in), bias (out)]`` instead, one group each."""
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    n = data.draw(st.integers(1, 4), label="n_params")
    if layered:
        widths = [data.draw(st.integers(1, 5), label="width") for _ in range(n + 1)]
        shapes = [s for i in range(n) for s in ((widths[i + 1], widths[i]), (widths[i + 1],))]
    else:
        shapes = [
            tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3), label="shape")) for _ in range(n)
        ]
    kinds = [data.draw(st.sampled_from(["normal", "normal", "zero", "none"]), label="grad") for _ in shapes]
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    params = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]
    targets = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    return params, targets, kinds


def _closure(opt, params, targets, kinds):
    def closure():
        opt.zero_grad(set_to_none=True)
        loss = torch.zeros((), dtype=params[0].dtype)
        for p, t, k in zip(params, targets, kinds):
            if k == "normal":
                loss = loss + 0.5 * ((p - t) ** 2).sum()
            elif k == "zero":
                loss = loss + 0.0 * p.sum()  # a gradient that is exactly zero
            # "none": the parameter is not used, its .grad stays None
        if loss.requires_grad:
            loss.backward()
        return loss.detach()

    return closure


def _groups(params, split, spec, hp):
    if spec.param_groups is not None:  # layer-wise: one group per [weight, bias] pair
        return [{"params": params[i : i + 2]} for i in range(0, len(params), 2)]
    if not split or len(params) < 2:
        return [{"params": params}]
    second = {"params": params[1:]}
    if "lr" in spec.hyperparams:
        second["lr"] = 0.5 * hp.get("lr", spec.defaults.get("lr", 0.01))
    return [{"params": params[:1]}, second]


@pytest.mark.parametrize("name", optim.available())
def test_fuzz_optimizer(name):
    spec = optim.get_spec(name)
    completed = []

    @settings(
        max_examples=EXAMPLES_PER_OPTIMIZER,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(data=st.data())
    def run(data):
        rng = random.Random(data.draw(st.integers(0, 2**31), label="seed"))
        params, targets, kinds = _problem(data, rng, layered=spec.param_groups is not None)
        hp = {k: valid_value(c, spec.defaults.get(k), rng) for k, c in spec.hyperparams.items() if rng.random() < 0.5}
        split = data.draw(st.booleans(), label="two_groups")
        try:
            opt = spec.factory(_groups(params, split, spec, hp), **{**spec.defaults, **hp})
        except ValueError as err:  # individually valid values can be jointly invalid (nesterov w/o momentum)
            assert str(err)
            assume(False)
        closure = _closure(opt, params, targets, kinds)
        for _ in range(STEPS):
            opt.step(closure)
        for p in params:
            assert torch.isfinite(p).all(), f"{name} produced non-finite parameters with {hp}"

        # Round trip: a fresh optimizer on copies of the parameters, loaded from the state dict,
        # must take exactly the same next step.
        copies = [p.detach().clone().requires_grad_() for p in params]
        twin = spec.factory(_groups(copies, split, spec, hp), **{**spec.defaults, **hp})
        twin.load_state_dict(copy.deepcopy(opt.state_dict()))
        opt.step(closure)
        twin.step(_closure(twin, copies, targets, kinds))
        for p, q in zip(params, copies):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
        completed.append(1)

    run()
    # Jointly invalid hyperparameters are skipped; most examples must still run to the end.
    print(f"{name}: {len(completed)} fuzz examples completed")
    assert len(completed) >= EXAMPLES_PER_OPTIMIZER // 2
