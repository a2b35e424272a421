"""The relaxation levers of TIAM / plain AM, dlADMM and full-batch GD/Adam, chosen on a validation split.

For each dataset (digits, mnist5k; Fashion-MNIST when its files are present), each seed and each
activation (ReLU, leaky ReLU 0.01, ELU), trains the paper's MLP (3 Linear layers, 100 hidden units)
for ``--iters`` full-batch iterations on 80 % of the training set and reports mean accuracy with a
95 % Student-t interval over seeds on the held-out 20 % (validation: what choices are made on) and
on the test set (reported, never used to choose). Variants:

* ``tiam`` / ``am``: the previous defaults (box in the output variable, ``|h(z) - a| <= eps``,
  ``eps_min=1e-3``), spelled out (:data:`OLD`) so the rows keep their meaning when defaults change;
* ``tiam_in`` / ``am_in``: ``box="input"`` (``h(z - eps) <= a <= h(z + eps)``);
* ReLU: the eps levers of the issue: ``tiam_dec95`` (``eps_decay=0.95``), ``tiam_floor01`` /
  ``am_floor01`` (``eps_min=0.1``), ``tiam_labels`` (``output_init="labels"``);
* leaky ReLU, ELU: ``tiam_in_floor01`` / ``am_in_floor01`` (input box and ``eps_min=0.1``);
* ``dladmm`` (ReLU and leaky ReLU: it has no closed form for ELU), ``gd`` (lr 1), ``adam`` (lr 1e-2);
* ``dladmm_authors``: dlADMM with the authors' penalty schedule (``rho_schedule="authors"``: ``rho``
  and ``nu`` times 10 after three consecutive rises of the training loss);
* a learning-rate grid for the gradient baselines: ``gd_lr0.1``, ``gd_lr0.3``, ``gd_lr1`` and
  ``adam_lr0.003``, ``adam_lr0.01``, ``adam_lr0.03`` (the grids of ``beyondsgd reproduce tiam``); when
  more than one point of a grid ran, the script prints the point with the best mean *validation*
  accuracy (``chosen on validation``), the test column is reported alongside, never used to choose;
* the first sweep: ``tiam_def`` / ``am_def`` (the current defaults) against ``tiam_bwd`` / ``am_bwd``
  (the same with ``first_sweep="backward"``).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/am_levers.py --acts relu --only tiam_def,tiam_bwd,am_def,am_bwd

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/am_levers.py [--seeds 3] [--iters 30] [--out results.csv]
    # Fashion-MNIST from local files (first 5000 training images):
    BEYONDSGD_DATA=/usr/share/datasets OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/am_levers.py \
        --datasets fashion-mnist --max-train 5000 --only tiam,tiam_in,am,am_in,dladmm,gd,adam
    # dlADMM's penalty schedule, constant against the authors':
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/am_levers.py --datasets digits,mnist5k --acts relu,leaky_relu \
        --only dladmm,dladmm_authors
    # the whole Fashion-MNIST training set (48 000 train / 12 000 validation), tuned gradient baselines:
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/am_levers.py --datasets fashion-mnist --max-train 0 \
        --only tiam_def,am_def,dladmm,gd_lr0.1,gd_lr0.3,gd_lr1,adam_lr0.003,adam_lr0.01,adam_lr0.03
"""

from __future__ import annotations

import argparse
import csv
import time

import torch
import torch.nn.functional as F

from beyondsgd.am import DLADMM, TIAM, PlainAM
from beyondsgd.bench.stats import summarize_values
from beyondsgd.data import DatasetUnavailableError, load_dataset
from beyondsgd.models import create_model

ACTS = ("relu", "leaky_relu", "elu")
#: Learning-rate grids of the gradient baselines (those of ``beyondsgd reproduce tiam``): prefix -> (optimizer, lrs).
LR_GRIDS = {"gd_lr": ("sgd", (0.1, 0.3, 1.0)), "adam_lr": ("adam", (3e-3, 1e-2, 3e-2))}


#: The previous defaults, spelled out so that every variant means the same after a default changes.
OLD = {"box": "output", "eps_min": 1e-3}


def variants(act: str) -> list[tuple[str, type | str, dict]]:
    out: list[tuple[str, type | str, dict]] = [
        ("tiam", TIAM, OLD),
        ("tiam_in", TIAM, {**OLD, "box": "input"}),
        ("am", PlainAM, OLD),
        ("am_in", PlainAM, {**OLD, "box": "input"}),
    ]
    if act == "relu":
        out += [
            ("tiam_dec95", TIAM, {**OLD, "eps_decay": 0.95}),
            ("tiam_floor01", TIAM, {**OLD, "eps_min": 0.1}),
            ("tiam_labels", TIAM, {**OLD, "output_init": "labels"}),
            ("am_floor01", PlainAM, {**OLD, "eps_min": 0.1}),
        ]
    else:
        out += [
            ("tiam_in_floor01", TIAM, {"box": "input", "eps_min": 0.1}),
            ("am_in_floor01", PlainAM, {"box": "input", "eps_min": 0.1}),
        ]
    out += [
        ("tiam_def", TIAM, {}),
        ("tiam_bwd", TIAM, {"first_sweep": "backward"}),
        ("am_def", PlainAM, {}),
        ("am_bwd", PlainAM, {"first_sweep": "backward"}),
    ]
    if act != "elu":
        out += [("dladmm", DLADMM, {}), ("dladmm_authors", DLADMM, {"rho_schedule": "authors"})]
    out += [("gd", "sgd", {"lr": 1.0}), ("adam", "adam", {"lr": 1e-2})]
    out += [(f"{prefix}{lr:g}", opt, {"lr": lr}) for prefix, (opt, grid) in LR_GRIDS.items() for lr in grid]
    return out


def chosen_on_validation(rows: list[dict], dataset: str, act: str) -> list[str]:
    """Per learning-rate grid with more than one point run: the point with the best mean validation accuracy."""
    lines = []
    for prefix, (_, grid) in LR_GRIDS.items():
        means = {}
        for lr in grid:
            sel = [
                r for r in rows if (r["dataset"], r["activation"], r["variant"]) == (dataset, act, f"{prefix}{lr:g}")
            ]
            if sel:
                means[f"{prefix}{lr:g}"] = summarize_values(r["val_acc"] for r in sel).mean
        if len(means) > 1:
            # a NaN mean (no finite run) is the worst; ties go to the first (smallest) learning rate
            best = max(means, key=lambda k: -1.0 if means[k] != means[k] else means[k])
            lines.append(f"  {act:10s} chosen on validation: {best} (val {means[best]:.3f})")
    return lines


@torch.no_grad()
def accuracy(net, X, y) -> float:
    return (net(X).argmax(1) == y).float().mean().item()


def longest_rise(losses: list[float]) -> int:
    """The longest run of consecutive strict rises in ``losses``."""
    best = run_ = 0
    for prev, cur in zip(losses, losses[1:]):
        run_ = run_ + 1 if cur > prev else 0
        best = max(best, run_)
    return best


def run(cls, kw, net, X, y, iters: int) -> tuple[float, dict]:
    """Train ``net``; returns the seconds and, for dlADMM with the authors' schedule, how often it
    raised ``rho`` and the longest run of rises of the training loss it saw (else empty)."""
    t0 = time.perf_counter()
    extra: dict = {}
    if isinstance(cls, str):
        opt = (torch.optim.SGD if cls == "sgd" else torch.optim.Adam)(net.parameters(), **kw)
        for _ in range(iters):
            opt.zero_grad()
            F.cross_entropy(net(X), y).backward()
            opt.step()
    else:
        tr = cls(net, X, y, F.cross_entropy, **kw)
        losses = []
        for _ in range(iters):
            tr.train_step(None)
            if kw.get("rho_schedule") == "authors":
                losses.append(tr.prev_train_loss)  # the forward-pass training loss the schedule checked
        if losses:
            extra = {"rho_increases": tr.rho_increases, "longest_rise": longest_rise(losses)}
    return time.perf_counter() - t0, extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits,mnist5k,fashion-mnist")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--out", default=None, help="CSV of every run")
    ap.add_argument("--only", default=None, help="comma-separated variant names to run (default: all)")
    ap.add_argument("--acts", default=",".join(ACTS), help="comma-separated activations")
    ap.add_argument(
        "--max-train", type=int, default=10_000, help="use the first N training images at most (0: all of them)"
    )
    args = ap.parse_args()
    if args.max_train < 0:
        ap.error(f"--max-train must be >= 0 (0: every training image), got {args.max_train}")
    torch.set_num_threads(1)
    rows = []
    for name in args.datasets.split(","):
        try:
            data = load_dataset(name)
        except DatasetUnavailableError:
            print(f"{name}: files not present, skipped")
            continue
        X_all, y_all = data.X_train, data.y_train
        if 0 < args.max_train < X_all.shape[0]:
            X_all, y_all = X_all[: args.max_train], y_all[: args.max_train]
        perm = torch.randperm(X_all.shape[0], generator=torch.Generator().manual_seed(0))
        n_val = X_all.shape[0] // 5
        Xv, yv = X_all[perm[:n_val]], y_all[perm[:n_val]]
        X, y = X_all[perm[n_val:]], y_all[perm[n_val:]]
        print(f"{name}: {X.shape[0]} train / {n_val} validation / {data.X_test.shape[0]} test, {args.iters} iterations")
        for act in args.acts.split(","):
            for label, cls, kw in variants(act):
                if args.only and label not in args.only.split(","):
                    continue
                for seed in range(args.seeds):
                    torch.manual_seed(seed)
                    net = create_model("mlp", data.input_shape, data.num_classes, widths=(100, 100), activation=act)
                    secs, extra = run(cls, kw, net, X, y, args.iters)
                    rows.append(
                        {
                            "dataset": name,
                            "activation": act,
                            "variant": label,
                            "seed": seed,
                            "val_acc": accuracy(net, Xv, yv),
                            "test_acc": accuracy(net, data.X_test, data.y_test),
                            "seconds": secs,
                            "rho_increases": extra.get("rho_increases", ""),
                            "longest_rise": extra.get("longest_rise", ""),
                        }
                    )
                sel = [r for r in rows if (r["dataset"], r["activation"], r["variant"]) == (name, act, label)]
                v = summarize_values(r["val_acc"] for r in sel)
                t = summarize_values(r["test_acc"] for r in sel)
                print(
                    f"  {act:10s} {label:13s} val {v.mean:.3f} ± {v.half_width:.3f}   "
                    f"test {t.mean:.3f} ± {t.half_width:.3f}   ({sum(r['seconds'] for r in sel) / len(sel):.2f} s/run)"
                    + (
                        f"   rho increases {[r['rho_increases'] for r in sel]}, "
                        f"longest run of training-loss rises {[r['longest_rise'] for r in sel]}"
                        if kw.get("rho_schedule") == "authors"
                        else ""
                    ),
                    flush=True,
                )
            for line in chosen_on_validation(rows, name, act):
                print(line, flush=True)
    if args.out:
        with open(args.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
