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
