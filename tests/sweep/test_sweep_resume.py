"""A sweep killed with SIGKILL mid-run resumes without losing or duplicating a run."""

import json
from pathlib import Path

from beyondsgd.cli import main
from beyondsgd.sweep.config import final_tasks, load_config, tuning_tasks
from beyondsgd.sweep.store import RunStore

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
name: resume-test
problems:
  - {name: d, dataset: digits, model: mlp, model_options: {widths: [16]}, dataset_options: {n_train: 300},
     epochs: 4, batch_size: 64, target: {test_accuracy: 0.8}}
  - {name: b, dataset: blobs, model: mlp, model_options: {widths: [8]}, dataset_options: {n_train: 300},
     epochs: 4, batch_size: 64, target: {test_accuracy: 0.8}}
algorithms:
  sgd: {lr: [0.01, 0.1, 0.3]}
  adam: {lr: [0.001, 0.01]}
seeds: 2
"""


def _planned_keys(cfg_path: Path, store: RunStore) -> set[str]:
    cfg = load_config(cfg_path)
    records = {r["key"]: r for r in store.records()}
    return {t.key for t in tuning_tasks(cfg)} | {t.key for t in final_tasks(cfg, records)}


def test_kill_mid_sweep_then_resume(tmp_path, capsys, sweep_killed_after):
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(CONFIG)
    out = tmp_path / "sw"
    sweep_killed_after(cfg_path, out, runs=4, timeout=90)
    stored_before = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")}
    n_tune = len(tuning_tasks(load_config(cfg_path)))
    assert 4 <= len(stored_before) < n_tune + 4, "the kill must land mid-sweep for this test to mean anything"

    # Starting again without --resume refuses to mix two sweeps.
    assert main(["sweep", str(cfg_path), "--out", str(out), "--workers", "1"]) == 2
    assert "--resume" in capsys.readouterr().err

    assert main(["sweep", str(cfg_path), "--out", str(out), "--resume", "--workers", "1", "--quiet"]) == 0
    msg = capsys.readouterr().out
    store = RunStore(out)
    planned = _planned_keys(cfg_path, store)
    assert store.keys() == planned  # none lost, none extra
    assert f"{len(stored_before)} already stored" in msg  # finished runs were skipped, not re-run
    assert f"{len(planned) - len(stored_before)} run(s) executed" in msg
    for name, data in stored_before.items():  # and left untouched
        assert (out / "runs" / name).read_bytes() == data
    assert not list((out / "runs").glob(".*.tmp"))
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert len({r["key"] for r in records}) == len(records) == len(planned)
    assert all(r["status"] == "ok" for r in records)
    report = (out / "report.md").read_text()
    assert f"{len(planned)} stored runs (0 failed)" in report
    assert (out / "report.html").is_file()

    # Resuming a finished sweep runs nothing; a changed config is refused.
    assert (
        main(["sweep", str(cfg_path), "--out", str(out), "--resume", "--workers", "1", "--quiet", "--no-report"]) == 0
    )
    assert "0 run(s) executed" in capsys.readouterr().out
    cfg_path.write_text(CONFIG.replace("seeds: 2", "seeds: 3"))
    assert main(["sweep", str(cfg_path), "--out", str(out), "--resume"]) == 2
    assert "different config" in capsys.readouterr().err


def test_store_is_keyed_and_cleans_temporaries(tmp_path):
    store = RunStore(tmp_path)
    (tmp_path / "runs" / ".k.json.abc.tmp").write_text("{half")  # as left by a kill mid-write
    store = RunStore(tmp_path)
    assert not list((tmp_path / "runs").glob(".*.tmp"))
    store.put({"key": "k", "status": "ok", "v": 1})
    store.put({"key": "k", "status": "ok", "v": 2})  # same run again: replaced, never duplicated
    assert store.keys() == {"k"} and store.get("k")["v"] == 2 and "k" in store
    assert store.get("missing") is None


def test_sweep_checkpoints_each_run_and_results_match_a_sweep_without(tmp_path, capsys):
    cfg_path = tmp_path / "sweep.yaml"
    cfg_path.write_text(CONFIG)
    plain, ckpt = tmp_path / "plain", tmp_path / "ckpt"
    assert main(["sweep", str(cfg_path), "--out", str(plain), "--workers", "1", "--quiet", "--no-report"]) == 0
    assert (
        main(
            [
                "sweep",
                str(cfg_path),
                "--out",
                str(ckpt),
                "--workers",
                "1",
                "--quiet",
                "--no-report",
                "--checkpoint-every",
                "1",
            ]
        )
        == 0
    )
    keys = RunStore(ckpt).keys()
    assert {p.stem for p in (ckpt / "checkpoints").glob("*.pt")} == keys

    def histories(out):
        return {
            r["key"]: [{k: v for k, v in row.items() if k != "time_s"} for row in r["result"]["history"]]
            for r in RunStore(out).records()
        }

    assert histories(ckpt) == histories(plain)
    assert main(["sweep", str(cfg_path), "--out", str(tmp_path / "x"), "--checkpoint-every", "0"]) == 2
    assert "checkpoint_every=0" in capsys.readouterr().err
