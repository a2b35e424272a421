"""The report of a sweep folder: tables, performance profiles, curves, sensitivity.

Everything is computed from the stored run records (``runs/*.json``) and the
config saved in ``sweep.json``, so ``beyondsgd report DIR`` can be re-run at any
time, also on a sweep that is still incomplete.
"""

from __future__ import annotations

import io
import math
import platform
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beyondsgd.bench.html import write_html_report
from beyondsgd.bench.io import write_atomic, write_csv
from beyondsgd.bench.plots import _pyplot, plot_metric_grid
from beyondsgd.bench.profiles import performance_ratios, plot_profiles, profile_area
from beyondsgd.bench.stats import best_value, final_value, lower_is_better, metric_range, summarize_values, to_target
from beyondsgd.sweep.store import RunStore

TAU_MAX = 4.0
SUMMARY_COLUMNS = (
    "problem",
    "algorithm",
    "seeds",
    "diverged",
    "failed",
    "metric",
    "final_mean",
    "final_std",
    "final_ci_low",
    "final_ci_high",
    "best_mean",
    "best_std",
    "time_to_target_s_median",
    "epochs_to_target_median",
    "steps_to_target_median",
    "reached",
    "train_time_s_mean",
    "hyperparams",
)


def _fmt(x: float, f: str = ".4f") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, f)


def _hp(hp: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in sorted(hp.items())) or "defaults"


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _median_cost(values: Sequence[float]) -> float:
    """Median over seeds with "never reached" as +inf: finite iff most seeds reached the target."""
    if not values:
        return math.nan
    v = np.array([x if math.isfinite(x) else math.inf for x in values], dtype=float)
    return float(np.median(v)) if np.isfinite(np.median(v)) else math.inf


def _floor_zero(row: Mapping[str, float]) -> dict[str, float]:
    """Make one problem's costs positive for the ratio: a cost of 0 (target met before training)
    becomes the smallest positive cost on that problem, or 1 when every algorithm has 0 (a tie)."""
    pos = [c for c in row.values() if math.isfinite(c) and c > 0]
    floor = min(pos) if pos else 1.0
    return {a: (max(c, floor) if math.isfinite(c) else math.inf) for a, c in row.items()}


def problem_stats(
    records: Sequence[Mapping[str, Any]], metric: str, target: float, level: float = 0.95
) -> dict[str, Any]:
    """Statistics of one (problem, algorithm) over its final-phase seeds."""
    ok = [r for r in records if r["status"] == "ok"]
    hists = [(r["result"]["history"], r["status"]) for r in records if r["status"] != "failed"]
    bounds = metric_range(metric)
    final = summarize_values([final_value(h, metric, s) for h, s in hists], level, bounds)
    best = summarize_values([best_value(h, metric, s) for h, s in hists], level, bounds)

    def tt(x_key):
        return [to_target(h, metric, target, x_key) for h, _ in hists]

    ttt, ett, stt = tt("time_s"), tt("epoch"), tt("step")
    return {
        "seeds": len(records),
        "diverged": sum(r["status"] == "diverged" for r in records),
        "failed": sum(r["status"] == "failed" for r in records),
        "metric": metric,
        "final": final,
        "best": best,
        "time_to_target": _median_cost(ttt),
        "epochs_to_target": _median_cost(ett),
        "steps_to_target": _median_cost(stt),
        "reached": sum(math.isfinite(x) for x in ttt),
        "train_time": summarize_values(
            [r["result"]["history"][-1]["time_s"] for r in ok if r["result"]["history"]]
        ).mean,
        "hyperparams": records[0]["result"].get("hyperparams") or records[0]["task"]["experiment"]["hyperparams"],
        "errors": sorted({r.get("error") for r in records if r.get("error")}),
    }


def _png(fig, path: Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return shrink_png(write_atomic(path, buf.getvalue()))


def shrink_png(path: Path) -> Path:
    """Re-encode a plot as a 256-colour palette PNG (3-4x smaller, no visible change for line plots).

    A sweep report embeds every plot in its HTML page; this keeps a 20-algorithm report
    around a megabyte.  Left as is if Pillow (a matplotlib dependency) is unavailable.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return path
    with Image.open(path) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    q.save(buf, "PNG", optimize=True)
    return write_atomic(path, buf.getvalue())


def plot_sensitivity(
    tune: Mapping[str, list[Mapping[str, Any]]], metric: str, select: str, path: Path, title: str
) -> Path | None:
    """Validation metric against each varied numeric hyperparameter, one panel per (algorithm, hyperparameter).

    Args:
        tune: algorithm -> its tuning records.
        metric: the selection metric (``test_*`` columns of tuning runs hold the validation split).
        select: ``final`` or ``best`` value of each run.
    """
    panels = []
    for alg in sorted(tune):
        recs = tune[alg]
        hps = [r["task"]["experiment"]["hyperparams"] for r in recs]
        for name in sorted({k for h in hps for k in h}):
            vals = [h.get(name) for h in hps]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals) and len(set(vals)) > 1:
                panels.append((alg, name))
    if not panels:
        return None
    plt = _pyplot()
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    pick = final_value if select == "final" else best_value
    for ax, (alg, name) in zip(axes.flat, panels):
        xs: list[float] = []
        ys: list[float] = []
        bad: list[float] = []
        for r in tune[alg]:
            if r["status"] == "pruned":  # stopped early: its last value is not comparable
                continue
            x = float(r["task"]["experiment"]["hyperparams"][name])
            y = pick(r["result"]["history"], metric, r["status"]) if r["status"] != "failed" else math.nan
            (xs if math.isfinite(y) else bad).append(x)
            if math.isfinite(y):
                ys.append(y)
        order = np.argsort(xs)
        ax.plot(np.array(xs)[order], np.array(ys)[order], "o-", ms=4, lw=1)
        if bad:
            lo = min(ys) if ys else 0.0
            ax.plot(bad, [lo] * len(bad), "rx", ms=6, label="diverged/failed")
            ax.legend(fontsize=7, frameon=False)
        pos = [x for x in xs + bad if x > 0]
        if pos and len(pos) == len(xs + bad) and max(pos) / min(pos) > 20:
            ax.set_xscale("log")
        ax.set_title(f"{alg}", fontsize=9)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel(f"validation {metric.split('_', 1)[1]} ({select})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig, path)


def write_report(root: str | Path, level: float = 0.95) -> Path:
    """Write ``summary.csv``, the plots, ``report.md`` and ``report.html`` of the sweep in ``root``.

    Returns:
        The path of ``report.md``.
    """
    root = Path(root)
    store = RunStore(root)
    meta = store.read_meta()
    if meta is None:
        raise ValueError(f"{root} is not a sweep folder (no sweep.json)")
    cfg = meta["config"]
    problems = {p["name"]: p for p in cfg["problems"]}
    select = cfg["search"]["select"]
    tune: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    final: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    n_runs = n_failed = 0  # stored runs of this config (tuning and final)
    for rec in store.records():
        t = rec["task"]
        if t["problem"] not in problems or t["algorithm"] not in cfg["spaces"]:
            continue
        n_runs += 1
        n_failed += rec["status"] == "failed"
        (tune if t["phase"] == "tune" else final)[t["problem"]][t["algorithm"]].append(rec)
    chosen = meta.get("chosen", {})
    for p_, by_alg in final.items():  # only the chosen trial's runs (see sweep.run)
        for a_, recs in by_alg.items():
            if f"{p_}|{a_}" in chosen:
                by_alg[a_] = [r for r in recs if r["task"]["trial"] == chosen[f"{p_}|{a_}"]]
    algs = sorted(cfg["spaces"])
    pnames = list(problems)

    stats: dict[tuple[str, str], dict[str, Any]] = {}
    s: dict[str, Any] | None  # one row of stats (None: not run)
    for p in pnames:
        for a in algs:
            if final[p][a]:
                stats[(p, a)] = problem_stats(final[p][a], problems[p]["target_metric"], problems[p]["target"], level)

    rows = []
    for (p, a), s in stats.items():
        rows.append(
            {
                "problem": p,
                "algorithm": a,
                "seeds": s["seeds"],
                "diverged": s["diverged"],
                "failed": s["failed"],
                "metric": s["metric"],
                "final_mean": s["final"].mean,
                "final_std": s["final"].std,
                "final_ci_low": s["final"].ci_low,
                "final_ci_high": s["final"].ci_high,
                "best_mean": s["best"].mean,
                "best_std": s["best"].std,
                "time_to_target_s_median": s["time_to_target"],
                "epochs_to_target_median": s["epochs_to_target"],
                "steps_to_target_median": s["steps_to_target"],
                "reached": f"{s['reached']}/{s['seeds']}",
                "train_time_s_mean": s["train_time"],
                "hyperparams": _hp(s["hyperparams"]),
            }
        )
    write_csv(root / "summary.csv", rows, SUMMARY_COLUMNS)

    # Performance profiles: cost = median over seeds of time (or epochs) to the problem's target.
    profile_md: list[str] = []
    scores: dict[str, dict[str, float]] = {}
    for label, key, fname in (
        ("training time to target", "time_to_target", "profile_time.png"),
        ("epochs to target", "epochs_to_target", "profile_epochs.png"),
    ):
        costs = {p: {a: stats[(p, a)][key] for a in algs if (p, a) in stats} for p in pnames}
        costs = {p: _floor_zero(row) for p, row in costs.items()}
        if not any(costs.values()):
            continue
        _, palgs, ratios = performance_ratios(costs)
        plot_plots = shrink_png(plot_profiles(ratios, palgs, root / fname, TAU_MAX, f"performance profile: {label}"))
        area = profile_area(ratios, TAU_MAX)
        scores[label] = dict(zip(palgs, area))
        profile_md += [f"![performance profile, {label}]({plot_plots.name})", ""]

    lines = [f"# beyondsgd sweep: {cfg['name']}", ""]
    sessions = meta.get("sessions", [])
    lines += [
        f"- {len(pnames)} problem(s) × {len(algs)} algorithm(s); {n_runs} stored runs ({n_failed} failed); "
        f"hyperparameters chosen by search (method {cfg['search']['method']}"
        + (f", pruner {cfg['search']['pruner']}" if cfg["search"].get("pruner") else "")
        + f", budget {cfg['search']['trials']} trials, "
        f"{cfg['search']['tuning_seeds']} tuning seed(s)) on a validation split of "
        f"{cfg['search']['validation_fraction']:.0%} of the training set, by the {select} validation metric; "
        f"the chosen setting re-run over {cfg['seeds']} seeds on the full training set, evaluated on the test set.",
        f"- mean ± std over seeds; [CI] is the {level:.0%} Student-t confidence interval of the mean; time is "
        "training time only (evaluation excluded); to-target values are medians over seeds, counting a seed "
        "that never reached the target as ∞ (so a finite value means most seeds reached it); `—` = no value.",
        f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}; "
        + "; ".join(
            f"session {i + 1}: {s['backend']} backend, {s.get('workers') or '-'} worker(s) × "
            f"{s['threads']} thread(s), {s['ran']} run(s) executed, {s['skipped']} already stored, "
            f"{len(s['lost'])} lost, {s['wall_s']:.0f} s"
            for i, s in enumerate(sessions)
        ),
    ]
    fams: dict[str, list[str]] = defaultdict(list)
    for a in algs:
        fams[cfg.get("families", {}).get(a, "?")].append(a)
    lines.append("- algorithms by family: " + "; ".join(f"{f}: {', '.join(v)}" for f, v in sorted(fams.items())))
    if cfg.get("skipped"):
        lines.append(
            "- skipped (not available in this installation): "
            + ", ".join(f"`{a}` ({why})" for a, why in sorted(cfg["skipped"].items()))
        )
    lines += [
        "",
        "## Problems",
        "",
        "| problem | data | model | budget | batch | target |",
        "|---|---|---|---|---|---|",
    ]
    for p in pnames:
        pr = problems[p]
        budget = f"{pr['iterations']} iterations" if pr.get("iterations") else f"{pr['epochs']} epochs"
        data = f"{pr['dataset']} {pr['dataset_options'] or ''}"
        if Path(pr["dataset"]).parent == root.resolve() / "data":  # run_sweep(data=...): converted once, stored here
            data = f"your data (`data=`), stored as `data/{Path(pr['dataset']).name}`"
        lines.append(
            f"| {p} | {data} | {pr['model']} {pr['model_options'] or ''} "
            f"| {budget} | {pr['batch_size'] or 'per algorithm'} | {pr['target_metric']} "
            f"{'≤' if lower_is_better(pr['target_metric']) else '≥'} {pr['target']} |"
        )

    lines += [
        "",
        "## Final test metric (algorithms × problems)",
        "",
        "Each cell: mean ± std [95% CI] over seeds of the problem's target metric at the end of the budget; "
        "(d) counts diverged seeds.",
        "",
        "| algorithm | " + " | ".join(f"{p} ({problems[p]['target_metric']})" for p in pnames) + " |",
        "|---" * (len(pnames) + 1) + "|",
    ]
    for a in algs:
        cells = []
        for p in pnames:
            s = stats.get((p, a))
            if s is None:
                cells.append("not run")
                continue
            f = s["final"]
            d = f" ({s['diverged']}d)" if s["diverged"] else ""
            fl = f" ({s['failed']} failed)" if s["failed"] else ""
            cells.append(f"{_fmt(f.mean)} ± {_fmt(f.std)} [{_fmt(f.ci_low)}, {_fmt(f.ci_high)}]{d}{fl}")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "## Time and iterations to target",
        "",
        "Each cell: median training time [s] / epochs / iterations to the problem's target (reached by k of n seeds).",
        "",
        "| algorithm | " + " | ".join(pnames) + " |",
        "|---" * (len(pnames) + 1) + "|",
    ]
    for a in algs:
        cells = []
        for p in pnames:
            s = stats.get((p, a))
            cells.append(
                "not run"
                if s is None
                else f"{_fmt(s['time_to_target'], '.2f')} s / {_fmt(s['epochs_to_target'], '.1f')} ep / "
                f"{_fmt(s['steps_to_target'], '.0f')} it ({s['reached']}/{s['seeds']})"
            )
        lines.append(f"| {a} | " + " | ".join(cells) + " |")

    if scores:
        lines += [
            "",
            "## Performance profiles",
            "",
            "ρ(τ) = fraction of problems on which an algorithm reaches the target within τ times the cost of "
            f"the best algorithm (Dolan & Moré 2002). Score: area under ρ on [1, {TAU_MAX:g}] divided by "
            f"{TAU_MAX - 1:g} (1 = fastest on every problem, 0 = never within {TAU_MAX:g}×). With few problems "
            "the profile is coarse: read it together with the tables.",
            "",
            "| algorithm | " + " | ".join(f"score ({k})" for k in scores) + " |",
            "|---" * (len(scores) + 1) + "|",
        ]
        first = next(iter(scores))
        for a in sorted(algs, key=lambda a: -scores[first].get(a, -1)):
            lines.append(f"| {a} | " + " | ".join(_fmt(scores[k].get(a, math.nan), ".3f") for k in scores) + " |")
        lines += [""] + profile_md

    lines += [
        "## Chosen hyperparameters",
        "",
        "| problem | algorithm | chosen | trials | diverged/failed trials | pruned trials |",
        "|---|---|---|---|---|---|",
    ]
    for p in pnames:
        for a in algs:
            s = stats.get((p, a))
            tr = tune[p][a]
            bad = sum(r["status"] in ("diverged", "failed") for r in tr)
            pruned = sum(r["status"] == "pruned" for r in tr)
            lines.append(
                f"| {p} | {a} | {_hp(s['hyperparams']) if s else '—'} | "
                f"{len({r['task']['trial'] for r in tr}) or 'none (single setting)'} | {bad} | {pruned} |"
            )

    lines += ["", "## Curves", "", "Final runs: mean over seeds, band min–max over seeds.", ""]
    for i, p in enumerate(pnames):
        hist = [row for a in algs for r in final[p][a] if r["status"] != "failed" for row in r["result"]["history"]]
        if not hist:
            continue
        metrics = ("train_loss", "test_loss") + (
            ("test_accuracy",) if problems[p]["target_metric"] != "test_loss" else ()
        )
        f = shrink_png(plot_metric_grid(hist, root / f"curves_{i}.png", "epoch", metrics, title=p, dpi=80))
        lines += [f"![curves of {p}]({f.name})", ""]

    sens = []
    for i, p in enumerate(pnames):
        metric = "test_loss" if problems[p]["target_metric"].endswith("_loss") else "test_accuracy"
        f = plot_sensitivity(
            tune[p],
            metric,
            select,
            root / f"sensitivity_{i}.png",
            f"{p}: hyperparameter sensitivity (tuning runs, validation split)",
        )
        if f:
            sens += [f"![sensitivity on {p}]({f.name})", ""]
    if sens:
        lines += [
            "## Hyperparameter sensitivity",
            "",
            "Each tuning trial's validation metric against the hyperparameter it varied (× = diverged or failed).",
            "",
        ] + sens

    errors = [(p, a, e) for (p, a), s in stats.items() for e in s["errors"]]
    if errors:
        lines += ["## Failed runs", ""] + [f"- {p} / {a}: {e}" for p, a, e in errors] + [""]
    lines += [
        "Files: `summary.csv` (one row per problem and algorithm), `runs/*.json` (every run: task, "
        "hyperparameters, full history), `sweep.json` (the config)."
    ]
    md = write_atomic(root / "report.md", "\n".join(lines) + "\n")
    write_html_report(md)
    return md
