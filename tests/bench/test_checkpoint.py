import pytest
import torch

from beyondsgd.bench import Experiment, GradientTrainer, run_experiment
from beyondsgd.bench.checkpoint import load_checkpoint, save_checkpoint


def exp(**kw):
    base = dict(
        algorithm="adam",
        dataset="digits",
        epochs=4,
        batch_size=100,
        seed=1,
        model_options={"widths": (16,)},
        dataset_options={"n_train": 300},
        device="cpu",
    )
    base.update(kw)
    return Experiment(**base)


def strip_time(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def assert_same_state(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_state(x, y)
    else:
        assert a == b


@pytest.mark.parametrize(
    "algorithm,hp,interrupt_at",
    [
        ("adam", {"lr": 1e-2}, 7),  # mid-epoch (3 steps/epoch), after the checkpoint of epoch 2
        ("sgd", {"lr": 0.05, "momentum": 0.9}, 4),
    ],
)
def test_interrupted_run_resumes_identically(tmp_path, monkeypatch, algorithm, hp, interrupt_at):
    e = exp(algorithm=algorithm, hyperparams=hp)
    full = run_experiment(e, progress=False, checkpoint=tmp_path / "full.pt")

    calls = {"n": 0}
    original = GradientTrainer.train_step

    def dying(self, indices):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt  # as if killed here
        return original(self, indices)

    monkeypatch.setattr(GradientTrainer, "train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(e, progress=False, checkpoint=tmp_path / "part.pt")
    saved = load_checkpoint(tmp_path / "part.pt")
    assert not saved["done"] and 0 < saved["step"] < interrupt_at
    monkeypatch.setattr(GradientTrainer, "train_step", original)

    resumed = run_experiment(e, progress=False, checkpoint=tmp_path / "part.pt")
    assert strip_time(resumed.history) == strip_time(full.history)
    final_full, final_resumed = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(tmp_path / "part.pt")
    assert_same_state(final_full["trainer"], final_resumed["trainer"])  # bit-identical weights and optimizer state
    assert final_resumed["done"]


def test_finished_checkpoint_returns_without_training(tmp_path, monkeypatch):
    e = exp(epochs=2)
    first = run_experiment(e, progress=False, checkpoint=tmp_path / "c.pt")
    monkeypatch.setattr(GradientTrainer, "train_step", lambda *a: pytest.fail("trained again"))
    again = run_experiment(e, progress=False, checkpoint=tmp_path / "c.pt")
    assert again.history == first.history


def test_results_only_final_checkpoint_returns_the_same_results(tmp_path, monkeypatch):
    e = exp(epochs=2)
    full = run_experiment(e, progress=False, checkpoint=tmp_path / "full.pt")
    slim = run_experiment(e, progress=False, checkpoint=tmp_path / "slim.pt", keep_final_state=False)
    assert strip_time(slim.history) == strip_time(full.history)
    state = load_checkpoint(tmp_path / "slim.pt")
    assert state["done"] and not {"trainer", "sampler", "rng"} & set(state)
    assert (tmp_path / "slim.pt").stat().st_size < (tmp_path / "full.pt").stat().st_size
    monkeypatch.setattr(GradientTrainer, "train_step", lambda *a: pytest.fail("trained again"))
    again = run_experiment(e, progress=False, checkpoint=tmp_path / "slim.pt")
    assert again.history == slim.history and again.status == slim.status


def test_checkpoint_of_another_experiment_is_refused(tmp_path):
    run_experiment(exp(epochs=1), progress=False, checkpoint=tmp_path / "c.pt")
    with pytest.raises(ValueError, match="belongs to another experiment"):
        run_experiment(exp(epochs=1, seed=2), progress=False, checkpoint=tmp_path / "c.pt")


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        run_experiment(exp(epochs=1), progress=False, checkpoint=path)
    save_checkpoint(path, {"anything": 1})
    torch.save({"format": 99}, path)
    with pytest.raises(ValueError, match="not a beyondsgd checkpoint"):
        load_checkpoint(path)


def test_bad_checkpoint_every():
    with pytest.raises(ValueError, match="checkpoint_every=0"):
        run_experiment(exp(), progress=False, checkpoint="x.pt", checkpoint_every=0)


@pytest.mark.parametrize("algorithm", __import__("beyondsgd.bench", fromlist=["x"]).available_algorithms())
def test_every_algorithm_resumes_bit_identically(tmp_path, monkeypatch, algorithm):
    """Interrupt mid-run (through the batch sampler, so trainer-based algorithms are covered too)."""
    from beyondsgd.bench.runner import BatchSampler

    e = exp(algorithm=algorithm, hyperparams={}, epochs=3, batch_size=100, model_options={"widths": (12, 12)})
    full = run_experiment(e, progress=False, checkpoint=tmp_path / "full.pt")
    calls = {"n": 0}
    original = BatchSampler.next

    def dying(self):
        calls["n"] += 1
        if calls["n"] == 5:  # second epoch, after the first checkpoint
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(BatchSampler, "next", dying)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(e, progress=False, checkpoint=tmp_path / "part.pt")
    monkeypatch.setattr(BatchSampler, "next", original)
    resumed = run_experiment(e, progress=False, checkpoint=tmp_path / "part.pt")
    assert strip_time(resumed.history) == strip_time(full.history)
    assert_same_state(
        load_checkpoint(tmp_path / "full.pt")["trainer"], load_checkpoint(tmp_path / "part.pt")["trainer"]
    )


def test_checkpoint_of_other_data_is_refused(tmp_path):
    from beyondsgd.data import load_dataset

    e = exp(epochs=1)
    run_experiment(e, data=load_dataset("digits", n_train=300), progress=False, checkpoint=tmp_path / "c.pt")
    with pytest.raises(ValueError, match="belongs to another data"):
        run_experiment(e, data=load_dataset("digits", n_train=200), progress=False, checkpoint=tmp_path / "c.pt")


def test_reproduce_checkpoints_resume_and_refusals(tmp_path, monkeypatch, capsys):
    """A reproduction interrupted mid-way resumes from its checkpoints and finishes."""
    from beyondsgd.bench import runner
    from beyondsgd.cli import main

    args = [
        "reproduce",
        "tiam",
        "--quick",
        "--out",
        str(tmp_path / "r"),
        "--checkpoint-every",
        "1",
        "--no-progress",
        "--threads",
        "1",
    ]
    calls = {"n": 0}
    original = runner.BatchSampler.next

    def dying(self):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(runner.BatchSampler, "next", dying)
    assert main(args) == 130
    folder = tmp_path / "r" / "checkpoints"
    saved = sorted(p.name for p in folder.glob("*.pt"))
    assert saved and all(n.startswith("quick-") for n in saved)
    finished = {p.name: p.read_bytes() for p in folder.glob("*.pt") if load_checkpoint(p)["done"]}
    assert finished and len(finished) < len(saved)  # some runs finished, one was interrupted
    # A finished run keeps its results, not its state (TIAM's holds every sample's auxiliaries).
    assert all("trainer" not in load_checkpoint(folder / name) for name in finished)
    assert all("trainer" in load_checkpoint(p) for p in folder.glob("*.pt") if p.name not in finished)
    monkeypatch.setattr(runner.BatchSampler, "next", original)
    assert main(args) == 0
    assert (tmp_path / "r" / "report.md").is_file()
    assert len(list(folder.glob("*.pt"))) > len(saved)  # the rest ran
    for name, data in finished.items():  # finished runs came back from their checkpoints, not re-run
        assert (folder / name).read_bytes() == data

    # A reproduction that cannot checkpoint refuses the flag clearly.
    from beyondsgd import reproduce

    reproduce.register_reproduction(reproduce.Reproduction("test_no_ckpt", lambda ctx: None, "test"))
    try:
        assert main(["reproduce", "test_no_ckpt", "--out", str(tmp_path / "m"), "--checkpoint-every", "1"]) == 2
    finally:
        reproduce._REGISTRY.pop("test_no_ckpt")
    err = capsys.readouterr().err
    assert "cannot resume from checkpoints; --checkpoint-every works for: dsgd, momentum, multiplicative, tiam" in err
