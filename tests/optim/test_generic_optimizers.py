"""torch.optim's generic optimizer properties, checked for every registry optimizer of the package.

The properties are those of PyTorch's ``TestOptimRenewed`` (``test/test_optim.py``): right
direction (and with ``maximize``), param groups with their own lr and weight decay, Tensor lr,
LR schedulers, complex parameters, errors on bad input, state_dict round trips (deterministic,
``weights_only=True``, older flags missing, non-tensor step), named parameters, deepcopy and
pickle, hooks, no-op steps, where state exists, printing, foreach == for-loop, and
``torch.compile(step)`` without recompiles.  The table of optimizers is ``optimizer_infos.py``.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import warnings

import pytest
import torch
from optimizer_infos import INFOS, OptimInfo
from torch import nn

from beyondsgd.optim.multiplicative import FrozenZerosWarning

warnings.simplefilter("ignore", FrozenZerosWarning)

_X = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
_Y = torch.randn(16, 3, generator=torch.Generator().manual_seed(2))

CASES = [(info, inp) for info in INFOS for inp in info.inputs]
CASE_IDS = [f"{info.name}-{inp.desc}" for info, inp in CASES]
IDS = [info.name for info in INFOS]
ELEMENTWISE = [info for info in INFOS if info.elementwise]


def _params(seed: int = 0, complex_: bool = False) -> list[nn.Parameter]:
    """A weight and a bias, no entry zero (rules M and exp cannot move exact zeros)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 4, generator=g) * 0.5 + 0.1
    b = torch.rand(3, generator=g) + 0.2
    if complex_:
        w = torch.complex(w, torch.randn(3, 4, generator=g) * 0.5)
        b = torch.complex(b, torch.rand(3, generator=g) + 0.2)
    return [nn.Parameter(w), nn.Parameter(b)]


def _loss(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if w.is_complex():
        w, b = torch.view_as_real(w), torch.view_as_real(b)
        return ((_X @ w[..., 0].T + b[:, 0] - _Y) ** 2).mean() + ((_X @ w[..., 1].T + b[:, 1]) ** 2).mean()
    return ((_X @ w.T + b - _Y) ** 2).mean()


def _f(params) -> float:
    with torch.no_grad():
        return float(_loss(*params))


def _closure(opt: torch.optim.Optimizer, params, sign: float = 1.0):
    def closure():
        opt.zero_grad()
        loss = sign * _loss(*params)
        loss.backward()
        return loss

    return closure


def _run(opt, params, steps: int, sign: float = 1.0, sched=None) -> list[float]:
    losses = []
    for _ in range(steps):
        opt.step(_closure(opt, params, sign))
        losses.append(_f(params))
        if sched is not None:
            sched.step()
    return losses


def _flat(params) -> torch.Tensor:
    return torch.cat(
        [torch.view_as_real(p.detach()).flatten() if p.is_complex() else p.detach().flatten() for p in params]
    )


def _assert_states_close(a: torch.optim.Optimizer, b: torch.optim.Optimizer, exact: bool = False) -> None:
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        x, y = sa[k], sb[k]
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], torch.Tensor):
                if exact:
                    assert torch.equal(x[key], y[key]), (k, key)
                else:
                    torch.testing.assert_close(x[key], y[key], rtol=1e-5, atol=1e-6)
            else:
                assert x[key] == y[key], (k, key)


# --------------------------------------------------------------------------- direction and groups


@pytest.mark.parametrize("info,inp", CASES, ids=CASE_IDS)
def test_goes_right_direction(info: OptimInfo, inp):
    params = _params()
    start = _f(params)
    maximize = inp.kwargs.get("maximize", False)
    opt = info.make(params, **inp.kwargs)
    # With maximize the closure returns -f: maximizing it must decrease f.
    losses = _run(opt, params, 30, sign=-1.0 if maximize else 1.0)
    assert losses[-1] < start  # torch.optim's criterion


@pytest.mark.parametrize("info,inp", CASES, ids=CASE_IDS)
def test_foreach_matches_forloop(info: OptimInfo, inp):
    """Parameters and state of the multi-tensor path equal the for-loop's (torch.optim's check)."""
    a, b = _params(), _params()
    oa = info.make(a, foreach=False, **inp.kwargs)
    ob = info.make(b, foreach=True, **inp.kwargs)
    _run(oa, a, 8)
    _run(ob, b, 8)
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-5, atol=1e-6)
    _assert_states_close(oa, ob)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_param_groups_lr_and_weight_decay(info: OptimInfo):
    w, b = _params()
    extra = {"weight_decay": 0.01} if info.weight_decay else {}
    opt = info.make([{"params": [w], "lr": info.lr}, {"params": [b], "lr": info.lr / 2, **extra}])
    assert [g["lr"] for g in opt.param_groups] == [info.lr, info.lr / 2]
    start = _f([w, b])
    losses = _run(opt, [w, b], 30)
    assert losses[-1] < start  # torch.optim's criterion


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_lr_zero_freezes_a_group(info: OptimInfo):
    w, b = _params()
    if not info.lr_zero_allowed:
        with pytest.raises(ValueError, match="lr"):
            info.make([{"params": [w]}, {"params": [b], "lr": 0.0}])
        return
    opt = info.make([{"params": [w]}, {"params": [b], "lr": 0.0}])
    b0, w0 = b.detach().clone(), w.detach().clone()
    _run(opt, [w, b], 5)
    assert torch.equal(b, b0) and not torch.equal(w, w0)


# --------------------------------------------------------------------------- lr: Tensor and schedulers


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_tensor_lr_equals_float_lr(info: OptimInfo):
    a, b = _params(), _params()
    oa = info.make(a, lr=info.lr)
    ob = info.make(b, lr=torch.tensor(info.lr))
    _run(oa, a, 6)
    _run(ob, b, 6)
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("tensor_lr", [False, True])
def test_lr_scheduler_goes_right_direction_and_changes_the_step(info: OptimInfo, tensor_lr: bool):
    a, b = _params(), _params()
    lr = torch.tensor(info.lr) if tensor_lr else info.lr
    oa, ob = info.make(a, lr=lr), info.make(b, lr=copy.deepcopy(lr))
    sched = torch.optim.lr_scheduler.StepLR(ob, step_size=1, gamma=0.5)
    start = _f(a)
    la = _run(oa, a, 6)
    lb = _run(ob, b, 6, sched=sched)
    assert lb[-1] < start
    assert float(ob.param_groups[0]["lr"]) == pytest.approx(info.lr * 0.5**6)
    assert la != lb  # the scheduler changed the steps


# --------------------------------------------------------------------------- complex parameters


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_complex_params_equal_view_as_real(info: OptimInfo):
    cplx = _params(complex_=True)
    if not info.elementwise:
        with pytest.raises(ValueError, match="complex"):
            info.make(cplx)
        return
    real = [nn.Parameter(torch.view_as_real(p.detach()).clone()) for p in cplx]
    oc, orl = info.make(cplx), info.make(real)
    for _ in range(5):
        for opt, ps in ((oc, cplx), (orl, real)):
            opt.zero_grad()
            w, b = ps if ps[0].is_complex() else [torch.view_as_complex(p) for p in ps]
            _loss(w, b).backward()
            opt.step()
    torch.testing.assert_close(_flat(cplx), _flat(real), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_errors_on_bad_input(info: OptimInfo):
    w, b = _params()
    with pytest.raises(ValueError, match="lr=-0.1"):
        info.make([w, b], lr=-0.1)
    with pytest.raises(ValueError, match="lr=-0.1"):
        info.make([{"params": [w]}, {"params": [b], "lr": -0.1}])
    with pytest.raises(ValueError, match="unknown hyperparameter|not_an_option"):
        info.make([w, b], not_an_option=1)
    with pytest.raises(TypeError, match="single"):
        info.make(w)
    with pytest.raises(ValueError, match="one element"):
        info.make([w, b], lr=torch.tensor([0.1, 0.2]))


# --------------------------------------------------------------------------- state_dict


def _stepped(info: OptimInfo, kwargs=None, steps: int = 3):
    params = _params()
    opt = info.make(params, **(kwargs or {}))
    _run(opt, params, steps)
    return params, opt


def _continue_equal(info: OptimInfo, params, opt, state_dict, kwargs=None) -> None:
    """A fresh optimizer on a copy of ``params`` loads ``state_dict`` and steps exactly as ``opt``."""
    twin = [nn.Parameter(p.detach().clone()) for p in params]
    fresh = info.make(twin, **(kwargs or {}))
    fresh.load_state_dict(state_dict)
    _run(opt, params, 3)
    _run(fresh, twin, 3)
    assert torch.equal(_flat(params), _flat(twin))
    _assert_states_close(opt, fresh, exact=True)


@pytest.mark.parametrize("info,inp", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_is_deterministic(info: OptimInfo, inp):
    params, opt = _stepped(info, inp.kwargs)
    _continue_equal(info, params, opt, copy.deepcopy(opt.state_dict()), inp.kwargs)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_state_dict_loads_with_weights_only(info: OptimInfo):
    params, opt = _stepped(info)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    _continue_equal(info, params, opt, torch.load(buf, weights_only=True))


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_older_state_dict_without_later_flags_loads(info: OptimInfo):
    params, opt = _stepped(info)
    sd = copy.deepcopy(opt.state_dict())
    for group in sd["param_groups"]:
        for flag in info.late_flags:
            group.pop(flag, None)
    _continue_equal(info, params, opt, sd)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_state_dict_with_a_non_tensor_step_loads(info: OptimInfo):
    params, opt = _stepped(info)
    sd = copy.deepcopy(opt.state_dict())
    converted = 0
    for st in sd["state"].values():
        if isinstance(st, dict) and isinstance(st.get("step"), torch.Tensor):
            st["step"] = st["step"].item()
            converted += 1
    _continue_equal(info, params, opt, sd)
    for st in opt.state.values():  # every step counter is torch.optim's 0-dim tensor again
        if isinstance(st, dict) and "step" in st and converted:
            assert isinstance(st["step"], torch.Tensor)


# --------------------------------------------------------------------------- named parameters


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_named_parameters(info: OptimInfo):
    plain, named = _params(), _params()
    op = info.make(plain)
    on = info.make(list(zip(("weight", "bias"), named)))
    assert len(op.param_groups) == len(on.param_groups)
    names = [n for g in on.param_groups for n in g["param_names"]]
    assert names == ["weight", "bias"]
    _run(op, plain, 4)
    _run(on, named, 4)
    assert torch.equal(_flat(plain), _flat(named))
    sd = on.state_dict()
    assert [n for g in sd["param_groups"] for n in g["param_names"]] == ["weight", "bias"]
    model = nn.Module()
    model.weight, model.bias = [nn.Parameter(p.detach().clone()) for p in named]
    fresh = info.make(model.named_parameters())
    fresh.load_state_dict(copy.deepcopy(sd))
    _run(on, named, 3)
    _run(fresh, [model.weight, model.bias], 3)
    assert torch.equal(_flat(named), _flat([model.weight, model.bias]))


# --------------------------------------------------------------------------- copies


@pytest.mark.parametrize("info", INFOS, ids=IDS)
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_of_a_stepped_optimizer_continues_identically(info: OptimInfo, how: str):
    params, opt = _stepped(info)
    clone = copy.deepcopy(opt) if how == "deepcopy" else pickle.loads(pickle.dumps(opt))
    twin = [p for g in clone.param_groups for p in g["params"]]
    assert all(t is not p for t, p in zip(twin, params))
    public = {k: v for k, v in vars(opt).items() if not k.startswith("_") and k not in ("state", "param_groups")}
    for key, val in public.items():
        assert key in vars(clone), key
        if key == "defaults":  # torch adds "differentiable" on unpickling
            assert all(clone.defaults[k] == v for k, v in val.items() if not isinstance(v, torch.Tensor))
    _run(opt, params, 3)
    _run(clone, twin, 3)
    assert torch.equal(_flat(params), _flat(twin))


# --------------------------------------------------------------------------- hooks


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_step_and_state_dict_hooks(info: OptimInfo):
    params = _params()
    opt = info.make(params)
    calls: list[str] = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    h2 = opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.step(_closure(opt, params))
    assert calls == ["pre", "post"]
    h1.remove()
    h2.remove()
    opt.step(_closure(opt, params))
    assert calls == ["pre", "post"]

    def add_tag(o, sd):
        sd["tag"] = 7
        return sd

    opt.register_state_dict_pre_hook(lambda o: calls.append("sd_pre"))
    opt.register_state_dict_post_hook(add_tag)
    sd = opt.state_dict()
    assert calls[-1] == "sd_pre" and sd["tag"] == 7

    fresh = info.make([nn.Parameter(p.detach().clone()) for p in params])

    def drop_tag(o, state_dict):
        state_dict = dict(state_dict)
        state_dict.pop("tag")
        return state_dict

    fresh.register_load_state_dict_pre_hook(drop_tag)
    fresh.register_load_state_dict_post_hook(lambda o: calls.append("load_post"))
    fresh.load_state_dict(copy.deepcopy(sd))
    assert calls[-1] == "load_post"


# --------------------------------------------------------------------------- no-op steps and state


@pytest.mark.parametrize("info,inp", CASES, ids=CASE_IDS)
def test_step_is_noop_without_grads(info: OptimInfo, inp):
    params = _params()
    opt = info.make(params, **inp.kwargs)
    before = _flat(params)
    opt.step(lambda: _f(params))
    assert torch.equal(before, _flat(params))
    assert not any(isinstance(k, torch.Tensor) for k in opt.state)  # no per-parameter state created
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("info,inp", CASES, ids=CASE_IDS)
def test_step_is_noop_for_zero_grads(info: OptimInfo, inp):
    kwargs = {k: v for k, v in inp.kwargs.items() if k != "weight_decay"}  # decay moves weights by design
    params = _params()
    opt = info.make(params, **kwargs)
    before = _flat(params)

    def closure():
        for p in params:
            p.grad = torch.zeros_like(p)
        with torch.no_grad():
            return _loss(*params)

    for _ in range(3):
        opt.step(closure)
    assert torch.equal(before, _flat(params))


@pytest.mark.parametrize("info,inp", CASES, ids=CASE_IDS)
def test_state_exists_only_where_torch_keeps_it(info: OptimInfo, inp):
    w, b = _params()
    frozen = nn.Parameter(torch.ones(3))
    opt = info.make([w, b, frozen] if info.elementwise else [w, b], **inp.kwargs)
    _run(opt, [w, b], 2)
    per_param = {k: v for k, v in opt.state.items() if isinstance(k, torch.Tensor)}
    assert frozen not in per_param  # no gradient, no state
    assert all(v for v in per_param.values())  # no empty entries
    if info.torch_state_keys is not None:
        want = info.torch_state_keys(inp.kwargs)
        for p in (w, b):
            keys = set(opt.state[p]) if p in per_param else set()
            assert want <= keys and keys - want <= info.extra_state_keys, (keys, want)


@pytest.mark.parametrize("info", INFOS, ids=IDS)
def test_optimizer_can_be_printed(info: OptimInfo):
    opt = info.make(_params())
    text = repr(opt)
    assert type(opt).__name__ in text and "lr" in text


# --------------------------------------------------------------------------- torch.compile


def _compiled_frames(make, warm_up: bool) -> tuple[int, list[nn.Parameter], list[nn.Parameter]]:
    """Frames dynamo compiles for ``torch.compile(opt.step)`` over 20 steps (backend ``aot_eager``),
    and the parameters of the compiled and of an eager twin run."""
    from torch._dynamo.testing import CompileCounterWithBackend

    a, b = _params(), _params()
    oa, ob = make(a), make(b)

    def grads(ps):
        for p in ps:
            p.grad = p.detach() - 0.3

    if warm_up:
        for opt, ps in ((oa, a), (ob, b)):
            grads(ps)
            opt.step()
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(oa.step, backend=counter)
    for _ in range(20):
        grads(a)
        compiled()
        grads(b)
        ob.step()
    torch._dynamo.reset()
    return counter.frame_count, a, b


@pytest.mark.parametrize("warm_up", [True, False], ids=["after-one-eager-step", "from-empty-state"])
@pytest.mark.parametrize("info", ELEMENTWISE, ids=[i.name for i in ELEMENTWISE])
def test_compiled_step_compiles_once_and_matches_eager(info: OptimInfo, warm_up: bool):
    """``torch.compile(opt.step)`` traces one frame and does not recompile as the step count grows.

    After one eager step (it creates the state): one frame for every optimizer. From an empty
    state: one frame too, because ``_init_group`` (the hook dynamo runs eagerly, not traced)
    creates the state before the trace, as for torch's Adam; SGD-based rules with momentum make
    their buffer from the first gradient inside the step, as torch's SGD does, so there the bar is
    torch's SGD(momentum) itself, measured here (2 frames). Backend ``aot_eager``: dynamo's guards
    and graph capture are what recompile; inductor's code generation would cost ~1 minute per
    optimizer on this CPU (checked by hand for h_adam: one frame)."""
    kwargs = {"momentum_schedule": "convex"} if info.name in ("hb", "nag") else {}
    if info.name.endswith("sgd"):
        kwargs = {"momentum": 0.9}
    frames, a, b = _compiled_frames(lambda ps: info.make(ps, **kwargs), warm_up)
    bar = 1
    if info.name.endswith("sgd") and not warm_up:
        bar, _, _ = _compiled_frames(lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9), warm_up)
    assert frames <= bar
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(
    not os.environ.get("BEYONDSGD_SLOW_TESTS"),
    reason="inductor code generation takes about a minute on a CPU; set BEYONDSGD_SLOW_TESTS=1 to run",
)
def test_h_adam_compiles_once_with_inductor():
    """The issue's case: h_adam recompiled on every step under inductor (Python-float bias correction)."""
    from torch._dynamo.testing import CompileCounterWithBackend

    info = next(i for i in INFOS if i.name == "h_adam")
    a, b = _params(), _params()
    oa, ob = info.make(a), info.make(b)
    for opt, ps in ((oa, a), (ob, b)):
        for p in ps:
            p.grad = p.detach() - 0.3
        opt.step()
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("inductor")
    compiled = torch.compile(oa.step, backend=counter)
    for _ in range(20):
        for p in a:
            p.grad = p.detach() - 0.3
        compiled()
        for p in b:
            p.grad = p.detach() - 0.3
        ob.step()
    assert counter.frame_count == 1
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()


# --------------------------------------------------------------------------- fused=True

_SLOW = bool(os.environ.get("BEYONDSGD_SLOW_TESTS"))
#: Run by default (each costs one inductor compilation, ~5-15 s on a CPU): a hybrid rule on
#: Adam's direction, Madam (the exp rule with its short-range exp2), h_adagrad (its short-range
#: tanh), and hb/nag's kernel with the convex schedule and weight decay.
_FUSED_DEFAULT = {"h_adam-default", "madam-default", "nag-convex-wd", "h_adagrad-default"}
FUSED_CASES = [
    pytest.param(
        info,
        inp,
        id=f"{info.name}-{inp.desc}",
        marks=[]
        if f"{info.name}-{inp.desc}" in _FUSED_DEFAULT
        else [
            pytest.mark.skipif(
                not _SLOW, reason="one inductor compilation per case (seconds each); BEYONDSGD_SLOW_TESTS=1 runs it"
            )
        ],
    )
    for info, inp in CASES
    if info.elementwise
]


@pytest.mark.parametrize("info,inp", FUSED_CASES)
def test_fused_matches_forloop_without_recompiling(info: OptimInfo, inp):
    """``fused=True`` (one compiled loop per tensor) equals the for-loop reference, parameters and
    state, and compiles one graph for all steps (step counts and bias corrections are data)."""
    from torch._dynamo.utils import counters

    a, b = _params(), _params()
    oa = info.make(a, foreach=False, **inp.kwargs)
    ob = info.make(b, fused=True, **inp.kwargs)
    _run(oa, a, 8)
    counters.clear()
    _run(ob, b, 8)
    assert counters["stats"]["unique_graphs"] <= 1  # 0 if another test compiled this kernel already
    assert not counters["recompiles"]
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-5, atol=1e-6)
    _assert_states_close(oa, ob)


@pytest.mark.parametrize("info", ELEMENTWISE, ids=[i.name for i in ELEMENTWISE])
def test_fused_refuses_unsupported_configurations(info: OptimInfo):
    """Clear errors, before any compilation: fused with foreach, and a device inductor does not serve."""
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        info.make(_params(), fused=True, foreach=True)
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        info.make([{"params": _params()[:1]}, {"params": _params(1)[:1], "fused": True, "foreach": True}])
    opt = info.make(_params(), fused=True)
    w = nn.Parameter(torch.ones(3, 4, device="meta"))  # (constructing on meta would fail earlier, elsewhere)
    w.grad = torch.ones(3, 4, device="meta")
    opt.param_groups[0]["params"] = [w]
    with pytest.raises(RuntimeError, match="fused=True supports devices cpu, cuda"):
        opt.step()


def test_fused_scalars_tensor_is_reused_only_for_the_same_row():
    """The fused path's per-group scalar tensor: a step whose tensors all share a row seen recently
    reuses that tensor (SGD at a constant lr), any other row gets its own values, and mixed rows are
    never cached; the cache stays bounded."""
    from beyondsgd.optim import fused

    row, other = (0.0, 0.01, 1.0, 0.9), (0.0, 0.02, 1.0, 0.9)
    first = fused._scalars_tensor([row] * 3, torch.float32, torch.device("cpu"), one_row=True)
    again = fused._scalars_tensor([row] * 3, torch.float32, torch.device("cpu"), one_row=True)
    assert again is first and first.shape == (3, 4)
    changed = fused._scalars_tensor([other] * 3, torch.float32, torch.device("cpu"), one_row=True)
    assert changed is not first and changed[:, 1].tolist() == pytest.approx([0.02] * 3)
    assert first[:, 1].tolist() == pytest.approx([0.01] * 3)  # the cached one was not overwritten
    mixed = fused._scalars_tensor([row, other], torch.float32, torch.device("cpu"), one_row=False)
    assert mixed[:, 1].tolist() == pytest.approx([0.01, 0.02])
    assert fused._scalars_tensor([row] * 3, torch.float64, torch.device("cpu"), one_row=True).dtype == torch.float64
    for k in range(3 * fused._ROW_TENSORS_MAX):
        r = (float(k),)
        fused._scalars_tensor([r], torch.float32, torch.device("cpu"), one_row=True)
    assert len(fused._ROW_TENSORS) <= fused._ROW_TENSORS_MAX
