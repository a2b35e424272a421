"""HeavyBall and Nesterov: the papers' iterations, torch.optim equivalence, optimizer citizenship."""

import copy

import pytest
import torch
from torch import nn

from beyondsgd import optim
from beyondsgd.optim import HeavyBall, Nesterov
from beyondsgd.optim.momentum import momentum_at

CLASSES = {"hb": (HeavyBall, False), "nag": (Nesterov, True)}


def _problem(seed: int):
    """A random least-squares + tanh problem with two parameter tensors (so groups are possible)."""
    g = torch.Generator().manual_seed(seed)
    n, d = 12, 5
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    w0 = torch.randn(d, generator=g, dtype=torch.float64)
    b0 = torch.randn(3, generator=g, dtype=torch.float64)

    def loss_fn(w, b):
        return 0.5 * ((torch.tanh(X @ w) * b.sum() - y) ** 2).mean() + 0.1 * (b**2).sum()

    return w0, b0, loss_fn


def _run(make_opt, seed, steps=25, groups=False, scheduler=None):
    w0, b0, loss_fn = _problem(seed)
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    params = [{"params": [w]}, {"params": [b], "lr": 0.03, "momentum": 0.5}] if groups else [w, b]
    opt = make_opt(params)
    sched = scheduler(opt) if scheduler else None
    traj = []
    for _ in range(steps):

        def closure():
            opt.zero_grad()
            loss = loss_fn(w, b)
            loss.backward()
            return loss

        opt.step(closure)
        if sched:
            sched.step()
        traj.append(torch.cat([w.detach().clone(), b.detach().clone()]))
    return torch.stack(traj)


@pytest.mark.parametrize("name", ["hb", "nag"])
@pytest.mark.parametrize("seed", range(12))
def test_equals_torch_sgd_under_the_mapping(name, seed):
    cls, nesterov = CLASSES[name]
    gen = torch.Generator().manual_seed(1000 + seed)
    lr = float(torch.empty(1).uniform_(0.01, 0.3, generator=gen))
    mu = float(torch.empty(1).uniform_(0.0, 0.99, generator=gen))
    wd = [0.0, 0.05][seed % 2]
    groups = seed % 3 == 0
    ours = _run(lambda p: cls(p, lr=lr, momentum=mu, weight_decay=wd), seed, groups=groups)
    ref = _run(
        lambda p: torch.optim.SGD(p, lr=lr, momentum=mu, weight_decay=wd, nesterov=nesterov), seed, groups=groups
    )
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["hb", "nag"])
def test_maximize_equals_torch(name):
    cls, nesterov = CLASSES[name]
    ours = _run(lambda p: cls(p, lr=0.05, momentum=0.8, maximize=True), 3, steps=10)
    ref = _run(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=nesterov, maximize=True), 3, steps=10)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def _reference_loop(seed, lr, betas, nesterov, steps):
    """The papers' iteration written out on the iterate W (two tensors concatenated)."""
    w0, b0, loss_fn = _problem(seed)
    W, W_prev = torch.cat([w0, b0]), torch.cat([w0, b0])

    def grad(v):
        v = v.clone().requires_grad_()
        loss_fn(v[:5], v[5:]).backward()
        return v.grad

    seen = []  # what the model holds: W for HB, the look-ahead point Y for NAG
    for k in range(steps):
        beta = betas(k)
        if nesterov:
            Y = W + beta * (W - W_prev)
            W, W_prev = Y - lr * grad(Y), W
            seen.append(W + betas(k + 1) * (W - W_prev))
        else:
            W, W_prev = W - lr * grad(W) + beta * (W - W_prev), W
            seen.append(W)
    return torch.stack(seen)


@pytest.mark.parametrize("name", ["hb", "nag"])
def test_convex_schedule_matches_hand_written_loop(name):
    cls, nesterov = CLASSES[name]
    ours = _run(lambda p: cls(p, lr=0.1, momentum_schedule="convex"), 5, steps=30)
    ref = _reference_loop(5, 0.1, lambda k: max(0.0, (k - 1) / (k + 2)), nesterov, 30)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    assert momentum_at({"momentum_schedule": "convex"}, 2) == 0.25


@pytest.mark.parametrize("name", ["hb", "nag"])
def test_constant_momentum_matches_papers_form(name):
    cls, nesterov = CLASSES[name]
    ours = _run(lambda p: cls(p, lr=0.07, momentum=0.6), 7, steps=20)
    ref = _reference_loop(7, 0.07, lambda k: 0.6, nesterov, 20)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_scheduler_mapping_differs_from_torch_by_lr_ratio():
    """With a changing lr, HB keeps beta; torch SGD's effective momentum is mu * lr_k / lr_{k-1}."""

    def sched(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)

    ours = _run(lambda p: HeavyBall(p, lr=0.2, momentum=0.7), 2, steps=12, scheduler=sched)
    torch_run = _run(lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.7), 2, steps=12, scheduler=sched)
    torch.testing.assert_close(ours[:4], torch_run[:4], rtol=1e-10, atol=1e-12)
    assert (ours[4:] - torch_run[4:]).abs().max() > 1e-6  # they differ once lr changes

    # Reproduce torch exactly with HB whose momentum is rescaled by lr_k / lr_{k-1} at each change.
    w0, b0, loss_fn = _problem(2)
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = HeavyBall([w, b], lr=0.2, momentum=0.7)
    traj, lr_prev = [], 0.2
    for k in range(12):
        lr = 0.2 * 0.5 ** (k // 4)
        opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"] = lr, 0.7 * lr / lr_prev
        lr_prev = lr
        opt.zero_grad()
        loss_fn(w, b).backward()
        opt.step()
        traj.append(torch.cat([w.detach().clone(), b.detach().clone()]))
    torch.testing.assert_close(torch.stack(traj), torch_run, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["hb", "nag"])
@pytest.mark.parametrize("schedule", ["constant", "convex"])
def test_foreach_equals_for_loop(name, schedule):
    cls, _ = CLASSES[name]
    kw = dict(lr=0.05, momentum=0.9, momentum_schedule=schedule, weight_decay=0.01)
    fast = _run(lambda p: cls(p, foreach=True, **kw), 4, groups=True)
    slow = _run(lambda p: cls(p, foreach=False, **kw), 4, groups=True)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", ["hb", "nag"])
def test_state_dict_round_trip_continues_identically(name):
    cls, _ = CLASSES[name]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    X, y = torch.randn(32, 4), torch.randn(32, 1)
    opt = cls(model.parameters(), lr=0.05, momentum=0.9, momentum_schedule="convex")

    def step(m, o):
        o.zero_grad()
        loss = ((m(X) - y) ** 2).mean()
        loss.backward()
        o.step()

    for _ in range(5):
        step(model, opt)
    model2 = copy.deepcopy(model)
    opt2 = cls(model2.parameters(), lr=0.05, momentum=0.9, momentum_schedule="convex")
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for _ in range(5):
        step(model, opt)
        step(model2, opt2)
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)


def test_closure_returns_loss_and_nag_iterates():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = Nesterov([w], lr=0.1, momentum=0.5)

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(5.0)
    opt.step(closure)
    # W_2 = Y_1 - 0.1 * 2 Y_1 with Y_1 = W_1 + 0.5 (W_1 - W_0), W_1 = 0.8 W_0.
    W0 = torch.tensor([1.0, -2.0])
    W1 = 0.8 * W0
    W2 = 0.8 * (W1 + 0.5 * (W1 - W0))
    torch.testing.assert_close(opt.iterates()[0], W2)
    torch.testing.assert_close(w.detach(), W2 + 0.5 * (W2 - W1))


def test_params_without_grad_are_skipped():
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = HeavyBall([a, b], lr=0.1)
    (a.sum()).backward()
    opt.step()
    assert torch.equal(b, torch.ones(2)) and not torch.equal(a, torch.ones(2))


@pytest.mark.parametrize("name", ["hb", "nag"])
@pytest.mark.parametrize(
    "hp,needle",
    [
        ({"lr": -0.1}, "lr=-0.1"),
        ({"momentum": 1.0}, "momentum=1.0"),
        ({"momentum_schedule": "linear"}, "momentum_schedule='linear'"),
        ({"weight_decay": float("nan")}, "weight_decay=nan"),
        ({"nesterov": True}, "unknown hyperparameter 'nesterov'"),
    ],
)
def test_bad_hyperparameters(name, hp, needle):
    p = [torch.zeros(1, requires_grad=True)]
    with pytest.raises(ValueError, match=needle):
        optim.create(name, p, **hp)
    if "nesterov" not in hp:
        with pytest.raises(ValueError, match=needle):
            CLASSES[name][0](p, **hp)
        with pytest.raises(ValueError, match=needle):  # a param group's override is checked too
            CLASSES[name][0]([{"params": p, **hp}])


def test_registry_entries():
    for name, (cls, _) in CLASSES.items():
        spec = optim.get_spec(name)
        assert spec.family == "momentum" and spec.factory is cls
        opt = optim.create(name, nn.Linear(2, 1))
        assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == spec.defaults["lr"]


def test_extra_param_group_keys_pass_through_like_torch():
    model = nn.Linear(2, 1)
    opt = Nesterov([{"params": model.parameters(), "name": "head"}], lr=0.1)
    assert opt.param_groups[0]["name"] == "head"
    opt = HeavyBall(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.01, "maximize": True}, {"momentum_schedule": "convex"}])
def test_fused_heavy_ball_runs_on_torchs_sgd_kernel_and_equals_the_for_loop(dtype, options):
    """hb's fused path is torch's own fused SGD kernel on the displacement (dampening 1 + lr, lr -1):
    no kernel is generated, the gradients are left as they were, and the iterates are the for-loop's."""
    from beyondsgd.optim import fused

    torch.manual_seed(0)
    ps = [torch.randn(7, 5, dtype=dtype), torch.randn(5, dtype=dtype)]
    runs = {}
    for path in ({"foreach": False}, {"fused": True}):
        params = [p.clone().requires_grad_() for p in ps]
        opt = HeavyBall(params, lr=0.05, momentum=0.9, **options, **path)
        for k in range(6):
            for j, p in enumerate(params):
                p.grad = torch.sin(p.detach() * (k + 1) + j)
            before = [p.grad.clone() for p in params]
            opt.step()
            assert all(torch.equal(p.grad, g) for p, g in zip(params, before))
        runs[tuple(path)] = [p.detach() for p in params] + [opt.state[p]["displacement"] for p in params]
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-13, "atol": 1e-13}
    for a, b in zip(*runs.values()):
        torch.testing.assert_close(a, b, **tol)
    assert not any(
        key[0] == "hb" and key[2] == dtype for key in fused._KERNELS if options.get("momentum_schedule") != "convex"
    )


_NAG_FUSED = pytest.mark.skipif(
    not __import__("os").environ.get("BEYONDSGD_SLOW_TESTS"),
    reason="nag's fused kernel is generated by inductor (seconds); BEYONDSGD_SLOW_TESTS=1 runs it",
)


@pytest.mark.parametrize(
    "name,path",
    [
        ("hb", {"foreach": False}),
        ("hb", {"foreach": True}),
        ("hb", {"fused": True}),
        ("nag", {"foreach": False}),
        ("nag", {"foreach": True}),
        pytest.param("nag", {"fused": True}, marks=_NAG_FUSED),
    ],
)
def test_convex_schedule_counts_steps_per_parameter(name, path):
    """beta_k comes from each parameter's own step count, as torch's per-parameter ``step``.

    Before, every tensor of a group used the count of the last one with a gradient, so a tensor's
    trajectory depended on whether another tensor had a gradient in some steps.
    """
    cls, _ = CLASSES[name]
    torch.manual_seed(0)
    p0, p1 = torch.randn(6, 4), torch.randn(5)

    def run(with_p1: bool):
        a, b = p0.clone().requires_grad_(), p1.clone().requires_grad_()
        opt = cls([a, b] if with_p1 else [a], lr=0.05, momentum_schedule="convex", **path)
        for k in range(8):
            a.grad = torch.sin(a.detach() * (k + 1))
            b.grad = torch.cos(b.detach() * (k + 1)) if with_p1 and k % 2 else None  # p1: every other step
            opt.step()
        return a.detach(), opt

    alone, _ = run(False)
    together, opt = run(True)
    assert torch.equal(alone, together)
    steps = [int(opt.state[p]["step"]) for p in opt.param_groups[0]["params"]]
    assert steps == [8, 4]
