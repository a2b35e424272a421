"""fit(): tensors, Dataset, DataLoader with indices, validation split, early stopping, logging."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from beyondsgd.am import IndexedDataset, fit


def accuracy(net, X, y):
    with torch.no_grad():
        return (net.eval()(X).argmax(1) == y).float().mean().item()


def test_fit_from_tensors_trains_the_users_model_and_logs_terms(small_problem):
    net, X, y = small_problem()
    before = accuracy(net, X, y)
    seen = []
    res = fit(net, (X, y), epochs=15, progress=False, log=seen.append)
    assert len(res.history) == 15 and seen == res.history
    last = res.history[-1]
    assert last["am_objective"] == pytest.approx(last["am_loss"] + last["am_penalty"] + last["am_reg"])
    assert accuracy(net, X, y) > before + 0.5  # measured 0.14 -> 0.86 (seed 0)
    assert res.best_epoch == 15 and not res.stopped_early


@pytest.mark.parametrize("algorithm", ["am", "dladmm"])
def test_fit_runs_every_algorithm(small_problem, algorithm):
    net, X, y = small_problem()
    res = fit(net, TensorDataset(X, y), algorithm=algorithm, epochs=15, progress=False)
    assert type(res.trainer).__name__ == {"am": "PlainAM", "dladmm": "DLADMM"}[algorithm]
    assert accuracy(net, X, y) > 0.3


def test_fit_from_an_indexed_dataloader_uses_its_batches(small_problem):
    net, X, y = small_problem()
    loader = DataLoader(
        IndexedDataset(TensorDataset(X, y)), batch_size=100, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    res = fit(net, loader, epochs=8, progress=False)
    assert res.trainer.samples_seen == 8 * X.shape[0]  # one pass over the loader per epoch
    assert accuracy(net, X, y) > 0.3
    res = fit(net, loader, epochs=1, val=DataLoader(TensorDataset(X[:50], y[:50]), batch_size=7), progress=False)
    assert 0.0 <= res.history[-1]["val_accuracy"] <= 1.0  # a plain loader is fine for validation
    with pytest.raises(ValueError, match=r"IndexedDataset\(dataset\)"):
        fit(net, DataLoader(TensorDataset(X, y), batch_size=10), progress=False)


def test_validation_split_early_stopping_and_best_weights(small_problem):
    net, X, y = small_problem()
    res = fit(net, (X, y), epochs=30, val_fraction=0.25, patience=2, progress=False, seed=1)
    losses = [h["val_loss"] for h in res.history]
    assert all("val_accuracy" in h for h in res.history)
    best = min(range(len(losses)), key=losses.__getitem__)
    assert res.best_epoch == best + 1
    # Measured: the validation loss stalls in TIAM's slow first iterations and patience 2 stops it
    # (epoch 5, best epoch 3): a real early stop, exactly `patience` epochs after the best one.
    assert res.stopped_early and len(losses) == res.best_epoch + 2 < 30
    # The model holds the best epoch's weights: its validation loss is the best one logged.
    gen = torch.Generator().manual_seed(1)
    perm = torch.randperm(X.shape[0], generator=gen)
    Xv, yv = X[perm[:100]], y[perm[:100]]
    with torch.no_grad():
        assert F.cross_entropy(net.eval()(Xv), yv).item() == pytest.approx(losses[best], rel=1e-5)


def test_fit_refuses_bad_options_early(small_problem):
    net, X, y = small_problem()
    with pytest.raises(ValueError, match="patience.*needs validation"):
        fit(net, (X, y), patience=3, progress=False)
    with pytest.raises(ValueError, match="invalid algorithm='sgd'"):
        fit(net, (X, y), algorithm="sgd", progress=False)
    with pytest.raises(ValueError, match="invalid epochs=0"):
        fit(net, (X, y), epochs=0, progress=False)
    with pytest.raises(ValueError, match="X has 400 samples but y has 10"):
        fit(net, (X, y[:10]), progress=False)
    with pytest.raises(ValueError, match="invalid rho=-1"):
        fit(net, (X, y), hyperparams={"rho": -1}, progress=False)
    with pytest.raises(ValueError, match="module '1'.*Conv2d"):
        fit(nn.Sequential(nn.Flatten(), nn.Conv2d(1, 1, 1)), (X, y), progress=False)


def test_fit_refuses_bad_data_and_arguments_early(small_problem):
    net, X, y = small_problem()
    with pytest.raises(ValueError, match=r"model must be a torch.nn.Module; got NoneType"):
        fit(None, (X, y), progress=False)
    with pytest.raises(ValueError, match=r"has no parameters"):
        fit(nn.Sequential(nn.ReLU()), (X, y), progress=False)
    with pytest.raises(ValueError, match=r"invalid algorithm=Linear.*Trainer subclass"):
        fit(net, (X, y), algorithm=nn.Linear, progress=False)
    with pytest.raises(ValueError, match=r"TIAM has no option 'lr'; its options: box, .*rho"):
        fit(net, (X, y), hyperparams={"lr": 0.1}, progress=False)
    with pytest.raises(ValueError, match=r"invalid val_fraction='0.2'"):
        fit(net, (X, y), val_fraction="0.2", progress=False)
    with pytest.raises(ValueError, match=r"leaves no training samples"):
        fit(net, (X, y), val_fraction=0.9999, progress=False)
    with pytest.raises(ValueError, match=r"data: no samples"):
        fit(net, (X[:0], y[:0]), progress=False)
    with pytest.raises(ValueError, match=r"the dataset is empty"):
        fit(net, TensorDataset(X[:0], y[:0]), progress=False)
    with pytest.raises(ValueError, match=r"val: no samples"):
        fit(net, (X, y), val=(X[:0], y[:0]), progress=False)
    indexed = IndexedDataset(TensorDataset(X, y))
    with pytest.raises(ValueError, match=r"yields no batches \(drop_last=True with batch_size 500"):
        fit(net, DataLoader(indexed, batch_size=500, drop_last=True), progress=False)
    with pytest.raises(ValueError, match=r"batch_size=None"):
        fit(net, DataLoader(indexed, batch_size=None), progress=False)


def test_validation_uses_the_models_dtype_and_the_trainers_target_shape(small_problem):
    # Before: a float64 model with float32 data trained, then crashed in the validation pass; and
    # (N,) MSE targets for one output were broadcast against (N, 1) outputs in the validation loss.
    net, X, y = small_problem()
    res = fit(net.double(), (X, y), epochs=2, val_fraction=0.25, progress=False)
    assert 0.0 <= res.history[-1]["val_accuracy"] <= 1.0
    torch.manual_seed(0)
    Xr, yr = torch.randn(80, 64), torch.randn(80)
    reg = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 1))
    Xv, yv = torch.randn(20, 64), torch.randn(20)
    res = fit(reg, (Xr, yr), loss_fn=F.mse_loss, epochs=2, val=(Xv, yv), progress=False)
    with torch.no_grad():
        expected = F.mse_loss(reg.eval()(Xv), yv[:, None]).item()
    assert res.history[res.best_epoch - 1]["val_loss"] == pytest.approx(expected, rel=1e-6)  # (best restored)


def test_ctrl_c_leaves_the_best_weights(small_problem):
    net, X, y = small_problem()
    seen = []

    def log(record):
        seen.append((record["val_loss"], {k: v.clone() for k, v in net.state_dict().items()}))
        if len(seen) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(net, (X, y), epochs=30, val_fraction=0.25, log=log, progress=False, seed=1)
    best = min(seen[:-1], key=lambda s: s[0])[1]  # (the interrupted epoch was not compared)
    assert all(torch.equal(v, best[k]) for k, v in net.state_dict().items())


def test_logged_eps_is_the_last_steps_in_full_and_mini_batch(small_problem):
    # Before: a mini-batch run logged the next pass's eps (one decay ahead of a full-batch run's).
    logs = {}
    for batch in (None, 100):
        net, X, y = small_problem()
        logs[batch] = fit(net, (X, y), epochs=3, batch_size=batch, progress=False).history[-1]["am_eps"]
    assert logs[None] == logs[100] == pytest.approx(0.8**2)


def test_a_trainer_class_taking_any_option_gets_them_all(small_problem):
    # fit checks hyperparams against the constructor's keywords, unless it takes **options itself.
    from beyondsgd.am import TIAM

    seen = {}

    class Tagged(TIAM):
        def __init__(self, model, X, y, loss_fn, **options):
            seen.update(options)
            super().__init__(model, X, y, loss_fn, **{k: v for k, v in options.items() if k != "tag"})

    net, X, y = small_problem()
    fit(net, (X, y), algorithm=Tagged, epochs=1, hyperparams={"tag": 1, "rho": 2.0}, progress=False)
    assert seen == {"tag": 1, "rho": 2.0}


def test_positional_options_of_a_trainer_class_are_accepted(small_problem):
    from beyondsgd.am import PlainAM

    class MyAM(PlainAM):
        def __init__(self, model, X, y, loss_fn=F.cross_entropy, rho=1.0):
            super().__init__(model, X, y, loss_fn, rho=rho)

    net, X, y = small_problem()
    res = fit(net, (X, y), algorithm=MyAM, epochs=1, hyperparams={"rho": 2.0}, progress=False)
    assert res.trainer.rho == 2.0
    with pytest.raises(ValueError, match=r"MyAM has no option 'mu'; its options: rho"):
        fit(net, (X, y), algorithm=MyAM, hyperparams={"mu": 0.1}, progress=False)
