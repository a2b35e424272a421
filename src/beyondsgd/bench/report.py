"""Summaries over seeds and the Markdown report of a comparison."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from beyondsgd.bench.runner import RunResult
from beyondsgd.bench.stats import summarize_values, to_target

SUMMARY_COLUMNS = (
    "algorithm",
    "family",
    "runs",
    "diverged",
    "final_test_accuracy_mean",
    "final_test_accuracy_std",
    "peak_test_accuracy_mean",
    "final_train_loss_mean",
    "time_to_target_s_mean",
    "epochs_to_target_mean",
    "reached_target",
    "train_time_s_mean",
    "batch_size",
    "hyperparams",
)


def summarize(
    results: Sequence[RunResult], target_accuracy: float, families: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per algorithm: statistics over its seeds.

    Diverged runs are counted but never enter the means (their curves stop early).
    Time to target is training time only, averaged over the seeds that reached it.
    """
    groups: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        groups[r.experiment.algorithm].append(r)
    rows: list[dict[str, Any]] = []
    for alg, runs in groups.items():
        ok = [r for r in runs if r.status == "ok"]
        final_acc = summarize_values(r.final("test_accuracy") for r in ok)
        peak = summarize_values(max((h["test_accuracy"] for h in r.history), default=math.nan) for r in ok)
        ttt = [to_target(r.history, "test_accuracy", target_accuracy, "time_s") for r in ok]
        ett = [to_target(r.history, "test_accuracy", target_accuracy, "epoch") for r in ok]
        reached = sum(math.isfinite(t) for t in ttt)
        rows.append(
            {
                "algorithm": alg,
                "family": (families or {}).get(alg, ""),
                "runs": len(runs),
                "diverged": len(runs) - len(ok),
                "final_test_accuracy_mean": final_acc.mean,
                "final_test_accuracy_std": final_acc.std,
                "peak_test_accuracy_mean": peak.mean,
                "final_train_loss_mean": summarize_values(r.final("train_loss") for r in ok).mean,
                "time_to_target_s_mean": summarize_values(ttt).mean,
                "epochs_to_target_mean": summarize_values(ett).mean,
                "reached_target": f"{reached}/{len(runs)}",
                "train_time_s_mean": summarize_values(r.history[-1]["time_s"] for r in ok).mean,
                "batch_size": runs[0].experiment.batch_size,
                "hyperparams": _fmt_hp(runs[0].hyperparams),
            }
        )
    rows.sort(key=lambda r: (-_nan_low(r["final_test_accuracy_mean"]), r["algorithm"]))
    return rows


def _nan_low(x: float) -> float:
    return -math.inf if not math.isfinite(x) else x


def _fmt_hp(hp: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(hp.items())) or "defaults"


def _num(x: float, fmt: str) -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, fmt)


def markdown_table(rows: Sequence[Mapping[str, Any]], target_accuracy: float) -> str:
    """The summary as a Markdown table."""
    head = (
        "| algorithm | final test acc (mean ± std) | peak test acc | final train loss "
        f"| time to {target_accuracy:.0%} test acc [s] | epochs to target | reached | diverged | train time [s] | batch | hyperparameters |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        lines.append(
            f"| {r['algorithm']} | {_num(r['final_test_accuracy_mean'], '.4f')} ± {_num(r['final_test_accuracy_std'], '.4f')} "
            f"| {_num(r['peak_test_accuracy_mean'], '.4f')} | {_num(r['final_train_loss_mean'], '.4g')} "
            f"| {_num(r['time_to_target_s_mean'], '.2f')} | {_num(r['epochs_to_target_mean'], '.1f')} "
            f"| {r['reached_target']} | {r['diverged']}/{r['runs']} | {_num(r['train_time_s_mean'], '.2f')} "
            f"| {r['batch_size']} | {r['hyperparams']} |"
        )
    return head + "\n".join(lines) + "\n"
