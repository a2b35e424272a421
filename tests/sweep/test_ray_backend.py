"""The Ray backend on a local Ray instance (skipped when Ray is not installed)."""

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'beyondsgd[ray]'")

from beyondsgd.sweep.config import final_tasks, parse_config, tuning_tasks  # noqa: E402
from beyondsgd.sweep.run import run_sweep  # noqa: E402
from beyondsgd.sweep.store import RunStore  # noqa: E402

CONFIG = {
    "name": "ray-test",
    "problems": [
        {
            "name": "b",
            "dataset": "blobs",
            "model": "mlp",
            "model_options": {"widths": [8]},
            "dataset_options": {"n_train": 200},
            "epochs": 2,
            "batch_size": 50,
            "target": {"test_accuracy": 0.5},
        }
    ],
    "algorithms": {"sgd": {"lr": [0.05, 0.5]}, "adam": {}},
    "seeds": 2,
}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_sweep_on_local_ray_matches_in_process(local_ray, tmp_path):
    cfg = parse_config(CONFIG)
    out = run_sweep(cfg, tmp_path / "ray", backend="ray", threads=1, verbose=False, report=False)
    store = RunStore(tmp_path / "ray")
    records = {r["key"]: r for r in store.records()}
    planned = {t.key for t in tuning_tasks(cfg)} | {t.key for t in final_tasks(cfg, records)}
    assert out.ran == len(planned) == 2 + 4 and out.lost == [] and set(records) == planned
    assert all(r["status"] == "ok" for r in records.values())
    # Same runs in this process give the same numbers: the backend changes where, not what.
    ref = run_sweep(cfg, tmp_path / "local", workers=1, threads=1, verbose=False, report=False)
    assert ref.ran == out.ran
    for key, rec in records.items():
        other = RunStore(tmp_path / "local").get(key)
        for h, g in zip(rec["result"]["history"], other["result"]["history"], strict=True):
            assert h["step"] == g["step"]
            assert (h["train_loss"], h["test_accuracy"]) == pytest.approx(
                (g["train_loss"], g["test_accuracy"]), rel=1e-5
            )
    meta = store.read_meta()
    assert meta["sessions"][0]["backend"] == "ray"


def test_tpe_sweep_on_ray_workers_share_the_study(local_ray, tmp_path):
    """Ray workers open the sweep's study database themselves to report per-epoch values."""
    optuna = pytest.importorskip("optuna")
    cfg = parse_config(
        {
            **CONFIG,
            "algorithms": {"sgd": {"lr": {"log_uniform": [0.01, 1.0]}}},
            "search": {"method": "tpe", "trials": 3},
        }
    )
    out = run_sweep(cfg, tmp_path / "rt", backend="ray", threads=1, verbose=False, report=False)
    assert out.lost == [] and out.ran == 3 + 2
    study = optuna.load_study(study_name="ray-test/b/sgd", storage=f"sqlite:///{tmp_path / 'rt' / 'optuna.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3
    assert all(len(t.intermediate_values) == 2 for t in done)  # reported from the Ray worker, every epoch


def test_own_data_and_model_reach_ray_workers(local_ray, tmp_path):
    """run_sweep(data=..., model=...) on Ray: the workers load OUT/data/*.pt and build the model passed in."""
    from sklearn.datasets import load_digits

    from beyondsgd.models.mlp import MLP  # importable by the Ray workers, as a user's module would be

    X, y = load_digits(return_X_y=True)
    raw = {**CONFIG, "problems": [{k: v for k, v in CONFIG["problems"][0].items() if k != "dataset_options"}]}
    del raw["problems"][0]["dataset"], raw["problems"][0]["model"]
    cfg = parse_config(raw)
    data = (X[:300], y[:300])
    out = run_sweep(cfg, tmp_path / "ray", backend="ray", threads=1, verbose=False, report=False, data=data, model=MLP)
    records = {r["key"]: r for r in RunStore(tmp_path / "ray").records()}
    assert out.ran == len(records) == 2 + 4 and out.lost == []
    assert all(r["status"] == "ok" and r["task"]["experiment"]["model"] == "custom:MLP" for r in records.values())
    ref = run_sweep(cfg, tmp_path / "local", workers=1, threads=1, verbose=False, report=False, data=data, model=MLP)
    assert ref.ran == out.ran

    def curves(folder):  # the keys hold the data file's path (in the sweep folder): match runs by what they are
        runs = {}
        for r in RunStore(folder).records():
            t = r["task"]
            runs[(t["phase"], t["algorithm"], t["trial"], t["experiment"]["seed"])] = [
                h["test_accuracy"] for h in r["result"]["history"]
            ]
        return runs

    on_ray, local = curves(tmp_path / "ray"), curves(tmp_path / "local")
    assert on_ray.keys() == local.keys()
    for k in on_ray:
        assert on_ray[k] == pytest.approx(local[k], rel=1e-5)
