"""The reproductions' hand-written loops (momentum, dsgd) resume identically from a LoopCheckpoint."""

import numpy as np
import pytest
import torch

from beyondsgd.bench.checkpoint import LoopCheckpoint, load_checkpoint
from beyondsgd.data import load_dataset
from beyondsgd.optim import DSGD, HeavyBall, Nesterov
from beyondsgd.reproduce import dsgd as repro_dsgd
from beyondsgd.reproduce import momentum as repro_momentum

CPU = torch.device("cpu")


def interrupt_step(monkeypatch, cls, at):
    """Make the at-th call of cls.step raise KeyboardInterrupt (as if killed there); returns the undo."""
    original, calls = cls.step, {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "step", step)
    return lambda: monkeypatch.setattr(cls, "step", original)


@pytest.mark.parametrize("method,cls", [("hb", HeavyBall), ("nag", Nesterov)])
def test_momentum_loop_resumes_identically(tmp_path, monkeypatch, method, cls):
    data = load_dataset("digits", n_train=40, unit_norm=True)
    X, y = data.X_train.flatten(1).double(), (data.y_train % 2).double() * 2 - 1
    args = (method, X, y, 64, 0.2, 0.5, 12, 0, CPU)
    reference = repro_momentum.train(*args)

    path, identity = tmp_path / "m.pt", {"method": method}
    undo = interrupt_step(monkeypatch, cls, 8)
    with pytest.raises(KeyboardInterrupt):
        repro_momentum.train(*args, LoopCheckpoint(path, identity, every=3))
    undo()
    assert load_checkpoint(path)["state"]["k"] == 6 and not load_checkpoint(path)["done"]

    resumed = repro_momentum.train(*args, LoopCheckpoint(path, identity, every=3))
    assert np.array_equal(resumed["losses"], reference["losses"])
    assert resumed["rel_change"] == reference["rel_change"]
    assert torch.equal(resumed["net"].W, reference["net"].W)
    assert load_checkpoint(path)["done"]
    with pytest.raises(ValueError, match="belongs to another run"):
        LoopCheckpoint(path, {"method": "gd"}).resume()


@pytest.mark.parametrize(
    "activation,mode,batch,label,options",
    [
        ("tanh", "bound", None, "dsgd", {"mode": "bound", "norm": "frobenius"}),
        ("relu", "adaptive", 16, "dsgd_random", {"mode": "adaptive", "norm": "frobenius", "selection": "random"}),
    ],
)
def test_dsgd_loop_resumes_identically(tmp_path, monkeypatch, activation, mode, batch, label, options):
    setting = repro_dsgd.Setting("t", "digits", activation, mode, batch, 12, 2)
    problem = repro_dsgd._Problem(setting, load_dataset("digits", n_train=60, unit_norm=True), CPU)
    reference = repro_dsgd._run(problem, label, options, 0)

    path = tmp_path / "d.pt"
    undo = interrupt_step(monkeypatch, DSGD, 8)
    with pytest.raises(KeyboardInterrupt):
        repro_dsgd._run(problem, label, options, 0, LoopCheckpoint(path, {"l": label}, every=3))
    undo()
    resumed = repro_dsgd._run(problem, label, options, 0, LoopCheckpoint(path, {"l": label}, every=3))

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]

    assert strip(resumed.rows) == strip(reference.rows)
    assert resumed.layers == reference.layers
    # A finished run comes back from its checkpoint without training.
    undo = interrupt_step(monkeypatch, DSGD, 1)
    again = repro_dsgd._run(problem, label, options, 0, LoopCheckpoint(path, {"l": label}, every=3))
    undo()
    assert strip(again.rows) == strip(reference.rows)
