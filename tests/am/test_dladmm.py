"""dlADMM against its math: block descent, exact sub-problems, the dual step, gradients."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from beyondsgd.algorithms import algorithm_info, make_trainer
from beyondsgd.am import DLADMM, DLADMM_DEFAULTS
from beyondsgd.am.projections import LeakyReLU, ReLU


def lagrangian(tr, W=None, b=None, z=None, a=None, u=None):
    """The augmented Lagrangian written from the paper (mean scale), independent of the trainer's code."""
    W, b, z, a = W or tr.W, b or tr.b, z or tr.z, a or tr.a
    u = tr.u if u is None else u
    n, L = tr.n, len(W)
    val = F.cross_entropy(z[-1], tr.y, reduction="sum")
    r_L = z[-1] - a[L - 1] @ W[-1].T - b[-1]
    val = val + (u * r_L).sum() + tr.rho / 2 * r_L.pow(2).sum()
    for j in range(L - 1):
        r = z[j] - a[j] @ W[j].T - b[j]
        val = val + tr.nu / 2 * (r.pow(2).sum() + (a[j + 1] - tr.acts[j](z[j])).pow(2).sum())
    return val / n + tr.mu / 2 * sum(w.pow(2).sum() for w in W)


@pytest.fixture
def trainer(small_problem):
    def make(activation="relu", **kw):
        model, X, y = small_problem(activation)
        return DLADMM(model, X, y, **kw)

    return make


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_every_primal_block_does_not_increase_the_lagrangian_and_dual_step_is_the_papers(trainer, activation):
    tr = trainer(activation)
    tr.trace = []
    start = tr.terms()["dladmm_objective"]
    assert start == pytest.approx(float(lagrangian(tr)), rel=1e-5)
    for _ in range(4):
        u_old = tr.u.clone()
        tr.train_step(None)
        r_L = tr.z[-1] - tr.a[-1] @ tr.W[-1].T - tr.b[-1]
        assert torch.allclose(tr.u, u_old + tr.rho * r_L, atol=1e-6)  # u <- u + rho r_L
    names = [name for name, _ in tr.trace]
    # backward z3 b3 W3 a2 z2 b2 W2 a1 z1 b1 W1, forward W1 b1 z1 a1 W2 b2 z2 a2 W3 b3 z3, then u
    assert names[:23] == [
        "z3",
        "b3",
        "W3",
        "a2",
        "z2",
        "b2",
        "W2",
        "a1",
        "z1",
        "b1",
        "W1",
        "W1",
        "b1",
        "z1",
        "a1",
        "W2",
        "b2",
        "z2",
        "a2",
        "W3",
        "b3",
        "z3",
        "u",
    ]
    prev = start
    for name, value in tr.trace:
        if name == "u":  # the dual ascent step raises L by rho ||r_L||^2 / N >= 0
            assert value >= prev - 1e-6
        else:
            assert value <= prev + 1e-5 * abs(prev), name
        prev = value
    assert float(lagrangian(tr)) == pytest.approx(prev, rel=1e-5)


def test_block_gradients_match_autograd_of_the_lagrangian(trainer):
    tr = trainer()
    for _ in range(2):
        tr.train_step(None)
    Ws = [w.clone().double().requires_grad_(True) for w in tr.W]
    as_ = [tr.a[0].double()] + [a.clone().double().requires_grad_(True) for a in tr.a[1:]]
    val = lagrangian(tr, W=Ws, b=[v.double() for v in tr.b], z=[v.double() for v in tr.z], a=as_, u=tr.u.double())
    gW = torch.autograd.grad(val, Ws + as_[1:])
    # The trainer's W and a gradients (as in _update_W/_update_a), in float64 from the same state.
    for j in range(tr.num_layers):
        w = tr._weight(j)
        target = tr._target(j).double()
        r = as_[j].detach() @ Ws[j].detach().T + tr.b[j].double() - target
        mine = (w / tr.n) * (r.T @ as_[j].detach()) + tr.mu * Ws[j].detach()
        assert torch.allclose(mine, gW[j], atol=1e-9, rtol=1e-6)
    for i in range(1, tr.num_layers):
        W, target = Ws[i].detach(), tr._target(i).double()
        r = as_[i].detach() @ W.T + tr.b[i].double() - target
        hz = tr.acts[i - 1](tr.z[i - 1].double())
        mine = tr._weight(i) * (r @ W) + tr.nu * (as_[i].detach() - hz)  # sum form: times N
        assert torch.allclose(mine / tr.n, gW[tr.num_layers + i - 1], atol=1e-9, rtol=1e-6)


def test_b_and_z_are_exact_block_minimizers(trainer):
    tr = trainer()
    tr.train_step(None)
    # b: zero gradient of L at the state right after a b update (checked on a fresh b update).
    for j in range(tr.num_layers):
        tr._update_b(j)
        b = [v.clone().double().requires_grad_(True) if k == j else v.double() for k, v in enumerate(tr.b)]
        val = lagrangian(
            tr,
            W=[w.double() for w in tr.W],
            b=b,
            z=[v.double() for v in tr.z],
            a=[v.double() for v in tr.a],
            u=tr.u.double(),
        )
        (g,) = torch.autograd.grad(val, b[j])
        assert g.abs().max() < 1e-6
    # z_L: the prox is the minimizer (zero gradient up to the prox tolerance).
    tr._update_z(tr.num_layers - 1)
    z = [v.double() for v in tr.z]
    z[-1] = z[-1].clone().requires_grad_(True)
    val = lagrangian(
        tr,
        W=[w.double() for w in tr.W],
        b=[v.double() for v in tr.b],
        z=z,
        a=[v.double() for v in tr.a],
        u=tr.u.double(),
    )
    (g,) = torch.autograd.grad(val, z[-1])
    assert (g * tr.n).norm(dim=1).max() < 2 * tr.hyperparams["prox_tol"]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.01, 0.3]))
def test_relaxed_z_subproblem_is_the_exact_minimizer(seed, slope):
    gen = torch.Generator().manual_seed(seed)
    c, a = (
        torch.randn(40, generator=gen, dtype=torch.float64) * 3,
        torch.randn(40, generator=gen, dtype=torch.float64) * 3,
    )
    act = ReLU() if slope == 0.0 else LeakyReLU(slope)
    z = act.relaxed_argmin(c, a)
    grid = torch.linspace(-20, 20, 40001, dtype=torch.float64)[:, None]
    f_grid = (grid - c).pow(2) + (a - act(grid)).pow(2)
    f_z = (z - c).pow(2) + (a - act(z)).pow(2)
    assert (f_z <= f_grid.min(0).values + 1e-12).all()  # no grid point is better
    assert (f_z >= f_grid.min(0).values - 2e-3).all()  # and the grid gets close (sanity of the check)


def test_registered_trains_digits_and_refuses_what_it_cannot_do(digits, small_problem):
    info = algorithm_info("dladmm")
    assert info.kind == "trainer" and info.batch_size == "full" and info.defaults == DLADMM_DEFAULTS
    torch.manual_seed(0)
    from beyondsgd.models import create_model

    net = create_model("mlp", digits.input_shape, 10, widths=(100, 100))
    tr = make_trainer("dladmm", net, digits.X_train, digits.y_train, F.cross_entropy)
    for _ in range(20):
        tr.train_step(None)
    with torch.no_grad():
        acc = (net(digits.X_test).argmax(1) == digits.y_test).float().mean().item()
    assert acc >= 0.8  # measured 0.867 (seed 0, 20 iterations); chance is 0.1
    assert tr.end_epoch(20)["dladmm_backtrack_caps"] == 0
    model, X, y = small_problem("elu")
    with pytest.raises(ValueError, match="dlADMM supports the activations relu and leaky_relu"):
        DLADMM(model, X, y)
    model, X, y = small_problem()
    with pytest.raises(ValueError, match="invalid nu=0"):
        DLADMM(model, X, y, nu=0)


@pytest.mark.parametrize("schedule", ["constant", "authors"])
def test_checkpoint_resume_is_identical(small_problem, schedule):
    import copy

    # The authors' schedule with a scripted training loss (by iteration; the real one only falls on
    # this problem): rises at iterations 2, 3, 4 -> rho, nu doubled after iteration 4, so the resumed
    # trainer (saved after iteration 2, in the middle of the run of rises) must carry the count.
    kw = {"rho_schedule": schedule, "rho_patience": 3, "rho_factor": 2.0}
    seq = [1.0, 2.0, 3.0, 4.0, 0.5, 0.6]

    def script(t):
        if schedule == "authors":
            t.train_loss = lambda: seq[t.k - 1]

    model, X, y = small_problem()
    tr = DLADMM(model, X, y, **kw)
    script(tr)
    for _ in range(2):
        tr.train_step(None)
    state = copy.deepcopy(tr.state_dict())
    cont, rhos = [], []
    for _ in range(4):
        cont.append(float(tr.train_step(None)))
        rhos.append((tr.rho, tr.nu, tr.rises, tr.prev_train_loss, tr.rho_increases))
    model2, _, _ = small_problem(seed=5)
    tr2 = DLADMM(model2, X, y, **kw)
    script(tr2)
    tr2.load_state_dict(state)
    cont2, rhos2 = [], []
    for _ in range(4):
        cont2.append(float(tr2.train_step(None)))
        rhos2.append((tr2.rho, tr2.nu, tr2.rises, tr2.prev_train_loss, tr2.rho_increases))
    assert cont2 == cont and rhos2 == rhos
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), model2.parameters()))
    assert tr2.end_epoch(6)["dladmm_rho"] == tr.rho == (2.0 if schedule == "authors" else 1.0)
    assert [r[0] for r in rhos] == ([1.0, 2.0, 2.0, 2.0] if schedule == "authors" else [1.0] * 4)


# ---------------------------------------------------------------- the authors' rho schedule
def _scripted(tr, losses):
    """Make ``tr.train_loss`` return ``losses`` in order, one per call; returns the list of calls."""
    calls = []

    def fake():
        calls.append(tr.k)
        return losses[len(calls) - 1]

    tr.train_loss = fake
    return calls


def test_authors_schedule_multiplies_rho_and_nu_exactly_after_patience_consecutive_rises(small_problem):
    model, X, y = small_problem()
    tr = DLADMM(model, X, y, rho=0.5, nu=0.25, rho_schedule="authors")
    # rises:  -  no  yes yes yes(3: x10) yes yes  no(tie) yes yes yes(3: x10) no
    losses = [5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 4.9, 5.0, 5.1, 5.2, 1.0]
    calls = _scripted(tr, losses)
    seen = []
    for _ in losses:
        tr.train_step(None)
        seen.append((tr.rho, tr.nu, tr.rises))
    assert calls == list(range(1, len(losses) + 1))  # full batch: one check per iteration
    fired_at = [4, 10]  # 0-based steps where the third consecutive rise arrives
    k = 0
    for step, (rho, nu, _) in enumerate(seen):
        k += step in fired_at
        assert (rho, nu) == (0.5 * 10.0**k, 0.25 * 10.0**k), step
    # the count restarts after an increase: 4.8, 4.9 are rises 1 and 2 of a new run; the tie resets it
    assert [r for _, _, r in seen] == [0, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0]
    assert tr.rho_increases == 2 and tr.end_epoch(12)["dladmm_rho_increases"] == 2.0
    assert tr.end_epoch(12)["dladmm_nu"] == 0.25 * 100


def test_authors_schedule_factor_and_patience_are_used_and_constant_never_looks(small_problem):
    model, X, y = small_problem()
    tr = DLADMM(model, X, y, rho_schedule="authors", rho_factor=2.0, rho_patience=1)
    _scripted(tr, [1.0, 2.0, 3.0, 2.0, 4.0])
    rhos = []
    for _ in range(5):
        tr.train_step(None)
        rhos.append(tr.rho)
    assert rhos == [1.0, 2.0, 4.0, 4.0, 8.0]
    model, X, y = small_problem()
    const = DLADMM(model, X, y)
    _scripted(const, [])  # any call would raise IndexError
    for _ in range(3):
        const.train_step(None)
    assert const.rho == 1.0 and const.nu == 1.0 and const.end_epoch(3)["dladmm_rho_increases"] == 0.0


def test_authors_schedule_without_a_rise_trains_bit_identically_to_constant(small_problem):
    runs = []
    for schedule in ("constant", "authors"):
        model, X, y = small_problem()
        tr = DLADMM(model, X, y, rho_schedule=schedule)
        if schedule == "authors":
            _scripted(tr, [float(-k) for k in range(5)])  # falling: never fires
        runs.append([float(tr.train_step(None)) for _ in range(5)] + [p.clone() for p in model.parameters()])
    assert runs[0][:5] == runs[1][:5]
    assert all(torch.equal(p, q) for p, q in zip(runs[0][5:], runs[1][5:]))


def test_training_loss_of_the_schedule_is_the_forward_pass_and_mini_batch_checks_once_per_pass(small_problem):
    model, X, y = small_problem("leaky_relu")
    tr = DLADMM(model, X, y, rho_schedule="authors")
    tr.train_step(None)
    with torch.no_grad():
        expected = F.cross_entropy(model(X), y).item()
    assert tr.train_loss() == pytest.approx(expected, rel=1e-5)
    assert tr.prev_train_loss == pytest.approx(expected, rel=1e-5)
    model, X, y = small_problem()
    tr = DLADMM(model, X, y, rho_schedule="authors")
    calls = _scripted(tr, [1.0, 2.0, 3.0, 4.0])
    for _ in range(3):
        for batch in torch.arange(400).split(100):  # 4 batches = one pass over the 400 samples
            tr.train_step(batch)
    assert calls == [4, 8, 12]  # after the 4th, 8th, 12th batch
    assert tr.rises == 2 and tr.rho == 1.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"rho_schedule": "sometimes"}, "rho_schedule"),
        ({"rho_factor": 1.0}, "rho_factor"),
        ({"rho_factor": float("nan")}, "rho_factor"),
        ({"rho_patience": 0}, "rho_patience"),
        ({"rho_patience": 2.5}, "rho_patience"),
    ],
)
def test_schedule_options_are_validated_in_the_constructor(small_problem, kw, match):
    model, X, y = small_problem()
    with pytest.raises(ValueError, match=match):
        DLADMM(model, X, y, **kw)


def test_authors_schedule_refuses_a_state_without_its_entries(small_problem):
    model, X, y = small_problem()
    state = DLADMM(model, X, y).state_dict()
    for name in DLADMM._SCHEDULE:
        del state[name]
    DLADMM(model, X, y).load_state_dict(state)  # an older, constant-schedule state still loads
    with pytest.raises(ValueError, match="penalty schedule"):
        DLADMM(model, X, y, rho_schedule="authors").load_state_dict(state)


def test_mini_batch_updates_only_the_batch_rows_and_trains(small_problem):
    model, X, y = small_problem()
    tr = DLADMM(model, X, y)
    z_before, u_before = [t.clone() for t in tr.z], tr.u.clone()
    idx = torch.arange(0, 400, 4)
    tr.train_step(idx)
    rest = torch.ones(400, dtype=torch.bool)
    rest[idx] = False
    assert all(torch.equal(a[rest], b[rest]) for a, b in zip(tr.z, z_before)) and torch.equal(
        tr.u[rest], u_before[rest]
    )
    assert not torch.equal(tr.u[idx], u_before[idx])
    gen = torch.Generator().manual_seed(0)
    for _ in range(15):
        for batch in torch.randperm(400, generator=gen).split(100):
            tr.train_step(batch)
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    assert acc > 0.6  # measured 0.895 (seed 0); chance 0.1
