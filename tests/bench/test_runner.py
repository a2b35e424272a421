import math

import pytest
import torch

from beyondsgd import optim
from beyondsgd.bench import Experiment, run_experiment
from beyondsgd.validation import NONNEGATIVE, POSITIVE_INT


class PoisonAfter(torch.optim.SGD):
    """SGD that writes NaN into the weights at a given step (to test divergence handling)."""

    def __init__(self, params, lr=0.01, at=5):
        super().__init__(params, lr=lr)
        self.at, self.count = at, 0

    def step(self, closure=None):
        loss = super().step(closure)
        self.count += 1
        if self.count == self.at:
            with torch.no_grad():
                for g in self.param_groups:
                    for p in g["params"]:
                        p.fill_(math.nan)
        return loss


@pytest.fixture(scope="module", autouse=True)
def _poison_registered():
    optim.register(optim.OptimizerSpec("test_poison", PoisonAfter, {"lr": NONNEGATIVE, "at": POSITIVE_INT}))
    yield
    optim.registry._REGISTRY.pop("test_poison")


def small(**kw):
    base = dict(
        dataset="digits",
        epochs=2,
        batch_size=128,
        seed=0,
        model_options={"widths": (16,)},
        dataset_options={"n_train": 300},
        device="cpu",
    )
    base.update(kw)
    return Experiment(**base)


def test_history_columns_and_training_reduces_loss():
    res = run_experiment(small(algorithm="adam", hyperparams={"lr": 3e-2}, epochs=3), progress=False)
    assert res.status == "ok"
    assert [r["epoch"] for r in res.history] == [0, 1, 2, 3]
    assert res.history[0]["time_s"] == 0.0
    times = [r["time_s"] for r in res.history]
    assert times == sorted(times) and times[-1] > 0
    assert res.history[-1]["train_loss"] < 0.5 * res.history[0]["train_loss"]
    assert res.hyperparams["lr"] == 3e-2
    assert res.history[1]["step"] == math.ceil(300 / 128)


def test_same_seed_same_result_and_seed_matters():
    a = run_experiment(small(algorithm="sgd", seed=3), progress=False)
    b = run_experiment(small(algorithm="sgd", seed=3), progress=False)
    c = run_experiment(small(algorithm="sgd", seed=4), progress=False)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert a.history[-1]["train_loss"] != c.history[-1]["train_loss"]


def test_runner_does_not_disturb_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_experiment(small(algorithm="sgd"), progress=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_divergence_is_recorded_not_raised():
    # 300 samples, batch 128 -> 3 steps/epoch; poisoned after step 4, so the loss of step 5 is NaN.
    res = run_experiment(small(algorithm="test_poison", hyperparams={"at": 4}, epochs=4), progress=False)
    assert res.status == "diverged"
    assert res.diverged_step == 5
    assert all(r["status"] == "diverged" for r in res.history)
    assert len(res.history) == 2  # the initial point and epoch 1; nothing after the blow-up
    assert math.isnan(res.final("test_accuracy"))


def test_iteration_budget_and_full_batch():
    res = run_experiment(small(algorithm="sgd", iterations=7, eval_every=3, batch_size="full"), progress=False)
    assert [r["step"] for r in res.history] == [0, 3, 6, 7]
    assert [r["epoch"] for r in res.history] == [0, 3, 6, 7]  # full batch: one step per epoch


@pytest.mark.parametrize(
    "field,value,needle",
    [
        ("epochs", -1, "epochs=-1"),
        ("batch_size", 0, "batch_size=0"),
        ("eval_every", 0, "eval_every=0"),
        ("algorithm", "nope", "unknown algorithm 'nope'"),
        ("model", "nope", "unknown model 'nope'"),
    ],
)
def test_bad_experiment_fields(field, value, needle):
    with pytest.raises(ValueError, match=needle):
        run_experiment(small(**{field: value}), progress=False)


def test_bad_hyperparameter_raises_before_training():
    with pytest.raises(ValueError, match="invalid lr=-1"):
        run_experiment(small(algorithm="sgd", hyperparams={"lr": -1}), progress=False)


@pytest.mark.parametrize(
    "corrupt,needle",
    [
        (lambda d: d.X_train.__setitem__((0, 0), math.nan), "X_train of dataset 'digits' contains NaN"),
        (lambda d: d.X_test.__setitem__((1, 0), math.inf), "X_test of dataset 'digits' contains NaN or infinite"),
        (lambda d: d.y_train.__setitem__(0, 10), r"labels in \[0, 10\], expected class ids in \[0, 9\]"),
        (lambda d: d.y_test.__setitem__(0, -1), r"y_test of dataset 'digits' has labels in \[-1,"),
    ],
)
def test_bad_data_is_refused_before_training(corrupt, needle):
    from beyondsgd.data import load_dataset

    data = load_dataset("digits", n_train=50, n_test=20)
    data = type(data)(
        **{
            **data.__dict__,
            "X_train": data.X_train.clone(),
            "X_test": data.X_test.clone(),
            "y_train": data.y_train.clone(),
            "y_test": data.y_test.clone(),
        }
    )
    corrupt(data)
    with pytest.raises(ValueError, match=needle):
        run_experiment(small(algorithm="sgd"), data=data, progress=False)


def test_empty_dataset_is_refused():
    import dataclasses

    from beyondsgd.data import load_dataset

    data = load_dataset("digits", n_train=50)
    empty = dataclasses.replace(data, X_train=data.X_train[:0], y_train=data.y_train[:0])
    with pytest.raises(ValueError, match="the train set of dataset 'digits' is empty"):
        run_experiment(small(algorithm="sgd"), data=empty, progress=False)


@pytest.mark.parametrize(
    "name,given,expected",
    [
        ("madam", {"lr": 0.1}, {"lr": 0.1, "eta_out": 0.1}),
        ("m_sgd", {"lr": 0.1}, {"lr": 0.1, "eta_out": 0.1}),
        ("h_sgd", {"gamma": 1.0, "eta_out": 0.1}, {"lr": 0.1, "eta_out": 0.1}),
        ("h_sgd", {"lr": 0.02}, {"lr": 0.02, "eta_out": 0.3}),
    ],
)
def test_recorded_hyperparameters_are_the_ones_used(name, given, expected):
    # Before: the record merged the registered defaults under the given values, so `madam lr=0.1`
    # was recorded with the unused default eta_out=0.01 next to it.
    exp = Experiment(algorithm=name, hyperparams=given, epochs=1, dataset_options={"n_train": 100}, device="cpu")
    res = run_experiment(exp, progress=False)
    assert {k: res.hyperparams[k] for k in expected} == pytest.approx(expected)
    # The optimizer itself agrees (built the same way as the run).
    opt_group = optim.create(name, [torch.nn.Parameter(torch.ones(2))], **given).param_groups[0]
    assert {k: opt_group[k] for k in expected} == pytest.approx(expected)
