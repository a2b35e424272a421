"""Files written by beyondsgd 0.1.0 (everything under ``bench/``) still load after the layout change.

``tests/fixtures/layout-0.1.0`` was written by the 0.1.0 code before the modules
moved: two finished run checkpoints (a gradient optimizer and TIAM) with their
final logged values, and a ``beyondsgd compare`` folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from beyondsgd.bench import Experiment, run_experiment
from beyondsgd.cli import main

OLD = Path(__file__).parent / "fixtures" / "layout-0.1.0"


@pytest.mark.parametrize("algorithm,batch_size", [("adam", 64), ("tiam", "full")])
def test_a_checkpoint_of_the_old_layout_resumes(tmp_path, monkeypatch, algorithm, batch_size):
    from beyondsgd.am import AMTrainer
    from beyondsgd.training import GradientTrainer

    def no_training(self, indices):
        raise AssertionError("the finished checkpoint should have been loaded, not retrained")

    # The run is finished in the checkpoint: resuming must restore it without a single update.
    monkeypatch.setattr(GradientTrainer, "train_step", no_training)
    monkeypatch.setattr(AMTrainer, "train_step", no_training)
    ckpt = tmp_path / "run.pt"
    shutil.copy(OLD / f"{algorithm}-run.pt", ckpt)
    exp = Experiment(
        algorithm=algorithm,
        dataset="digits",
        epochs=2,
        batch_size=batch_size,
        seed=0,
        dataset_options={"n_train": 200},
        model_options={"widths": (16,)},
        device="cpu",
    )
    result = run_experiment(exp, checkpoint=ckpt, checkpoint_every=1, progress=False)
    expected = json.loads((OLD / f"{algorithm}-result.json").read_text())
    assert result.status == expected["status"] == "ok"
    final = result.history[-1]
    for key in ("epoch", "train_loss", "test_loss", "test_accuracy"):
        assert final[key] == pytest.approx(expected["final"][key], rel=0, abs=0), key


def test_a_compare_folder_of_the_old_layout_is_reported(tmp_path, capsys):
    folder = tmp_path / "compare"
    shutil.copytree(OLD / "compare", folder)
    assert main(["report", str(folder)]) == 0
    html = (folder / "report.html").read_text()
    assert "sgd" in html and "am" in html and "<img" in html
