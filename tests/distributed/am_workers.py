"""Data-parallel TIAM / PlainAM checks run inside a 2-rank gloo process group.

Every rank runs each configuration twice: data-parallel (its own block of
samples, all-reduced sums) and as a single process on all samples (the
reference). The results say whether the shared iterates are bitwise identical
on both ranks and how far they are from the reference.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F

from beyondsgd import distributed as dist
from beyondsgd.am import TIAM, PlainAM
from beyondsgd.data import load_dataset
from beyondsgd.models import create_model

N_TRAIN = 101  # odd: the two ranks own 51 and 50 samples
#: Global batches: full, odd (uneven shards), 1 (a rank owns none of it), a large one.
MINI = [None, 33, 1, 64, 7, None, 50]
FULL = [None] * 5

TIAM_HP = dict(rho=1.0, mu=1e-3, eps=1.0, eps_decay=0.8, p1=0.9, p2=0.6, p3=0.3)

#: name -> (class, hyperparameters, activation, loss, batches)
CONFIGS: dict[str, tuple] = {
    "tiam-full-ce": (TIAM, TIAM_HP, "relu", "ce", FULL),
    "tiam-mini-ce": (TIAM, TIAM_HP, "relu", "ce", MINI),
    "tiam-ipalm-mse-elu": (TIAM, {**TIAM_HP, "schedule": "ipalm", "p1": 1.0}, "elu", "mse", MINI),
    "am-full-ce-leaky": (PlainAM, dict(rho=1.0, mu=1e-3, eps=0.5), "leaky_relu", "ce", FULL),
    "am-mini-ce": (PlainAM, dict(rho=2.0, mu=1e-4, eps=1.0, eps_decay=0.5), "relu", "ce", MINI),
    # The prox's proven iteration count: no stopping test, so no all-reduce inside the prox.
    "tiam-mini-ce-bound": (TIAM, {**TIAM_HP, "prox_stopping": "bound"}, "relu", "ce", MINI),
}


def _data(loss: str):
    data = load_dataset("digits", n_train=N_TRAIN, n_test=10, seed=0)
    X = data.X_train.double()
    if loss == "ce":
        return X, data.y_train, F.cross_entropy
    # A regression target: one-hot codes plus noise (10 outputs).
    gen = torch.Generator().manual_seed(3)
    y = F.one_hot(data.y_train, 10).double() + 0.1 * torch.randn(N_TRAIN, 10, generator=gen, dtype=torch.float64)
    return X, y, F.mse_loss


def _make(cfg: str, distributed: bool):
    cls, hp, act, loss, _ = CONFIGS[cfg]
    X, y, loss_fn = _data(loss)
    torch.manual_seed(0)
    model = create_model("mlp", (1, 8, 8), 10, widths=(12, 10), activation=act).double()
    return cls(model, X, y, loss_fn, distributed=distributed, **hp)


def _shared(tr) -> torch.Tensor:
    """Everything every rank must agree on, flattened: W, b (and previous), thetas, counters."""
    parts = [t.reshape(-1) for t in (*tr.W, *tr.b, *tr.Wp, *tr.bp)]
    nums = [*tr.theta_W, *tr.theta_a, tr.k, tr.samples_seen, tr.safeguard_count, tr.cap_count, tr.eps]
    return torch.cat(parts + [torch.tensor(nums, dtype=torch.float64)])


def _local_rows(tr) -> torch.Tensor:
    """This process's per-sample variables (hidden a's and every z, with previous iterates)."""
    return torch.cat([t.reshape(-1) for t in (*tr.z, *tr.zp, *tr.a[1:], *tr.ap[1:])])


def _rows_of(tr, start: int, stop: int) -> torch.Tensor:
    return torch.cat([t[start:stop].reshape(-1) for t in (*tr.z, *tr.zp, *tr.a[1:], *tr.ap[1:])])


def _run(tr, batches, gen_seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Outer iterations on the batches (the same global indices on every rank); losses and epoch logs."""
    gen = torch.Generator().manual_seed(gen_seed)
    losses, logs = [], []
    for bs in batches:
        idx = None if bs is None else torch.randperm(tr.n, generator=gen)[:bs]
        losses.append(float(tr.train_step(idx)))
        logs.extend(tr.end_epoch(0).values())
    return torch.tensor(losses, dtype=torch.float64), torch.tensor(logs, dtype=torch.float64)


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) if a.shape == b.shape else float("inf")


def _flat_state(state: dict) -> torch.Tensor:
    parts = []
    for k in sorted(state):
        v = state[k]
        if k == "module":
            parts += [t.reshape(-1).double() for t in v.values()]
        elif isinstance(v, list):
            parts += [
                t.reshape(-1).double() if torch.is_tensor(t) else torch.tensor([float(t)], dtype=torch.float64)
                for t in v
            ]
        else:
            parts.append(torch.tensor([float(v)], dtype=torch.float64))
    return torch.cat(parts)


def equivalence(cfg: str) -> dict[str, Any]:
    """2-rank run vs the other rank and vs one process on all samples."""
    batches = CONFIGS[cfg][4]
    tr = _make(cfg, distributed=True)
    initial = torch.cat([w.reshape(-1) for w in tr.W]).clone()
    losses, logs = _run(tr, batches)
    shared = _shared(tr)
    replicated = {
        name: dist.same_on_all_ranks(v) for name, v in (("shared", shared), ("losses", losses), ("logs", logs))
    }
    state = tr.state_dict()  # gathered: the whole training set's z, a
    ref = _make(cfg, distributed=False)
    ref_losses, ref_logs = _run(ref, batches)
    diff = {
        "shared": _maxdiff(shared, _shared(ref)),
        "losses": _maxdiff(losses, ref_losses),
        "logs": _maxdiff(logs, ref_logs),
        "rows": _maxdiff(_local_rows(tr), _rows_of(ref, tr.start, tr.stop)),
        "state": _maxdiff(_flat_state(state), _flat_state(ref.state_dict())),
    }
    return {
        "replicated": replicated,
        "diff": diff,
        "moved": _maxdiff(torch.cat([w.reshape(-1) for w in tr.W]), initial),
        "owned": (tr.start, tr.stop),
        "safeguards": ref.safeguard_count,
        "theta_doubled": max(ref.theta_W + ref.theta_a),
    }


def resume(cfg: str) -> dict[str, float]:
    """Checkpoint mid-run and continue: on 2 ranks (from a gathered state) and on 2 ranks from a 1-rank state."""
    batches = CONFIGS[cfg][4]
    half = len(batches) // 2
    whole = _make(cfg, distributed=True)
    _run(whole, batches)

    first = _make(cfg, distributed=True)
    gen = torch.Generator().manual_seed(1)
    idx = [None if bs is None else torch.randperm(N_TRAIN, generator=gen)[:bs] for bs in batches]
    for i in idx[:half]:
        first.train_step(i)
    state = first.state_dict()
    again = _make(cfg, distributed=True)
    again.load_state_dict(state)
    for i in idx[half:]:
        again.train_step(i)

    single = _make(cfg, distributed=False)  # a single-process checkpoint, resumed on 2 ranks
    for i in idx[:half]:
        single.train_step(i)
    moved = _make(cfg, distributed=True)
    moved.load_state_dict(single.state_dict())
    for i in idx[half:]:
        moved.train_step(i)
    return {
        "two_ranks": _maxdiff(_shared(again), _shared(whole)),
        "two_ranks_rows": _maxdiff(_local_rows(again), _local_rows(whole)),
        "from_one_rank": _maxdiff(_shared(moved), _shared(whole)),
        "from_one_rank_rows": _maxdiff(_local_rows(moved), _local_rows(whole)),
    }


#: A runner experiment: 121 samples in batches of 40 (the last batch of each epoch has 1 sample).
RUNNER_EXP = dict(
    algorithm="tiam",
    dataset="digits",
    epochs=4,
    batch_size=40,
    seed=2,
    device="cpu",
    model_options={"widths": (12,)},
    dataset_options={"n_train": 121, "n_test": 30},
)
HISTORY_KEYS = (
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "am_objective",
    "am_activation_gap",
    "am_eps",
    "am_safeguard_redos",
    "am_backtrack_caps",
)


def table(res) -> torch.Tensor:
    """A run's history as a (log points x HISTORY_KEYS) tensor."""
    return torch.tensor([[float(row.get(k, 0.0)) for k in HISTORY_KEYS] for row in res.history], dtype=torch.float64)


def runner_checks(out_root: str) -> dict[str, Any]:
    """``run_experiment`` with tiam on 2 ranks: its history, and a resume after an interruption."""
    from beyondsgd.am import AMTrainer
    from beyondsgd.bench import Experiment, run_experiment

    exp = Experiment(**RUNNER_EXP)

    full = run_experiment(exp, progress=False, checkpoint=os.path.join(out_root, "full.pt"))
    original = AMTrainer.train_step
    calls = {"n": 0}

    def dying(self, indices):
        calls["n"] += 1
        if calls["n"] == 7:  # the same step on both ranks, mid-epoch
            raise KeyboardInterrupt
        return original(self, indices)

    AMTrainer.train_step = dying
    try:
        run_experiment(exp, progress=False, checkpoint=os.path.join(out_root, "part.pt"))
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    finally:
        AMTrainer.train_step = original
    resumed = run_experiment(exp, progress=False, checkpoint=os.path.join(out_root, "part.pt"))
    return {
        "history": table(full),
        "replicated": dist.same_on_all_ranks(table(full)),
        "interrupted": interrupted,
        "resumed_diff": _maxdiff(table(resumed), table(full)),
        "rows": len(full.history),
    }


def all_checks(out_root: str) -> dict[str, Any]:
    """Every AM check in one spawn (starting processes is the slow part)."""
    return {
        "equivalence": {cfg: equivalence(cfg) for cfg in CONFIGS},
        "resume": {cfg: resume(cfg) for cfg in ("tiam-full-ce", "tiam-mini-ce")},
        "runner": runner_checks(out_root),
    }
