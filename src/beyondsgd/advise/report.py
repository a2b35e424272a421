"""The advice report: verdict, ties, each family's best against tuned Adam and tuned SGD, plots.

Statistics come from :mod:`beyondsgd.bench.evidence`, the project's one evidence standard
(over the finalists' seeds; each seed is one independent training run, and seed i of every
finalist uses the same initialization seed and batch order seed):

* mean final test accuracy with a 95% Student-t confidence interval (``mean_ci``);
* the recommended method is the finalist with the best mean, and "tied with it" is
  :func:`~beyondsgd.bench.evidence.ties_with_best` (Welch's t-test against it,
  Holm-corrected; with 5 seeds a tie means "no difference this experiment can see",
  not "equal");
* differences (family best minus tuned Adam / tuned SGD) as
  :func:`~beyondsgd.bench.evidence.paired_difference` over the shared seeds, with 95%
  intervals, for the final accuracy and for the training time to the target accuracy
  (pairs where a seed never reached the target are dropped, and the count says so).
"""

from __future__ import annotations

import io
import json
import math
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beyondsgd.bench.evidence import TIE_RULE, PairedDifference, mean_ci, paired_difference, ties_with_best
from beyondsgd.bench.io import write_atomic, write_csv, write_json
from beyondsgd.bench.stats import metric_range, to_target


def _acc(run: Mapping[str, Any]) -> float:
    if run["status"] != "ok" or not run["history"]:
        return math.nan
    return float(run["history"][-1]["test_accuracy"])


def _fmt(x: float | None, f: str = ".4f") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, f)


def _signed(x: float, f: str = "+.4f") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, f)


def _hp(hp: Mapping[str, Any]) -> str:
    return (
        ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(hp.items())) or "defaults"
    )


def _pd(d: PairedDifference, fmt: str = "+.4f", with_n: bool = False) -> str:
    """``+0.0123 [+0.0040, +0.0206]`` (and ``n=k`` pairs when asked)."""
    if not math.isfinite(d.mean):
        return "—"
    n = f", n={d.n}" if with_n else ""
    return f"{_signed(d.mean, fmt)} [{_signed(d.ci_low, fmt)}, {_signed(d.ci_high, fmt)}{n}]"


def _png(fig, path: Path) -> Path:
    from beyondsgd.bench.plots import _pyplot
    from beyondsgd.sweep.report import shrink_png

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    _pyplot().close(fig)
    return shrink_png(write_atomic(path, buf.getvalue()))


def write_advice(
    out: Path, cands, settings: Mapping[str, Any], target: float | None, t0: float, interrupted: bool
) -> tuple[dict[str, Any], Path]:
    """Write every report file; returns the verdict and the path of ``advice.md``."""
    from beyondsgd.bench.html import write_html_report
    from beyondsgd.bench.plots import _pyplot, plot_metric_grid

    finals = {c.algorithm: c for c in cands if c.finals}
    # Per seed (seed i of every finalist shares its initialization and batch-order seed): NaN = diverged.
    by_seed = {a: {r["seed"]: _acc(r) for r in c.finals} for a, c in finals.items()}
    accs = {a: [v for v in d.values() if math.isfinite(v)] for a, d in by_seed.items()}
    summ = {a: mean_ci(v, bounds=metric_range("test_accuracy")) for a, v in accs.items()}
    # Only finalists whose every seed ran are compared (a seed that diverged counts as run, not as a value).
    n_seeds = int(settings["seeds"])
    incomplete = [a for a, c in finals.items() if len(c.finals) < n_seeds]
    eligible = [a for a in finals if a not in incomplete and len(accs[a]) >= 2]
    ties = ties_with_best({a: accs[a] for a in eligible}) if eligible else None
    rec = ties.best if ties else None
    tied = list(ties.tied) if ties else []
    others = [a for a in eligible if a != rec]
    verdict: dict[str, Any] = {"recommended": rec, "tied": [], "interrupted": interrupted}

    def paired(a: str, b: str, values=by_seed) -> PairedDifference:
        seeds = sorted(set(values[a]) & set(values[b]))
        return paired_difference([values[a][s] for s in seeds], [values[b][s] for s in seeds])

    if rec:
        assert ties is not None  # rec comes from it
        s = summ[rec]
        target = target if target is not None else math.floor(0.95 * s.mean * 100) / 100
        verdict.update(
            hyperparams=finals[rec].best_trial["hyperparams"],
            family=finals[rec].family,
            final_accuracy={"mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high, "seeds": s.n},
            tied=tied,
            comparisons={
                a: {"p_holm": ties.p_adjusted[a], "diff_vs_recommended": paired(a, rec).__dict__} for a in others
            },
            tie_rule=TIE_RULE,
        )
    verdict["target_accuracy"] = target

    def ttt(a: str) -> dict[int, float]:
        if target is None:
            return {r["seed"]: math.nan for r in finals[a].finals}
        return {r["seed"]: to_target(r["history"], "test_accuracy", target, "time_s") for r in finals[a].finals}

    times = {a: ttt(a) for a in eligible}

    # Each family's best finalist against the references.
    fam_rows = []
    families = sorted({c.family for c in cands})
    for fam in families:
        members = [a for a in eligible if finals[a].family == fam]
        if not members:
            fam_rows.append({"family": fam, "algorithm": None})
            continue
        best = max(members, key=lambda a: summ[a].mean)
        row: dict[str, Any] = {"family": fam, "algorithm": best, "hyperparams": finals[best].best_trial["hyperparams"]}
        row["final"] = summ[best]
        t_best = list(times[best].values())
        row["ttt"] = mean_ci(t_best)
        row["reached"] = f"{sum(math.isfinite(x) for x in t_best)}/{len(t_best)}"
        for ref in ("adam", "sgd"):
            if ref in eligible:
                row[f"vs_{ref}"] = paired(best, ref)
                row[f"ttt_vs_{ref}"] = paired(best, ref, times)
        fam_rows.append(row)
    verdict["families"] = {
        r["family"]: {
            "algorithm": r.get("algorithm"),
            **{k: r[k].__dict__ for k in ("vs_adam", "vs_sgd", "ttt_vs_adam", "ttt_vs_sgd") if k in r},
        }
        for r in fam_rows
    }

    # Files: trials and finals as CSV, plots.
    trial_rows = [
        {**{k: t[k] for k in ("algorithm", "number", "state", "value", "epochs")}, "hyperparams": _hp(t["hyperparams"])}
        for c in cands
        for t in c.trials
    ]
    write_csv(out / "trials.csv", trial_rows, ("algorithm", "number", "state", "value", "epochs", "hyperparams"))
    final_rows = [
        {
            "algorithm": a,
            "seed": r["seed"],
            "status": r["status"],
            "test_accuracy": _acc(r),
            "train_time_s": r["wall_s"],
        }
        for a, c in finals.items()
        for r in c.finals
    ]
    write_csv(out / "finals.csv", final_rows, ("algorithm", "seed", "status", "test_accuracy", "train_time_s"))
    plots = []
    hist = [row for c in finals.values() for r in c.finals if r["status"] != "failed" for row in r["history"]]
    if hist:
        plots.append(plot_metric_grid(hist, out / "curves.png", "epoch", ("train_loss", "test_accuracy"), dpi=80))
    if eligible:
        plt = _pyplot()
        order = sorted(eligible, key=lambda a: summ[a].mean)
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(order) + 1.2))
        for i, a in enumerate(order):
            s = summ[a]
            color = "C2" if a == rec else ("C0" if a in tied else "C7")
            ax.errorbar(s.mean, i, xerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]], fmt="o", color=color, capsize=3)
            ax.plot(accs[a], [i] * len(accs[a]), "|", color=color, alpha=0.5)
        ax.set_yticks(range(len(order)), order, fontsize=8)
        ax.set_xlabel("final test accuracy (mean, 95% CI; ticks: seeds)")
        ax.set_title("finalists (green: recommended, blue: tied with it)", fontsize=9)
        ax.grid(alpha=0.3)
        plots.append(_png(fig, out / "finalists.png"))

    # The markdown report.
    st = settings
    elapsed = time.perf_counter() - t0
    n_trials = sum(len(c.trials) for c in cands)
    n_pruned = sum(t["state"] == "pruned" for c in cands for t in c.trials)
    lines = ["# beyondsgd advise", ""]
    if interrupted:
        lines += ["**Interrupted (Ctrl-C): this report covers the runs that finished before the interruption.**", ""]
    lines += ["## Verdict", ""]
    if rec:
        assert ties is not None and target is not None  # both set with rec above
        s = summ[rec]
        lines += [
            f"- **Recommended: `{rec}`** ({finals[rec].family}; {_hp(verdict['hyperparams'])}): final test accuracy "
            f"{_fmt(s.mean)} [95% CI {_fmt(s.ci_low)}, {_fmt(s.ci_high)}] over {s.n} seeds.",
            "- Statistically tied with it (Welch t-test, Holm-corrected, α = 0.05): "
            + (", ".join(f"`{a}`" for a in tied) if tied else "none")
            + ".",
        ]
        worse = list(ties.different)
        if worse:
            lines.append("- Worse than it: " + ", ".join(f"`{a}` ({_pd(paired(a, rec))})" for a in worse) + ".")
        if incomplete:
            lines.append(
                "- Not compared (the budget ran out before all their seeds): "
                + ", ".join(f"`{a}` ({len(finals[a].finals)}/{n_seeds} seeds)" for a in incomplete)
                + "."
            )
        if ties.undecided:
            lines.append(f"- Undecided (too few finished seeds): {', '.join(f'`{a}`' for a in ties.undecided)}.")
        for ref in ("adam", "sgd"):
            if ref in eligible and ref != rec:
                lines.append(
                    f"- Over tuned {'Adam' if ref == 'adam' else 'SGD'}: {_pd(paired(rec, ref))} test accuracy "
                    "(paired over seeds, 95% CI)."
                )
    else:
        lines.append(f"- No recommendation: no finalist finished its {n_seeds} seeds within the budget.")
    lines += [
        "",
        f"Budget {st['budget_s']:.0f} s, used {elapsed:.0f} s (report included); {n_trials} tuning trials "
        f"({n_pruned} pruned), {len(final_rows)} final runs.",
        "",
        "## Each family's best against tuned Adam and tuned SGD",
        "",
        f"Final test accuracy (mean [95% CI] over seeds) and training time to {_fmt(target, '.2f')} test accuracy "
        "(mean [95% CI] over the seeds that reached it); Δ = family best minus the reference, paired over the "
        "shared seeds, [95% CI] (for time: over the seeds where both reached the target, n pairs). A family "
        "without a finalist did not fit the budget (or no run of it finished).",
        "",
        "| family | best | hyperparameters | final acc | Δ vs Adam | Δ vs SGD | time to target [s] (reached) "
        "| Δ time vs Adam [s] | Δ time vs SGD [s] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in fam_rows:
        if r["algorithm"] is None:
            lines.append(f"| {r['family']} | — | | | | | | | |")
            continue
        f, t = r["final"], r["ttt"]

        def d(key: str, fmt: str = "+.4f", r: dict[str, Any] = r) -> str:
            v = r.get(key)
            return "—" if v is None else _pd(v, fmt, with_n=key.startswith("ttt"))

        lines.append(
            f"| {r['family']} | `{r['algorithm']}` | {_hp(r['hyperparams'])} | {_fmt(f.mean)} "
            f"[{_fmt(f.ci_low)}, {_fmt(f.ci_high)}] | {d('vs_adam')} | {d('vs_sgd')} | "
            f"{_fmt(t.mean, '.2f')} [{_fmt(t.ci_low, '.2f')}, {_fmt(t.ci_high, '.2f')}] ({r['reached']}) | "
            f"{d('ttt_vs_adam', '+.2f')} | {d('ttt_vs_sgd', '+.2f')} |"
        )
    lines += [
        "",
        "## The race",
        "",
        "| algorithm | family | trials (pruned) | best validation acc | chosen | final seeds |",
        "|---|---|---|---|---|---|",
    ]
    for c in sorted(cands, key=lambda c: (c.family, c.algorithm)):
        if c.skipped:
            lines.append(f"| {c.algorithm} | {c.family} | skipped: {c.skipped} | | | |")
            continue
        b = c.best_trial
        pr = sum(t["state"] == "pruned" for t in c.trials)
        lines.append(
            f"| {c.algorithm} | {c.family} | {len(c.trials)} ({pr}) | {_fmt(b['value']) if b else '—'} | "
            f"{_hp(b['hyperparams']) if b else '—'} | {len(c.finals)} |"
        )
    lines += ["", f"*{TIE_RULE}*"]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += [
        "",
        "## How this was measured",
        "",
        f"- data: {st['data']} ({st['source']}), {st['n_train']} train / {st['n_test']} test samples; model "
        f"{st['model']} {st['model_options'] or ''}; {st['epochs']} epochs per run, batch size {st['batch_size']} "
        "(full batch for algorithms registered so); device " + str(st["device"]) + ".",
        f"- tuning: one Optuna study per algorithm (TPE sampler seeded with {st['seed']}, ASHA pruner on the "
        "validation accuracy of every epoch), log-uniform step size within ×/÷10 of the registered default "
        "(the default itself is trial 0); trials round-robin over the algorithms on a validation split of "
        f"{st['validation_fraction']:.0%} of the training set, for {st['tune_share']:.0%} of the budget.",
        f"- finals: the best algorithm, tuned Adam and SGD, every other family's best, then the next best while "
        f"the time estimate fits; each re-run over up to {st['seeds']} seeds on the full training set, scored on "
        "the test set. The recommendation is the finalist with the best mean test accuracy: a choice among a "
        "few finalists, so read it together with the tie list.",
        f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}.",
        "",
        "Files: `advice.json` (the verdict), `trials.csv` (every tuning trial), `finals.csv` (every final run).",
    ]
    md = write_atomic(out / "advice.md", "\n".join(lines) + "\n")
    write_json(out / "advice.json", {"verdict": verdict, "settings": dict(st), "elapsed_s": elapsed})
    write_html_report(md)
    return json.loads(json.dumps(verdict, default=str)), md
