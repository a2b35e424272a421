"""``run_sweep(cfg, data=..., model=...)``: your own arrays, Dataset and model in a sweep.

The data is written once to ``OUT/data/*.pt`` and every worker loads it through the file
loader; the results must be the very ones of the same sweep given that data as a file.
"""

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from beyondsgd.bench.compare import CompareConfig, run_compare
from beyondsgd.data import Dataset
from beyondsgd.sweep import ConfigError, parse_config, run_sweep

CONFIG = {
    "name": "own",
    "problems": [
        {"name": "p", "model_options": {"hidden": 8}, "epochs": 2, "batch_size": 64, "target": {"test_accuracy": 0.5}}
    ],
    "algorithms": {"sgd": {"lr": [0.03, 0.3]}, "adam": {}},
    "seeds": 2,
}


class TinyNet(nn.Module):
    """A module-level model class: picklable, so worker processes can build it."""

    def __init__(self, input_shape, num_outputs, hidden=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], hidden), nn.Tanh(), nn.Linear(hidden, num_outputs))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def arrays():
    X, y = load_digits(return_X_y=True)
    return X[:500], y[:500]


def _finals(out):
    """The final runs' histories, by (algorithm, seed), without the wall-clock columns."""
    finals = {}
    for f in (out / "runs").glob("*.json"):
        rec = json.loads(f.read_text())
        if rec["task"]["phase"] == "final":
            hist = [{k: v for k, v in row.items() if "time" not in k} for row in rec["result"]["history"]]
            finals[(rec["task"]["algorithm"], rec["task"]["experiment"]["seed"])] = hist
    return finals


def test_arrays_on_two_workers_equal_the_same_sweep_from_a_file_and_resume(tmp_path, arrays):
    X, y = arrays
    cfg = parse_config(CONFIG)
    out = tmp_path / "mine"
    res = run_sweep(cfg, out, workers=2, threads=1, verbose=False, report=False, data=(X, y), model=TinyNet)
    assert res.lost == [] and res.ran == 2 + 2 * 2  # 2 sgd tuning runs, 2 algorithms x 2 seeds final runs
    (data_file,) = (out / "data").glob("*.pt")
    assert oct(data_file.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    mine = _finals(out)
    assert len(mine) == 4
    assert all(json.loads(f.read_text())["status"] == "ok" for f in (out / "runs").glob("*.json"))

    # The same sweep from the equivalent file (X, y in an .npz, split and standardized by the file loader).
    np.savez(tmp_path / "digits500.npz", X=X, y=y)
    raw = json.loads(json.dumps(CONFIG))
    raw["problems"][0]["dataset"] = str(tmp_path / "digits500.npz")
    ref = run_sweep(parse_config(raw), tmp_path / "ref", workers=1, verbose=False, report=False, model=TinyNet)
    assert ref.ran == res.ran
    assert _finals(tmp_path / "ref") == mine

    # Resume with the same data: nothing re-runs; the report is written from the stored runs.
    again = run_sweep(cfg, out, workers=2, resume=True, verbose=False, data=(X, y), model=TinyNet)
    assert (again.ran, again.skipped) == (0, 6)
    text = again.report.read_text()
    assert "custom:TinyNet" in text and "your data (`data=`), stored as `data/" in text
    # Resume with other data, or without the model: refused, saying why.
    with pytest.raises(ConfigError, match="on other data"):
        run_sweep(cfg, out, resume=True, verbose=False, data=(X[:400], y[:400]), model=TinyNet)
    with pytest.raises(ConfigError, match="with model 'custom:TinyNet'"):
        run_sweep(cfg, out, resume=True, verbose=False, data=(X, y))
    assert list((out / "data").glob("*.pt")) == [data_file]  # the refused data was not written
    # The data file's path is part of the identity: a moved sweep folder is refused, saying so.
    moved = out.rename(tmp_path / "moved")
    with pytest.raises(ConfigError, match="started in another folder"):
        run_sweep(cfg, moved, resume=True, verbose=False, data=(X, y), model=TinyNet)


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_dataset_is_used_as_is_and_equals_the_file_sweep(tmp_path, arrays):
    X, y = arrays
    Xt, yt = torch.tensor(X, dtype=torch.float32) / 16, torch.tensor(y)
    mine = Dataset("digits-mine", Xt[:400], yt[:400], Xt[400:], yt[400:], (64,), 10, "classification", "mine")
    cfg = parse_config(CONFIG)
    run_sweep(cfg, tmp_path / "ds", workers=1, verbose=False, report=False, data=mine, model=TinyNet)
    (data_file,) = (tmp_path / "ds" / "data").glob("digits-mine-*.pt")
    stored = torch.load(data_file, weights_only=True)
    assert torch.equal(stored["X_train"], mine.X_train) and torch.equal(stored["y_test"], mine.y_test)

    torch.save({"X_train": Xt[:400], "y_train": yt[:400], "X_test": Xt[400:], "y_test": yt[400:]}, tmp_path / "m.pt")
    raw = json.loads(json.dumps(CONFIG))
    raw["problems"][0].update(dataset=str(tmp_path / "m.pt"), dataset_options={"standardize": "none"})
    run_sweep(parse_config(raw), tmp_path / "ref", workers=1, verbose=False, report=False, model=TinyNet)
    assert _finals(tmp_path / "ref") == _finals(tmp_path / "ds")


def make_tiny(input_shape, num_outputs, hidden=8):
    """A module-level factory function works as well as a class."""
    return TinyNet(input_shape, num_outputs, hidden)


def test_model_that_workers_cannot_receive_is_refused_before_anything_runs(tmp_path, arrays):
    cfg = parse_config(CONFIG)
    with pytest.raises(ValueError, match=r"invalid model=.*cannot be pickled.*module level.*register_model"):
        run_sweep(cfg, tmp_path / "lam", data=arrays, model=lambda shape, n, hidden=8: TinyNet(shape, n, hidden))

    def local(shape, n, hidden=8):
        return TinyNet(shape, n, hidden)

    with pytest.raises(ValueError, match="define it at module level"):
        run_sweep(cfg, tmp_path / "loc", data=arrays, model=local)
    with pytest.raises(ValueError, match="expected a callable"):
        run_sweep(cfg, tmp_path / "nc", data=arrays, model="TinyNet")
    assert not any(tmp_path.iterdir())
    # A module-level function is accepted (one tiny run: adam only, one seed, no tuning).
    small = parse_config({**CONFIG, "algorithms": {"adam": {}}, "seeds": 1})
    out = run_sweep(small, tmp_path / "fn", workers=1, verbose=False, report=False, data=arrays, model=make_tiny)
    assert out.ran == 1


@pytest.mark.parametrize(
    "bad",
    [
        lambda X, y: (X, y[:-1]),  # mismatched lengths
        lambda X, y: (X[:, 0], y),  # features of one dimension
        lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 70, np.nan, X), y),  # a NaN
        lambda X, y: (X, np.zeros_like(y)),  # one class only
        lambda X, y: (X, y, X),  # neither (X, y) nor a 4-way split
    ],
)
def test_bad_data_gives_the_errors_of_run_compare(tmp_path, arrays, bad):
    data = bad(*arrays)
    with pytest.raises(ValueError) as in_compare:
        run_compare(CompareConfig(algorithms=["sgd"], seeds=1, epochs=1, out=str(tmp_path / "c")), data=data)
    with pytest.raises(ValueError) as in_sweep:
        run_sweep(parse_config(CONFIG), tmp_path / "s", data=data, model=TinyNet)
    assert type(in_sweep.value) is type(in_compare.value)
    assert str(in_sweep.value) == str(in_compare.value)
    assert not (tmp_path / "s").exists()


def test_a_problem_without_dataset_needs_data(tmp_path):
    with pytest.raises(ConfigError, match=r"problems\[0\]: missing 'dataset'"):
        run_sweep(parse_config(CONFIG), tmp_path / "x")
    assert not (tmp_path / "x").exists()
