"""Rule optimizers: torch.optim equivalence at gamma = 0, citizenship, schedules, registry."""

import copy
import warnings

import pytest
import torch
from torch import nn

from beyondsgd import optim
from beyondsgd.optim import schedules
from beyondsgd.optim.multiplicative import FrozenZerosWarning, Madam, RuleAdagrad, RuleAdam, RuleRMSprop, RuleSGD

# (rule optimizer class, torch class, base options): every base and its variants.
BASES = [
    (RuleSGD, torch.optim.SGD, {"lr": 0.05}),
    (RuleSGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    (RuleSGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True}),
    (RuleAdam, torch.optim.Adam, {"lr": 0.01}),
    (RuleAdam, torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True, "weight_decay": 0.01}),
    (RuleAdam, torch.optim.Adam, {"lr": 0.01, "maximize": True}),
    (RuleRMSprop, torch.optim.RMSprop, {"lr": 0.01}),
    (RuleRMSprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.01}),
    (RuleRMSprop, torch.optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.3, "maximize": True}),
    (RuleAdagrad, torch.optim.Adagrad, {"lr": 0.1}),
    (
        RuleAdagrad,
        torch.optim.Adagrad,
        {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
    ),
]
IDS = [f"{c.__name__}-{'-'.join(k for k in o if k != 'lr') or 'plain'}" for c, _, o in BASES]


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


_X = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
_Y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(2))


def _train(model, opt, steps, sched=None):
    losses = []
    for _ in range(steps):

        def closure():
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(_X), _Y)
            loss.backward()
            return loss

        losses.append(float(opt.step(closure).detach()))
        if sched is not None:
            sched.step()
    return losses


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("cls,torch_cls,options", BASES, ids=IDS)
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("rule", ["hybrid", "additive"])
def test_gamma_zero_reproduces_torch_optim(cls, torch_cls, options, foreach, rule):
    a, b = _model(), _model()
    ours = cls(a.parameters(), rule=rule, gamma=0.0, eta_out=0.5, foreach=foreach, **options)
    ref = torch_cls(b.parameters(), foreach=foreach, **options)
    _train(a, ours, 25)
    _train(b, ref, 25)
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-5, atol=1e-6)
    assert not torch.equal(_flat(a), _flat(_model()))  # it did move


@pytest.mark.parametrize("cls,torch_cls,options", BASES, ids=IDS)
@pytest.mark.parametrize("rule", ["hybrid", "multiplicative", "exp"])
def test_foreach_equals_for_loop(cls, torch_cls, options, rule):
    a, b = _model(), _model()
    kw = {"rule": rule, "gamma": 0.6, "eta_out": 0.05, "eta_in": 0.7, "max_scale": 2.0 if rule == "exp" else None}
    if rule != "hybrid":  # no additive step: lr is eta_out's alias
        options = {k: v for k, v in options.items() if k != "lr"}
    _train(a, cls(a.parameters(), foreach=False, **kw, **options), 15)
    _train(b, cls(b.parameters(), foreach=True, **kw, **options), 15)
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,torch_cls,options", BASES[1::2], ids=IDS[1::2])
def test_state_dict_round_trip_mid_run(cls, torch_cls, options):
    """Save mid-run, load into a fresh optimizer (through a deep copy), continue identically."""
    a = _model()
    opt = cls(a.parameters(), rule="hybrid", gamma=0.5, eta_out=0.05, **options)
    _train(a, opt, 5)
    saved_model, saved_opt = copy.deepcopy(a.state_dict()), copy.deepcopy(opt.state_dict())
    _train(a, opt, 7)

    b = _model(seed=3)
    b.load_state_dict(saved_model)
    fresh = cls(b.parameters(), rule="additive", gamma=0.0, eta_out=1.0, **options)  # overwritten by load
    fresh.load_state_dict(saved_opt)
    assert fresh.param_groups[0]["rule"] == "hybrid" and fresh.param_groups[0]["gamma"] == 0.5
    _train(b, fresh, 7)
    assert torch.equal(_flat(a), _flat(b))


def test_nested_state_dict_with_schedulers_restores_exactly():
    a = _model()
    opt = RuleAdam(a.parameters(), rule="hybrid", lr=0.01, eta_out=0.01, gamma=1.0)
    lr_s = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    g_s = schedules.HoldThenDecay(opt, "gamma", hold=1, factor=0.5)
    for _ in range(3):
        _train(a, opt, 2)
        lr_s.step()
        g_s.step()
    blob = copy.deepcopy(
        {"model": a.state_dict(), "opt": opt.state_dict(), "lr": lr_s.state_dict(), "gamma": g_s.state_dict()}
    )
    for _ in range(3):
        _train(a, opt, 2)
        lr_s.step()
        g_s.step()

    b = _model(seed=5)
    opt2 = RuleAdam(b.parameters(), rule="hybrid", lr=0.01, eta_out=0.01, gamma=1.0)
    lr_s2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    g_s2 = schedules.HoldThenDecay(opt2, "gamma", hold=1, factor=0.5)
    b.load_state_dict(blob["model"])
    opt2.load_state_dict(blob["opt"])
    lr_s2.load_state_dict(blob["lr"])
    g_s2.load_state_dict(blob["gamma"])
    for _ in range(3):
        _train(b, opt2, 2)
        lr_s2.step()
        g_s2.step()
    assert torch.equal(_flat(a), _flat(b))
    assert opt2.param_groups[0]["gamma"] == opt.param_groups[0]["gamma"] == 0.5**5


@pytest.mark.parametrize("rule", ["additive", "hybrid", "multiplicative"])
def test_lr_scheduler_changes_the_step(rule):
    a, b = _model(), _model()
    oa = RuleSGD(a.parameters(), rule=rule, gamma=0.5, lr=0.1, eta_out=0.1)
    ob = RuleSGD(b.parameters(), rule=rule, gamma=0.5, lr=0.1, eta_out=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(ob, lambda epoch: 0.1**epoch)
    _train(a, oa, 1)
    _train(b, ob, 1, sched)
    assert torch.equal(_flat(a), _flat(b))  # the first step is unchanged
    before_a, before_b = _flat(a), _flat(b)
    _train(a, oa, 1)
    _train(b, ob, 1, sched)
    step_a, step_b = _flat(a) - before_a, _flat(b) - before_b
    # Only the lr changed (x0.1) and every part of the step scales with it.
    torch.testing.assert_close(step_b.norm() / step_a.norm(), torch.tensor(0.1), rtol=0.05, atol=0)


def test_scheduler_can_leave_eta_out_alone_but_lr_zero_still_freezes():
    a, b = _model(), _model()
    kw = {"rule": "multiplicative", "lr": 0.1, "eta_out": 0.1, "scheduler_scales_eta_out": False}
    oa, ob = RuleSGD(a.parameters(), **kw), RuleSGD(b.parameters(), **kw)
    torch.optim.lr_scheduler.LambdaLR(ob, lambda e: 0.5)  # lr halved from the start
    assert ob.param_groups[0]["lr"] == 0.05
    _train(a, oa, 2)
    _train(b, ob, 2)
    assert torch.equal(_flat(a), _flat(b))  # eta_out untouched by the scheduler
    torch.optim.lr_scheduler.LambdaLR(ob, lambda e: 0.0)
    assert ob.param_groups[0]["lr"] == 0.0
    before = _flat(b)
    _train(b, ob, 2)
    assert torch.equal(before, _flat(b))  # lr = 0 freezes the group under every rule


@pytest.mark.parametrize("rule", ["additive", "hybrid", "multiplicative", "exp"])
def test_lr_zero_freezes_a_group(rule):
    m = _model()
    first = list(m.parameters())[:2]
    rest = list(m.parameters())[2:]
    kw = {"lr": 0.05} if rule in ("additive", "hybrid") else {}
    opt = RuleAdam([{"params": first, "lr": 0.0}, {"params": rest}], rule=rule, gamma=0.5, eta_out=0.05, **kw)
    before = [p.detach().clone() for p in first]
    _train(m, opt, 3)
    assert all(torch.equal(p, q) for p, q in zip(first, before))
    assert not all(torch.equal(p, q) for p, q in zip(rest, [r.detach() for r in _model().parameters()][2:]))


def test_lr_is_eta_out_for_rules_without_an_additive_part():
    p = nn.Parameter(torch.ones(3))
    assert Madam([p], lr=0.05).param_groups[0]["eta_out"] == 0.05
    assert optim.create("madam", [p], lr=0.05).param_groups[0]["eta_out"] == 0.05
    assert optim.create("m_adam", [p], lr=0.2).param_groups[0]["eta_out"] == 0.2
    assert optim.create("m_adam", [p], eta_out=0.3).param_groups[0]["lr"] == 0.3
    assert optim.create("h_adam", [p], lr=0.2).param_groups[0]["eta_out"] == 1e-2  # H has both steps
    with pytest.raises(ValueError, match="lr is another name for it.*lr=0.1 and eta_out=0.2"):
        RuleSGD([p], rule="multiplicative", lr=0.1, eta_out=0.2)
    with pytest.raises(ValueError, match="param group 1: rule 'exp'"):
        RuleSGD(
            [{"params": [p]}, {"params": [nn.Parameter(torch.ones(2))], "lr": 0.1, "eta_out": 0.3}],
            rule="exp",
            eta_out=0.1,
        )
    group_lr = RuleSGD([{"params": [p], "lr": 0.4}], rule="multiplicative", eta_out=0.1).param_groups[0]
    assert group_lr["eta_out"] == 0.4


def test_per_group_rules_and_zero_warning():
    m = _model()
    m[0].bias.data.zero_()
    weights = [p for n, p in m.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in m.named_parameters() if n.endswith("bias")]
    with pytest.warns(FrozenZerosWarning, match="rule 'multiplicative'.*exact zero"):
        RuleSGD(m.parameters(), rule="multiplicative", lr=0.1, eta_out=0.1)
    with pytest.warns(FrozenZerosWarning):
        RuleSGD(m.parameters(), rule="hybrid", gamma=1.0, lr=0.1, eta_out=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = RuleSGD(
            [{"params": weights}, {"params": biases, "rule": "additive"}], rule="multiplicative", lr=0.1, eta_out=0.1
        )
    _train(m, opt, 3)
    assert (m[0].bias != 0).all()  # the additive group moved the zero biases

    m2 = _model()
    m2[0].bias.data.zero_()
    with pytest.warns(FrozenZerosWarning):
        opt2 = RuleSGD(m2.parameters(), rule="multiplicative", lr=0.1, eta_out=0.1)
    _train(m2, opt2, 3)
    assert (m2[0].bias == 0).all()


def test_zeros_move_under_hybrid_optimizer():
    m = _model()
    m[0].bias.data.zero_()
    opt = RuleAdam(m.parameters(), rule="hybrid", gamma=0.9, lr=0.01, eta_out=0.01)
    _train(m, opt, 2)
    assert (m[0].bias != 0).all()


def test_m_with_eta_out_at_most_one_never_flips_signs_on_a_real_net():
    m = _model()
    start = _flat(m).sign()
    opt = RuleAdagrad(m.parameters(), rule="multiplicative", eta_out=1.0, eta_in=10.0)
    _train(m, opt, 100)
    assert not (_flat(m).sign() == -start).any()


def test_closure_returns_loss_and_no_grad_params_are_skipped():
    m = _model()
    frozen = nn.Parameter(torch.ones(3))
    opt = RuleRMSprop([{"params": m.parameters()}, {"params": [frozen]}], rule="hybrid", lr=0.01, eta_out=0.01)
    losses = _train(m, opt, 3)
    assert losses[-1] < losses[0]
    assert torch.equal(frozen, torch.ones(3)) and frozen not in opt.state


def test_adam_bias_correction_inside_vs_outside():
    a, b = _model(), _model()
    kw = {"rule": "multiplicative", "eta_out": 0.01, "eta_in": 1.0}
    _train(a, RuleAdam(a.parameters(), bias_correction="outside", **kw), 1)
    _train(b, RuleAdam(b.parameters(), bias_correction="inside", **kw), 1)
    p0 = _flat(_model())
    # Step 1 (m = 0.1 g): outside, 0.01/0.1 * tanh(m/denom); inside, 0.01 * tanh(m/(0.1 denom)).
    assert (_flat(a) - p0).abs().max() > (_flat(b) - p0).abs().max()


def test_madam_matches_its_algorithm():
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(50))
    q = p.detach().clone()
    opt = Madam([p], eta_out=0.05)
    v = torch.zeros(50)
    bound = 3.0 * q.pow(2).mean().sqrt()
    for t in range(1, 6):
        g = torch.randn(50)
        p.grad = g.clone()
        opt.step()
        v = 0.999 * v + 0.001 * g * g
        gn = (g / ((v / (1 - 0.999**t)).sqrt() + 1e-8)).clamp(-10, 10)
        q = (q * torch.exp(-0.05 * gn * q.sign())).clamp(-bound, bound)
    torch.testing.assert_close(p.detach(), q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"gamma": 1.5}, "gamma=1.5"),
        ({"eta_in": 0.0}, "eta_in=0.0"),
        ({"eta_out": -1.0}, "eta_out=-1.0"),
        ({"rule": "mult"}, "rule='mult'"),
        ({"momentum": 0.0, "nesterov": True}, "Nesterov needs momentum > 0"),
        ({"betas": (0.9, 1.0)}, "unknown hyperparameter 'betas'"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        RuleSGD([nn.Parameter(torch.ones(2))], **{"lr": 0.1, "eta_out": 0.1, **kwargs})


def test_bad_group_option_is_caught():
    with pytest.raises(ValueError, match="gamma=2"):
        RuleSGD([{"params": [nn.Parameter(torch.ones(2))], "gamma": 2}], lr=0.1, eta_out=0.1)


def test_registry_names_defaults_and_checks():
    names = ["m_sgd", "h_sgd", "m_adam", "h_adam", "m_rmsprop", "h_rmsprop", "m_adagrad", "h_adagrad", "madam"]
    assert set(names) <= set(optim.available())
    for name in names:
        spec = optim.get_spec(name)
        assert spec.family == "multiplicative"
        opt = optim.create(name, _model())
        assert isinstance(opt, torch.optim.Optimizer)
        g = opt.param_groups[0]
        assert g["rule"] == ("exp" if name == "madam" else {"m": "multiplicative", "h": "hybrid"}[name[0]])
        for k, v in spec.defaults.items():
            assert g[k] == v
    assert optim.get_spec("m_rmsprop").defaults["eta_out"] == 1e-2  # the authors' value
    assert optim.get_spec("h_rmsprop").defaults["lr"] == 1e-2
    with pytest.raises(ValueError, match="unknown hyperparameter 'gamma' for optimizer 'm_sgd'"):
        optim.create("m_sgd", _model(), gamma=0.5)
    with pytest.raises(ValueError, match="gamma=-0.1"):
        optim.create("h_adam", _model(), gamma=-0.1)


def test_compare_runner_trains_a_rule_optimizer():
    from beyondsgd.bench import Experiment, run_experiment

    r = run_experiment(
        Experiment(algorithm="h_adam", epochs=2, seed=0, model_options={"widths": (32,)}), progress=False
    )
    assert r.status == "ok" and r.history[-1]["test_accuracy"] > 0.5


# --- schedules ---------------------------------------------------------------------------------


def _opt():
    return RuleSGD([nn.Parameter(torch.ones(2))], rule="hybrid", lr=0.1, eta_out=0.2, gamma=0.8)


def test_hold_then_decay_and_inverse():
    opt = _opt()
    s = schedules.HoldThenDecay(opt, "gamma", hold=2, factor=0.5)
    vals = [s.current()[0]]
    for _ in range(4):
        s.step()
        vals.append(s.current()[0])
    assert vals == pytest.approx([0.8, 0.8, 0.8, 0.4, 0.2])
    opt = _opt()
    s = schedules.InverseHoldThenDecay(opt, "gamma", hold=0, factor=0.5)
    s.step()
    s.step()
    assert s.current()[0] == pytest.approx(1 - 0.2 * 0.25)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_step_decay_and_random_choice_compose_with_lr_scheduler():
    opt = _opt()
    lr_s = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    eta_s = schedules.StepDecay(opt, "eta_out", step_size=2, factor=0.1)
    g_s = schedules.RandomChoice(opt, "gamma", seed=3)
    seen = set()
    for _ in range(4):
        lr_s.step()
        eta_s.step()
        g_s.step()
        seen.add(opt.param_groups[0]["gamma"])
    g = opt.param_groups[0]
    assert g["lr"] == pytest.approx(0.1 / 16) and g["eta_out"] == pytest.approx(0.2 * 0.01)
    assert seen <= {0.0, 1.0} and len(seen) == 2
    again = schedules.RandomChoice(_opt(), "gamma", seed=3)
    again.last_epoch = 3
    again.step()
    assert again.current()[0] == g["gamma"]  # deterministic in (seed, epoch): resumes identically


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="invalid key='gama'"):
        schedules.HoldThenDecay(_opt(), "gama")
    with pytest.raises(ValueError, match="factor=1.5"):
        schedules.HoldThenDecay(_opt(), factor=1.5)
    with pytest.raises(ValueError, match="step_size=0"):
        schedules.StepDecay(_opt(), step_size=0)


def test_pickle_round_trip_keeps_working():
    import pickle

    m = _model()
    opt = RuleAdam(m.parameters(), rule="hybrid", lr=0.01, eta_out=0.01, foreach=True)
    _train(m, opt, 2)
    clone = pickle.loads(pickle.dumps(opt))
    assert clone.param_groups[0]["gamma"] == 1.0 and len(clone.state) == len(list(m.parameters()))
    clone.step()  # no gradients on the copies: a no-op, but it must not fail


@pytest.mark.parametrize("foreach", [False, True])
def test_adam_direction_with_beta1_zero_keeps_no_first_moment_and_moves_as_with_one(foreach):
    # beta1 = 0: m = lerp(m, g, 1) = g exactly, so no exp_avg is kept (Madam's Algorithm 1); the
    # iterates equal those of a state that carries one (a checkpoint from before), which stays unused.
    torch.manual_seed(0)
    a = [nn.Parameter(torch.randn(5, 4)), nn.Parameter(torch.randn(4))]
    b = [nn.Parameter(p.detach().clone()) for p in a]
    oa = optim.create("madam", a, foreach=foreach)
    ob = optim.create("madam", b, foreach=foreach)
    grads = [[torch.randn_like(p) for p in a] for _ in range(6)]
    for p, g in zip(a, grads[0]):
        p.grad = g.clone()
    oa.step()
    for p, g in zip(b, grads[0]):
        p.grad = g.clone()
    ob.step()
    assert all("exp_avg" not in oa.state[p] and "exp_avg_sq" in oa.state[p] for p in a)
    stale = [torch.full_like(p, 7.0) for p in b]
    for p, m in zip(b, stale):
        ob.state[p]["exp_avg"] = m.clone()
    for gs in grads[1:]:
        for ps in (a, b):
            for p, g in zip(ps, gs):
                p.grad = g.clone()
        oa.step()
        ob.step()
    for pa, pb, m in zip(a, b, stale):
        assert torch.equal(pa, pb)
        assert torch.equal(ob.state[pb]["exp_avg"], m)
    # beta1 made non-zero later: the first moment starts at zeros then
    oa.param_groups[0]["betas"] = (0.9, 0.999)
    for p, g in zip(a, grads[0]):
        p.grad = g.clone()
    oa.step()
    assert all(torch.allclose(oa.state[p]["exp_avg"], 0.1 * g) for p, g in zip(a, grads[0]))


@pytest.mark.parametrize("name", ["m_adam", "m_sgd", "madam", "h_sgd", "h_adam"])
def test_a_group_added_frozen_moves_once_unfrozen(name):
    """lr = 0 at construction, then a non-zero lr: the group moves as one frozen later would.

    Before, rules M and exp stayed frozen for good (``eta_out``, lr's alias, was stored as 0, and
    ``lr / lr_ref`` had no reference): the first non-zero lr is now the reference.
    """
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    q = torch.nn.Parameter(p.detach().clone())
    a = optim.create(name, [p], lr=0.0)
    extra = {"eta_out": a.param_groups[0]["eta_out"]} if name.startswith("h_") else {}
    b = optim.create(name, [q], lr=0.01, **extra)
    b.param_groups[0]["lr"] = 0.0
    for k in range(6):
        if k == 3:
            a.param_groups[0]["lr"] = b.param_groups[0]["lr"] = 0.01
        if k == 2:
            frozen = p.detach().clone()
        for t, o in ((p, a), (q, b)):
            t.grad = torch.sin(t.detach() * (k + 1))
            o.step()
        if k < 3:
            assert torch.equal(p, q)
    assert torch.equal(p, q) and not torch.equal(p, frozen)


@pytest.mark.parametrize("name", ["h_sgd", "h_adam", "m_adam"])
def test_a_tensor_lr_zero_group_stays_frozen_under_compile(name):
    # Before: under torch.compile the lr = 0 test was skipped for a Tensor lr, and a group added with
    # lr = 0 had no lr_ref to scale eta_out by, so the multiplicative step moved it.
    torch.manual_seed(0)
    p0, p1 = torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(4))
    start = p0.detach().clone()
    opt = optim.create(name, [{"params": [p0], "lr": torch.tensor(0.0)}, {"params": [p1]}], lr=torch.tensor(0.01))
    step = torch.compile(opt.step, backend="aot_eager")
    for k in range(3):
        p0.grad, p1.grad = torch.sin(p0.detach() + k), torch.cos(p1.detach() + k)
        step()
    torch._dynamo.reset()
    assert torch.equal(p0.detach(), start)


def test_hybrid_with_gamma_one_takes_lr_as_eta_out_in_create():
    # gamma = 1 is rule M: lr and eta_out are one knob (before, H's two defaults clashed).
    lin = torch.nn.Linear(4, 3)
    g = optim.create("h_adam", lin, gamma=1.0).param_groups[0]
    assert g["lr"] == g["eta_out"] == optim.create("m_adam", lin).param_groups[0]["eta_out"]
    g = optim.create("h_adam", lin, gamma=1.0, lr=0.05).param_groups[0]
    assert g["lr"] == g["eta_out"] == 0.05
    g = optim.create("h_adam", lin).param_groups[0]
    assert (g["lr"], g["eta_out"]) != (g["eta_out"], g["eta_out"])  # gamma < 1: two knobs


def test_additive_rule_needs_no_eta_out_and_meta_parameters_build():
    from beyondsgd.optim import RuleSGD

    p = torch.nn.Parameter(torch.randn(3))
    RuleSGD([p], rule="additive", lr=0.1)
    with pytest.raises(ValueError, match=r"RuleAdam: rule 'hybrid' needs lr and eta_out \(no class default"):
        RuleAdam([p])
    optim.create("m_adam", [torch.nn.Parameter(torch.ones(3, device="meta"))])


def test_the_python_examples_of_docs_multiplicative_run():
    # Both raised a ValueError once (the lr/eta_out alias applied to hybrid rules given both values).
    import pathlib
    import re

    import beyondsgd.optim as bo

    text = (pathlib.Path(__file__).parents[2] / "docs" / "multiplicative.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        namespace = {"torch": torch, "nn": nn, "model": model, "schedules": schedules, **vars(bo)}
        exec(block, namespace)
        opt = namespace["opt"]
        model(torch.randn(5, 4)).sum().backward()
        opt.step()


def test_an_m_group_added_frozen_unfreezes_under_compile():
    # M's eta_out is lr's alias (0 for a group added frozen); a compiled step keeps no new reference,
    # so the step takes lr itself: before, the group never moved under torch.compile.
    torch.manual_seed(0)
    p0, p1 = torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(4))
    opt = optim.create("m_sgd", [p0], lr=torch.tensor(0.1))
    opt.add_param_group({"params": [p1], "lr": torch.tensor(0.0)})
    step = torch.compile(opt.step, backend="aot_eager")
    start = p1.detach().clone()
    for k in range(2):
        if k == 1:
            opt.param_groups[1]["lr"].fill_(0.1)
        p0.grad, p1.grad = torch.sin(p0.detach()), torch.cos(p1.detach())
        step()
        assert torch.equal(p1.detach(), start) == (k == 0)
    torch._dynamo.reset()
