"""DSGD: one layer per step, greedy choice, the bound-mode guarantee, duality maps, torch.optim citizenship."""

import copy
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from beyondsgd import optim
from beyondsgd.data import load_dataset
from beyondsgd.models import create_model
from beyondsgd.optim import DSGD, input_bound, layer_groups
from beyondsgd.optim.layer_norms import (
    ACTIVATION_BOUNDS,
    BASE_NORMS,
    layer_curvature_bounds,
    layer_matrix,
    split_layer_matrix,
)


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits", n_train=300)
    return data.X_train.double(), data.y_train


def _net(activation="tanh", widths=(16, 16), seed=0, input_shape=(1, 8, 8)):
    torch.manual_seed(seed)
    return create_model("mlp", input_shape, 10, widths=widths, activation=activation).double()


def _closure(opt, net, X, y):
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(net(X), y)
        loss.backward()
        return loss

    return closure


# ----------------------------------------------------------------------------- layer groups


def test_layer_groups_one_group_per_layer_with_activation():
    net = create_model("mlp", (1, 8, 8), 10, widths=(16, 8), activation="tanh")
    groups = layer_groups(net)
    linears = net.linear_layers()
    assert len(groups) == 3
    for g, lin in zip(groups, linears):
        assert g["params"][0] is lin.weight and g["params"][1] is lin.bias
    assert [g["activation"] for g in groups] == ["tanh", "tanh", "none"]


def test_layer_groups_conv_and_loose_parameters():
    cnn = create_model("cnn", (1, 8, 8), 10)
    n_layers = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in cnn.modules())
    assert len(layer_groups(cnn)) == n_layers
    two = create_model("two_layer", (4,), 1, width=8)  # a bare Parameter, no Linear module
    groups = layer_groups(two)
    assert len(groups) == 1 and groups[0]["params"][0] is two.W


# ----------------------------------------------------------------------------- norms and duality maps


@pytest.mark.parametrize("shape", [(5, 3), (3, 7), (1, 4), (6, 1)])
def test_spectral_dual_map_is_a_duality_map(shape):
    G = torch.randn(*shape, dtype=torch.float64)
    norm = BASE_NORMS["spectral"]
    nuc = torch.linalg.matrix_norm(G, ord="nuc")
    rho = norm.dual_map(G)
    assert torch.allclose(norm.dual_norm(G), nuc)
    assert torch.allclose((G * rho).sum(), nuc**2)  # <G, rho(G)> = ||G||_*^2
    assert torch.allclose(torch.linalg.matrix_norm(rho, ord=2), nuc)  # ||rho(G)|| = ||G||_*
    # The dual norm is the max of <G, U> over the spectral unit ball: rho/||rho|| attains it.
    for _ in range(20):
        U = torch.randn(*shape, dtype=torch.float64)
        assert (G * U).sum() <= nuc * torch.linalg.matrix_norm(U, ord=2) + 1e-12


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 9),
    cols=st.integers(1, 9),
    rank=st.integers(1, 9),
    seed=st.integers(0, 2**31 - 1),
    name=st.sampled_from(sorted(BASE_NORMS)),
)
def test_duality_map_property(rows, cols, rank, seed, name):
    """<G, rho(G)> = |||G|||_*^2 and |||rho(G)||| = |||G|||_* for any shape and rank (low rank included)."""
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(rows, rank, generator=gen, dtype=torch.float64) @ torch.randn(
        rank, cols, generator=gen, dtype=torch.float64
    )
    norm = BASE_NORMS[name]
    rho, dual = norm.dual_map(G), norm.dual_norm(G)
    assert torch.allclose((G * rho).sum(), dual**2, rtol=1e-9)
    assert torch.allclose(norm.norm(rho), dual, rtol=1e-9)


def test_frobenius_dual_map_is_identity():
    G = torch.randn(4, 3, dtype=torch.float64)
    norm = BASE_NORMS["frobenius"]
    assert torch.equal(norm.dual_map(G), G)
    assert torch.allclose((G * norm.dual_map(G)).sum(), norm.dual_norm(G) ** 2)


def test_layer_matrix_round_trip():
    W, b = torch.randn(4, 3), torch.randn(4)
    M = layer_matrix([W, b])
    assert M.shape == (4, 4) and torch.equal(M[:, -1], b)
    W2, b2 = split_layer_matrix(M, [W, b])
    assert torch.equal(W2, W) and torch.equal(b2, b)


def test_activation_constants_match_their_definition():
    z = torch.linspace(-12, 12, 200001, dtype=torch.float64, requires_grad=True)
    for name, fn in (("tanh", torch.tanh), ("sigmoid", torch.sigmoid), ("softplus", F.softplus)):
        (d1,) = torch.autograd.grad(fn(z).sum(), z, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), z)
        b = ACTIVATION_BOUNDS[name]
        assert d1.abs().max() <= b.lipschitz + 1e-12 and d1.abs().max() > 0.99 * b.lipschitz
        assert d2.abs().max() <= b.curvature + 1e-9 and d2.abs().max() > 0.99 * b.curvature


# ----------------------------------------------------------------------------- bound-mode constants


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus"])
def test_curvature_bound_dominates_second_derivative(activation):
    """|d^2/dt^2 f(w + t u)| <= kappa_i |||u|||^2 for u on layer i, for any value of layer i itself."""
    torch.manual_seed(1)
    X = torch.randn(40, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    net = create_model("mlp", (6,), 3, widths=(5, 4), activation=activation).double()
    groups = layer_groups(net)
    B = input_bound(X)
    for trial in range(4):
        for i, g in enumerate(groups):
            with torch.no_grad():  # move layer i anywhere: the bound must not care
                for p in g["params"]:
                    p.mul_(1.0 + 3.0 * trial).add_(torch.randn_like(p))
            kappa = layer_curvature_bounds([gg["params"] for gg in groups], [activation] * 2, B)[i]
            U = [torch.randn_like(p) for p in g["params"]]
            t = torch.zeros((), dtype=torch.float64, requires_grad=True)
            orig = [p.detach().clone() for p in g["params"]]
            params = {n: p for n, p in net.named_parameters()}
            names = [n for n, p in params.items() if any(p is q for q in g["params"])]
            moved = {**params, **{n: o + t * u for n, o, u in zip(names, orig, U)}}
            loss = F.cross_entropy(torch.func.functional_call(net, moved, (X,)), y)
            (d1,) = torch.autograd.grad(loss, t, create_graph=True)
            (d2,) = torch.autograd.grad(d1, t)
            norm_sq = torch.linalg.matrix_norm(layer_matrix(U), ord=2) ** 2
            assert d2.abs() <= kappa * norm_sq, (activation, i, trial)


def test_bound_mode_rejects_relu_and_conv():
    with pytest.raises(ValueError, match="mode='adaptive'"):
        DSGD(layer_groups(_net("relu")), mode="bound")
    with pytest.raises(ValueError, match="mode='adaptive'"):
        DSGD(layer_groups(create_model("cnn", (1, 8, 8), 10)), mode="bound")


# ----------------------------------------------------------------------------- the step


@pytest.mark.parametrize("mode,act", [("bound", "tanh"), ("adaptive", "relu")])
@pytest.mark.parametrize("selection", ["greedy", "cyclic", "random"])
def test_exactly_one_layer_changes_per_step(digits, mode, act, selection):
    X, y = digits
    net = _net(act)
    opt = DSGD(layer_groups(net), mode=mode, selection=selection, input_bound=input_bound(X))
    closure = _closure(opt, net, X, y)
    for _ in range(6):
        before = [[p.detach().clone() for p in g["params"]] for g in opt.param_groups]
        opt.step(closure)
        changed = [
            any(not torch.equal(p, q) for p, q in zip(g["params"], old)) for g, old in zip(opt.param_groups, before)
        ]
        assert changed == [j == opt.last_step["layer"] for j in range(len(changed))]


@pytest.mark.parametrize("norm", ["frobenius", "spectral"])
def test_greedy_choice_maximizes_the_score(digits, norm):
    X, y = digits
    net = _net("tanh")
    B = input_bound(X)
    opt = DSGD(layer_groups(net), mode="bound", norm=norm, input_bound=B)
    closure = _closure(opt, net, X, y)
    for _ in range(5):
        # Scores recomputed here from the definition, before the step.
        closure()
        kappas = layer_curvature_bounds([g["params"] for g in opt.param_groups], ["tanh", "tanh"], B)
        expected = [
            float(BASE_NORMS[norm].dual_norm(layer_matrix([p.grad for p in g["params"]])) ** 2 / (2 * k))
            for g, k in zip(opt.param_groups, kappas)
        ]
        opt.step(closure)
        ls = opt.last_step
        assert ls["scores"] == pytest.approx(expected, rel=1e-10)
        assert ls["layer"] == max(range(3), key=expected.__getitem__)
        assert ls["predicted_decrease"] == pytest.approx(expected[ls["layer"]], rel=1e-10)
        assert ls["stationarity"] == pytest.approx(2 * max(expected), rel=1e-10)


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
@pytest.mark.parametrize("norm", ["frobenius", "spectral"])
def test_bound_mode_realized_decrease_never_below_predicted(digits, act, norm):
    """A real full-batch training run: the guaranteed decrease holds on every step."""
    X, y = digits
    net = _net(act, widths=(32, 32))
    opt = DSGD(layer_groups(net), mode="bound", norm=norm, input_bound=input_bound(X), check_decrease=True)
    closure = _closure(opt, net, X, y)
    first = float(closure().detach())
    layers = set()
    for _ in range(120):
        opt.step(closure)
        ls = opt.last_step
        layers.add(ls["layer"])
        assert ls["predicted_decrease"] > 0
        assert ls["realized_decrease"] >= ls["predicted_decrease"], ls
    assert opt.violations == 0
    assert float(closure().detach()) < first - 0.02  # it trains (slowly: the bound is conservative)
    assert len(layers) >= 2 or norm == "frobenius"


def test_bound_mode_flags_a_violated_assumption(digits):
    X, y = digits
    net = _net("tanh")
    # Wrong assumptions (a much too small input bound and loss derivative bounds): far too long steps.
    opt = DSGD(
        layer_groups(net),
        mode="bound",
        input_bound=1e-2 * input_bound(X),
        loss_bounds=(1e-3, 1e-3),
        check_decrease=True,
    )
    closure = _closure(opt, net, X, y)
    with pytest.warns(RuntimeWarning, match="input_bound"):
        for _ in range(5):
            opt.step(closure)
    assert opt.violations >= 1


def test_adaptive_mode_accepts_only_sufficient_decrease_on_relu(digits):
    X, y = digits
    net = _net("relu", widths=(32, 32))
    opt = DSGD(layer_groups(net), mode="adaptive", lipschitz_init=1e-3)  # far too small: must backtrack
    closure = _closure(opt, net, X, y)
    first = float(closure().detach())
    backtracks = 0
    for _ in range(40):
        opt.step(closure)
        ls = opt.last_step
        backtracks += ls["backtracks"]
        assert ls["realized_decrease"] >= ls["predicted_decrease"] > 0
    assert backtracks > 0
    assert float(closure().detach()) < 0.5 * first


def test_backtracking_is_the_same_whether_the_closure_zeroes_grads_in_place_or_drops_them(digits):
    # The Frobenius step uses the .grad tensors as its direction; a closure that runs again for the
    # decrease check and zeroes them in place (set_to_none=False) must not change the retried steps.
    X, y = digits
    runs = []
    for set_to_none in (True, False):
        net = _net("relu", widths=(32, 32))
        opt = DSGD(layer_groups(net), mode="adaptive", norm="frobenius", lipschitz_init=1e-3)

        def closure():
            opt.zero_grad(set_to_none=set_to_none)
            loss = F.cross_entropy(net(X), y)
            loss.backward()
            return loss

        backtracks = 0
        for _ in range(10):
            opt.step(closure)
            backtracks += opt.last_step["backtracks"]
        runs.append(([p.detach().clone() for p in net.parameters()], backtracks))
    (p0, b0), (p1, b1) = runs
    assert b0 == b1 > 0
    assert all(torch.equal(a, b) for a, b in zip(p0, p1))


def test_step_size_is_lr_over_kappa_times_dual_map(digits):
    X, y = digits
    net = _net("tanh")
    opt = DSGD(layer_groups(net), mode="bound", norm="spectral", lr=0.5, input_bound=input_bound(X))
    closure = _closure(opt, net, X, y)
    closure()
    grads = [[p.grad.clone() for p in g["params"]] for g in opt.param_groups]
    before = [[p.detach().clone() for p in g["params"]] for g in opt.param_groups]
    opt.step(closure)
    i, kappa = opt.last_step["layer"], opt.last_step["kappa"]
    G = layer_matrix(grads[i])
    expected = layer_matrix(before[i]) - 0.5 / kappa * BASE_NORMS["spectral"].dual_map(G)
    assert torch.allclose(layer_matrix(opt.param_groups[i]["params"]), expected, atol=1e-12)
    g_sq = float(torch.linalg.matrix_norm(G, ord="nuc") ** 2)
    assert opt.last_step["predicted_decrease"] == pytest.approx(0.5 * 0.75 * g_sq / kappa)


# ----------------------------------------------------------------------------- torch.optim citizenship


def _run(opt, net, X, y, n):
    closure = _closure(opt, net, X, y)
    return [(float(opt.step(closure).detach()), opt.last_step["layer"]) for _ in range(n)]


@pytest.mark.parametrize(
    "name,hp",
    [
        ("dsgd", {}),  # adaptive: per-layer constants in the state
        ("dsgd_random", {}),  # the generator state
        ("dsgd_cyclic", {"mode": "adaptive"}),
        ("dsgd", {"score_batch": "previous"}),  # previous scores
    ],
)
def test_state_dict_round_trip(digits, name, hp):
    X, y = digits
    net = _net("relu")
    opt = optim.create(name, net, **hp)
    _run(opt, net, X, y, 5)
    saved_net, saved_opt = copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())
    expected = _run(opt, net, X, y, 6)

    net2 = _net("relu", seed=123)
    net2.load_state_dict(saved_net)
    opt2 = optim.create(name, net2, **hp)
    opt2.load_state_dict(saved_opt)
    assert _run(opt2, net2, X, y, 6) == expected
    for p, q in zip(net.parameters(), net2.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("norm", ["frobenius", "spectral"])
@pytest.mark.parametrize("mode,act", [("bound", "tanh"), ("adaptive", "relu")])
def test_foreach_equals_for_loop(digits, norm, mode, act):
    X, y = digits
    runs = []
    for foreach in (False, True):
        net = _net(act)
        opt = DSGD(layer_groups(net), mode=mode, norm=norm, input_bound=input_bound(X), foreach=foreach)
        trace = _run(opt, net, X, y, 8)
        runs.append((trace, [p.detach().clone() for p in net.parameters()]))
    assert [l for _, l in runs[0][0]] == [l for _, l in runs[1][0]]
    for p, q in zip(runs[0][1], runs[1][1]):
        assert torch.allclose(p, q, rtol=1e-10, atol=1e-12)


def test_closure_returns_loss_and_lr_scheduler_scales_the_step(digits):
    X, y = digits
    net = _net("tanh")
    opt = DSGD(layer_groups(net), mode="bound", input_bound=input_bound(X), selection="cyclic")
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    closure = _closure(opt, net, X, y)
    with torch.no_grad():
        before = float(F.cross_entropy(net(X), y))
    loss = opt.step(closure)
    assert torch.is_tensor(loss) and float(loss.detach()) == pytest.approx(before, rel=1e-12)
    sched.step()
    assert all(g["lr"] == 0.5 for g in opt.param_groups)
    opt.step(closure)
    g_sq = 2 * opt.last_step["kappa"] * opt.last_step["scores"][1]
    assert opt.last_step["predicted_decrease"] == pytest.approx(0.5 * 0.75 * g_sq / opt.last_step["kappa"])


def test_maximize_equals_minimizing_the_negation(digits):
    X, y = digits
    finals = []
    for maximize in (False, True):
        net = _net("relu")
        opt = DSGD(layer_groups(net), maximize=maximize)
        sign = -1.0 if maximize else 1.0

        def closure():
            opt.zero_grad()
            loss = sign * F.cross_entropy(net(X), y)
            loss.backward()
            return loss

        for _ in range(5):
            opt.step(closure)
        finals.append([p.detach().clone() for p in net.parameters()])
    for p, q in zip(*finals):
        assert torch.allclose(p, q)


def test_score_closure_picks_the_layer_and_closure_makes_the_step(digits):
    X, y = digits
    net = _net("tanh")
    B = input_bound(X)
    opt = DSGD(layer_groups(net), mode="bound", input_bound=B)
    score_closure = _closure(opt, net, X[:50], y[:50])
    step_closure = _closure(opt, net, X[50:], y[50:])
    opt.step(step_closure, score_closure=score_closure)
    # Reference: a fresh copy of the same net stepped on the scoring batch alone.
    scoring_net = _net("tanh")
    scoring_opt = DSGD(layer_groups(scoring_net), mode="bound", input_bound=B)
    scoring_opt.step(_closure(scoring_opt, scoring_net, X[:50], y[:50]))
    assert opt.last_step["scores"] == pytest.approx(scoring_opt.last_step["scores"])
    assert opt.last_step["layer"] == scoring_opt.last_step["layer"]


def test_previous_scores_choose_the_layer(digits):
    X, y = digits
    net = _net("relu")
    opt = DSGD(layer_groups(net), score_batch="previous")
    closure = _closure(opt, net, X, y)
    opt.step(closure)
    previous = opt.state["dsgd"]["prev_scores"]
    opt.step(closure)
    assert opt.last_step["layer"] == max(range(3), key=previous.__getitem__)


def test_bad_hyperparameters_are_rejected_early():
    net = _net()
    with pytest.raises(ValueError, match=r"invalid lr=-1 for DSGD: expected a number in \(0, 2\)"):
        DSGD(layer_groups(net), lr=-1)
    with pytest.raises(ValueError, match=r"invalid lr=2.0 for DSGD: expected a number in \(0, 2\)"):
        DSGD(layer_groups(net), lr=2.0)  # the guaranteed decrease eta (1 - eta/2) ... is 0 there
    with pytest.raises(ValueError, match="invalid mode='exact'"):
        DSGD(layer_groups(net), mode="exact")
    with pytest.raises(ValueError, match="invalid norm="):
        optim.create("dsgd", net, norm="l1")
    with pytest.raises(ValueError, match="needs a closure"):
        DSGD(layer_groups(net)).step()
    with pytest.raises(ValueError, match=r"\[weight\] or \[weight, bias\]"):
        DSGD([{"params": list(net.parameters())}])


def test_bound_mode_works_with_defaults_and_without_closure():
    net = _net("tanh")
    opt = DSGD(layer_groups(net), mode="bound")
    F.cross_entropy(net(torch.randn(8, 64, dtype=torch.float64) / 8), torch.arange(8)).backward()
    assert opt.step() is None and opt.last_step["realized_decrease"] is None


def test_registry_entries_group_by_layer_and_cycle():
    net = create_model("mlp", (1, 8, 8), 10, widths=(8, 8))
    assert {"dsgd", "dsgd_cyclic", "dsgd_random"} <= set(optim.available())
    opt = optim.create("dsgd_cyclic", net)
    assert len(opt.param_groups) == 3 and opt.options["selection"] == "cyclic"
    X, y = torch.randn(20, 1, 8, 8), torch.randint(0, 10, (20,))
    layers = [layer for _, layer in _run(opt, net, X, y, 5)]
    assert layers == [0, 1, 2, 0, 1]


def test_runner_trains_with_dsgd():
    from beyondsgd.bench import Experiment, run_experiment

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run_experiment(Experiment(algorithm="dsgd", epochs=1, batch_size=256, seed=0), progress=False)
    assert result.status == "ok"
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert math.isfinite(result.history[-1]["test_accuracy"])


def test_score_closure_step_uses_the_step_batch_gradient(digits):
    X, y = digits
    B = input_bound(X)
    net, ref_net = _net("tanh"), _net("tanh")
    opt = DSGD(layer_groups(net), mode="bound", input_bound=B, selection="cyclic")
    ref = DSGD(layer_groups(ref_net), mode="bound", input_bound=B, selection="cyclic")
    opt.step(_closure(opt, net, X[50:], y[50:]), score_closure=_closure(opt, net, X[:50], y[:50]))
    ref.step(_closure(ref, ref_net, X[50:], y[50:]))
    for p, q in zip(net.parameters(), ref_net.parameters()):
        assert torch.equal(p, q)


def _change_in_place(net):
    with torch.no_grad():
        net[-1].weight.mul_(3.0)  # changed behind the optimizer's back
    net.load_state_dict({k: v * 0.5 for k, v in net.state_dict().items()})


def _change_through_data(net):
    # .data writes (and nn.utils.vector_to_parameters, which assigns .data) leave the version
    # counters alone: the cache compares the tensors themselves.
    vec = nn.utils.parameters_to_vector(net.parameters())
    nn.utils.vector_to_parameters(vec * 3.0, net.parameters())
    net[-1].weight.data.mul_(0.5)


@pytest.mark.parametrize("change", [_change_in_place, _change_through_data], ids=["in-place", "through-data"])
def test_cached_operator_norms_follow_external_changes(digits, change):
    X, y = digits
    net = _net("tanh")
    B = input_bound(X)
    opt = DSGD(layer_groups(net), mode="bound", input_bound=B)
    opt.step(_closure(opt, net, X, y))
    opt._kappas()  # (the cache holds this state's norms)
    change(net)
    fresh = layer_curvature_bounds([g["params"] for g in opt.param_groups], ["tanh", "tanh"], B)
    assert torch.allclose(opt._kappas(), fresh, rtol=1e-12)


@pytest.mark.parametrize("selection", ["greedy", "cyclic", "random"])
def test_a_layer_added_after_construction_is_scored_and_stepped(digits, selection):
    # Before: the per-layer constants were made once, so zip() cut the scores to the first layers
    # and an added layer was never chosen.
    X, y = digits
    net = _net("tanh")
    groups = layer_groups(net)
    opt = DSGD(groups[:1], selection=selection, seed=0, score_batch="previous" if selection == "greedy" else "same")
    opt.step(_closure(opt, net, X, y))
    for g in groups[1:]:
        opt.add_param_group(g)
    assert len(opt.state["dsgd"]["kappa"]) == len(groups)
    chosen = set()
    for _ in range(12):
        opt.step(_closure(opt, net, X, y))
        chosen.add(opt.last_step["layer"])
        assert len(opt.layer_scores()) == len(groups)
    assert chosen - {0}, f"only layer 0 was chosen ({selection})"


def test_random_choice_follows_seed_or_global_generator(digits):
    X, y = digits

    def layers(global_seed=None, **kw):
        net = _net("tanh")
        if global_seed is not None:
            torch.manual_seed(global_seed)
        opt = DSGD(layer_groups(net), mode="bound", selection="random", input_bound=input_bound(X), **kw)
        return [layer for _, layer in _run(opt, net, X, y, 12)]

    assert layers(seed=3) == layers(seed=3)
    assert layers(global_seed=7) == layers(global_seed=7)  # seed=None: torch.manual_seed governs it
    assert layers(global_seed=7) != layers(global_seed=8)
    assert len(set(layers(seed=3))) > 1


def test_group_that_is_not_a_layer_is_refused_at_construction():
    # Found by the registry-wide fuzz: a bias that does not match the weight's rows used to crash in step().
    w, b = torch.zeros(2, 1, requires_grad=True), torch.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match=r"param group 0: the bias has 1 entries but the weight \(2, 1\) has 2"):
        DSGD([{"params": [w, b]}])


def test_spectral_dual_map_of_a_rank_deficient_gradient_stays_in_its_range():
    # Found by the 2-rank == 1-rank test: for a rank-1 G (a one-sample gradient) the singular
    # vectors of the zero singular values are rounding noise; the canonical map is rho(G) = G.
    from beyondsgd.optim.layer_norms import SpectralNorm

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 1, generator=g, dtype=torch.float64), torch.randn(1, 4, generator=g, dtype=torch.float64)
    G = a @ b
    torch.testing.assert_close(SpectralNorm().dual_map(G), G)
    # rank 2 in a 6x4 matrix: rho(G) annihilates the null space of G
    G2 = G + torch.randn(6, 1, generator=g, dtype=torch.float64) @ torch.randn(1, 4, generator=g, dtype=torch.float64)
    null = torch.linalg.svd(G2).Vh[2:].T
    assert (SpectralNorm().dual_map(G2) @ null).abs().max() < 1e-12
    assert SpectralNorm().dual_map(torch.zeros(3, 2)).abs().max() == 0


@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_nonfinite_gradient_is_reported_as_divergence_not_an_svd_error(norm):
    # Found by the benchmark suite: at 3x-10x the default step the SVD raised LinAlgError
    # instead of the runner recording a divergence. Such steps are now refused up front (the
    # guarantee needs lr in (0, 2)); a non-finite gradient still ends the step cleanly (below).
    from beyondsgd.bench import Experiment, run_experiment

    exp = Experiment(
        algorithm="dsgd",
        hyperparams={"lr": 100.0, "norm": norm},
        epochs=3,
        dataset_options={"n_train": 300},
        device="cpu",
    )
    with pytest.raises(ValueError, match=r"invalid lr=100.0.*\(0, 2\)"):
        run_experiment(exp, progress=False)

    layer = torch.nn.Linear(3, 2)
    opt = DSGD([{"params": list(layer.parameters())}], mode="adaptive", norm=norm)
    before = [p.detach().clone() for p in layer.parameters()]

    def closure():
        layer.weight.grad = torch.full_like(layer.weight, float("nan"))
        layer.bias.grad = torch.zeros_like(layer.bias)
        return torch.tensor(1.0)

    assert torch.isnan(opt.step(closure)) and opt.last_step["nonfinite_gradient"]
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))


def test_per_group_norm_is_honoured_and_global_options_are_refused_per_group():
    torch.manual_seed(0)
    w1, w2 = nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(2, 4))
    opt = DSGD(
        [{"params": [w1], "norm": "frobenius"}, {"params": [w2]}],
        norm="spectral",
        selection="cyclic",
    )
    assert [g["norm"] for g in opt.param_groups] == ["frobenius", "spectral"]
    g = torch.randn(4, 3)

    def closure():
        opt.zero_grad()
        loss = (w1 * g).sum() + (w2**2).sum()
        loss.backward()
        return loss

    before = w1.detach().clone()
    opt.step(closure)  # cyclic: layer 0 first, Frobenius map = the gradient itself
    step = before - w1.detach()
    torch.testing.assert_close(step / step.norm(), g / g.norm())
    for key, val in (("maximize", True), ("mode", "bound"), ("selection", "random")):
        with pytest.raises(ValueError, match=f"param group 1: DSGD option {key}="):
            DSGD([{"params": [w1]}, {"params": [w2], key: val}])


def test_no_step_once_the_loss_is_not_finite():
    w = nn.Parameter(torch.ones(2, 2))
    opt = DSGD([w], mode="adaptive")

    def closure():
        opt.zero_grad()
        loss = (w.sum() * float("inf")) if w.sum() > 0 else w.sum()
        loss.backward()
        return loss

    before = w.detach().clone()
    assert opt.step(closure) == float("inf")
    assert torch.equal(w, before) and opt.last_step["nonfinite_loss"]


@pytest.mark.parametrize("mode", ["adaptive", "bound"])
def test_loss_closure_makes_the_decrease_check_a_forward_pass_with_the_same_iterates(mode):
    """``step(closure, loss_closure=...)``: the check after the step calls the forward-only closure (no
    backward), and since it computes the same loss the steps taken are exactly those of the closure-only run."""
    torch.manual_seed(0)
    X, y = torch.randn(64, 12, dtype=torch.float64), torch.randint(0, 3, (64,))
    runs, calls = [], []
    for use_loss_closure in (False, True):
        torch.manual_seed(1)
        net = create_model("mlp", (12,), 3, widths=(16,), activation="tanh").double()
        extra = {"input_bound": input_bound(X), "check_decrease": True} if mode == "bound" else {}
        opt = DSGD(layer_groups(net), mode=mode, norm="frobenius", **extra)
        count = {"closure": 0, "backward_free": 0}

        def closure():
            count["closure"] += 1
            opt.zero_grad()
            loss = F.cross_entropy(net(X), y)
            loss.backward()
            return loss

        def forward_only():
            count["backward_free"] += 1
            assert not torch.is_grad_enabled()
            return F.cross_entropy(net(X), y)

        log = []
        for _ in range(12):
            opt.step(closure, loss_closure=forward_only if use_loss_closure else None)
            log.append((opt.last_step["layer"], opt.last_step["realized_decrease"], opt.last_step["backtracks"]))
        runs.append(([p.detach().clone() for p in net.parameters()], log))
        calls.append(dict(count))
    (p0, log0), (p1, log1) = runs
    assert log0 == log1 and all(torch.equal(a, b) for a, b in zip(p0, p1))
    checks = 12 + sum(b for _, _, b in log0)  # one check per try
    assert calls[0] == {"closure": 12 + checks, "backward_free": 0}
    assert calls[1] == {"closure": 12, "backward_free": checks}


def test_sparse_gradient_is_refused_by_name():
    emb = nn.Embedding(5, 3, sparse=True)
    opt = DSGD([{"params": [emb.weight]}])
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="DSGD does not support sparse gradients"):
        opt.step(lambda: emb(torch.tensor([1, 2])).sum())


def test_an_lr_moved_out_of_the_guarantees_range_is_refused_at_step(digits):
    X, y = digits
    net = _net("tanh")
    opt = DSGD(layer_groups(net), lr=1.0)
    opt.step(_closure(opt, net, X, y))
    for g in opt.param_groups:
        g["lr"] = 2.5  # (as a scheduler might)
    with pytest.raises(ValueError, match=r"param group 0: lr=2.5 is outside \[0, 2\).*LR scheduler"):
        opt.step(_closure(opt, net, X, y))
    # A warm-up from 0 (LambdaLR) takes its first step at lr = 0: a step of size 0, no error.
    net = _net("tanh")
    opt = DSGD(layer_groups(net), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: min(1.0, e / 5))
    before = [p.detach().clone() for p in net.parameters()]
    opt.step(_closure(opt, net, X, y))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    sched.step()
    opt.step(_closure(opt, net, X, y))
    assert not all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_a_group_added_later_is_checked_like_the_constructors(digits):
    # Before: add_param_group skipped the layer checks, so a 3-tensor group was accepted and a bound-mode
    # group without an activation failed with a KeyError at the next step.
    net = _net("tanh")
    groups = layer_groups(net)
    opt = DSGD(groups[:1])
    extra = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="param group 1"):
        opt.add_param_group({"params": [extra.weight, extra.bias, nn.Parameter(torch.ones(2))]})
    assert len(opt.param_groups) == 1 and len(opt.state["dsgd"]["kappa"]) == 1
    bound = DSGD(layer_groups(net), mode="bound")
    head = nn.Linear(10, 10)
    with pytest.raises(ValueError, match="mode='bound' needs"):
        bound.add_param_group({"params": list(head.parameters())})  # no activation recorded for the chain
    assert len(bound.param_groups) == len(groups)
