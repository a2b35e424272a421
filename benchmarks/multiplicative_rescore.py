"""Re-score a committed robustness grid per rule against the rule's *own* best.

Reads ``robustness.csv`` (as written by ``beyondsgd reproduce multiplicative``) and writes the
summary of :func:`beyondsgd.bench.reproductions.multiplicative.robustness_summary` (fraction of
cells within 1 point of the rule's own best, step-size width/area in decades, init spread):

    PYTHONPATH=src python benchmarks/multiplicative_rescore.py \\
        docs/multiplicative-results/robustness.csv docs/multiplicative-results/robustness_own_best.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from beyondsgd.bench.io import write_csv
from beyondsgd.bench.reproductions.multiplicative import robustness_summary


def main(src: str, dst: str) -> None:
    with open(src, newline="") as fh:
        rows = [
            {
                "base": r["base"],
                "rule": r["rule"],
                "step": float(r["step"]),
                "init_scale": float(r["init_scale"]),
                "test_accuracy": float(r["test_accuracy"]) if r["status"] == "ok" else float("nan"),
            }
            for r in csv.DictReader(fh)
        ]
    summary = robustness_summary(rows)
    write_csv(Path(dst), summary, list(summary[0]))
    for s in summary:
        print(
            f"{s['base']:8s} {s['rule']}  own-best within 1 pt {s['fraction_within_own']:.2f}  "
            f"step width {s['step_width_decades']:.2f} dec{' (censored)' if s['step_censored'] else ''}  "
            f"peak {s['best_cell']:.3f}"
        )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: multiplicative_rescore.py ROBUSTNESS_CSV OUT_CSV")
    main(sys.argv[1], sys.argv[2])
