"""The ``beyondsgd`` command: ``list``, ``compare``, ``reproduce``, ``sweep`` and ``report``."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any, Sequence

import torch


def _literal(text: str) -> Any:
    """``"0.1"`` -> 0.1, ``"(0.9, 0.99)"`` -> tuple, ``"true"`` -> True, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _key_values(items: Sequence[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"invalid {flag} {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = _literal(value)
    return out


def _hyperparams(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["sgd.lr=0.1", "adam.betas=(0.9,0.99)"]`` -> ``{"sgd": {"lr": 0.1}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in _key_values(items, "--set").items():
        if "." not in key:
            raise ValueError(f"invalid --set {key!r}: expected ALGORITHM.HYPERPARAMETER=VALUE, e.g. sgd.lr=0.1")
        alg, name = key.split(".", 1)
        out.setdefault(alg.lower(), {})[name] = value
    return out


def _batch_size(text: str) -> int | str:
    if text == "full":
        return "full"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beyondsgd",
        description="Train neural networks with algorithms beyond plain SGD and compare them.",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("list", help="list algorithms, datasets, models and reproductions")

    c = sub.add_parser("compare", help="run algorithms on one problem over several seeds and write a report")
    c.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    c.add_argument("--model", default="mlp", help="model name (default: mlp)")
    c.add_argument("--algorithms", default=None,
                   help="comma-separated algorithm names (default: every registered algorithm)")
    c.add_argument("--seeds", type=int, default=3, help="number of seeds (default: 3)")
    c.add_argument("--epochs", type=int, default=20, help="epochs per run (default: 20)")
    c.add_argument("--batch-size", type=_batch_size, default=None,
                   help="batch size for every algorithm, or 'full' (default: each algorithm's preference, else 64)")
    c.add_argument("--n-train", type=int, default=None, help="use a deterministic subsample of the training set")
    c.add_argument("--target-accuracy", type=float, default=0.9, help="accuracy for time-to-target (default: 0.9)")
    c.add_argument("--set", dest="hp", action="append", default=[], metavar="ALG.NAME=VALUE",
                   help="override a hyperparameter, e.g. --set sgd.lr=0.1 (repeatable)")
    c.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --model-option widths=(256,256) --model-option activation=tanh")
    c.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, e.g. --data-option unit_norm=True")
    c.add_argument("--out", default="compare-results", help="output folder (default: ./compare-results)")
    c.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")

    r = sub.add_parser("reproduce", help="reproduce a paper's experiments")
    r.add_argument("name", help="which paper (see `beyondsgd list`)")
    r.add_argument("--quick", action="store_true", help="the small, CI-sized version (under a minute)")
    r.add_argument("--out", default=None, help="output folder (default: ./reproduce-NAME)")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    r.add_argument("--data-dir", default=None, help="where downloadable datasets are cached")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")

    s = sub.add_parser("sweep", help="tune algorithms on several problems, re-run the best over seeds, report")
    s.add_argument("config", nargs="?", default=None, help="sweep config (.yaml/.yml or .toml); see docs/benchmarks.md")
    s.add_argument("--suite", default=None, help="a built-in suite instead of a config file: small")
    s.add_argument("--out", default=None, help="sweep folder (default: ./sweep-NAME)")
    s.add_argument("--resume", action="store_true", help="continue the sweep in --out, skipping finished runs")
    s.add_argument("--retry-failed", action="store_true", help="with --resume: also re-run runs that failed")
    s.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="local worker processes (default) or a Ray cluster")
    s.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    s.add_argument("--threads-per-worker", type=int, default=None,
                   help="torch threads per run (default: cores // workers)")
    s.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local instance)")
    s.add_argument("--quiet", action="store_true", help="no line per finished run")
    s.add_argument("--no-report", action="store_true", help="only run; write the report later with `beyondsgd report`")

    rp = sub.add_parser("report", help="(re)write report.md and the self-contained report.html of a results folder")
    rp.add_argument("dir", help="a sweep folder, or any folder with a report.md (compare, reproduce)")
    return parser


def _cmd_list() -> None:
    from beyondsgd.bench import algorithm_info, available_algorithms
    from beyondsgd.bench.reproductions import available_reproductions, get_reproduction
    from beyondsgd.data import available_datasets, dataset_description
    from beyondsgd.models import available_models, model_description

    print("Algorithms (beyondsgd compare --algorithms a,b,...):")
    for name in available_algorithms():
        info = algorithm_info(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items())
        print(f"  {name:<14} [{info.family}] {info.description}" + (f" (defaults: {defaults})" if defaults else ""))
    print("\nDatasets (--dataset):")
    for name in available_datasets():
        print(f"  {name:<14} {dataset_description(name)}")
    print("\nModels (--model):")
    for name in available_models():
        print(f"  {name:<14} {model_description(name)}")
    print("\nReproductions (beyondsgd reproduce NAME):")
    names = available_reproductions()
    for name in names:
        print(f"  {name:<14} {get_reproduction(name).description}")
    if not names:
        print("  (none yet)")


def _cmd_compare(args: argparse.Namespace) -> None:
    from beyondsgd.bench.compare import CompareConfig, run_compare
    from beyondsgd.bench.report import markdown_table

    data_options = _key_values(args.data_option, "--data-option")
    if args.n_train is not None:
        data_options["n_train"] = args.n_train
    cfg = CompareConfig(
        dataset=args.dataset,
        model=args.model,
        algorithms=[a.strip() for a in args.algorithms.split(",") if a.strip()] if args.algorithms else None,
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hyperparams=_hyperparams(args.hp),
        target_accuracy=args.target_accuracy,
        dataset_options=data_options,
        model_options=_key_values(args.model_option, "--model-option"),
        out=args.out,
        device=args.device,
    )
    out = run_compare(cfg, progress=False if args.no_progress else None)
    print(markdown_table(out.summary, cfg.target_accuracy))
    for alg, seed, msg in out.failures:
        print(f"failed: {alg} seed {seed}: {msg}", file=sys.stderr)
    print(f"wrote {out.out / 'report.md'}, {out.out / 'results.csv'} and plots in {out.out}/")


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from beyondsgd.bench.reproductions import ReproduceContext, get_reproduction
    from beyondsgd.device import resolve_device

    repro = get_reproduction(args.name)
    out = Path(args.out or f"reproduce-{args.name}")
    out.mkdir(parents=True, exist_ok=True)
    ctx = ReproduceContext(
        out=out, quick=args.quick, device=resolve_device(args.device),
        progress=not args.no_progress and sys.stderr.isatty(),
        data_dir=Path(args.data_dir) if args.data_dir else None,
    )
    report = Path(repro.run(ctx))
    if report.suffix == ".md" and report.is_file():
        from beyondsgd.bench.html import write_html_report

        print(f"wrote {report} and {write_html_report(report)}")
    else:
        print(f"wrote {report}")


def _cmd_sweep(args: argparse.Namespace) -> None:
    from beyondsgd.bench.suites import suite_config
    from beyondsgd.bench.sweep import load_config, parse_config
    from beyondsgd.bench.sweep_run import run_sweep

    if (args.config is None) == (args.suite is None):
        raise ValueError("give either a CONFIG file or --suite NAME (not both)")
    for flag in ("workers", "threads_per_worker"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"invalid --{flag.replace('_', '-')} {value}: expected a positive integer")
    cfg = parse_config(suite_config(args.suite)) if args.suite else load_config(args.config)
    if args.retry_failed and not args.resume:
        raise ValueError("--retry-failed only makes sense with --resume")
    out = run_sweep(cfg, args.out or f"sweep-{cfg.name}", backend=args.backend, workers=args.workers,
                    threads=args.threads_per_worker, resume=args.resume, retry_failed=args.retry_failed,
                    ray_address=args.ray_address, verbose=not args.quiet,
                    report=not args.no_report)
    wrote = f"wrote {out.report} and {out.report.with_suffix('.html')}" if out.report else f"results in {out.out}"
    print(f"{out.ran} run(s) executed, {out.skipped} already stored, {len(out.lost)} lost; {wrote}")
    if out.lost:
        print("some runs were lost to crashed workers; run again with --resume to retry them", file=sys.stderr)


def _cmd_report(args: argparse.Namespace) -> None:
    from beyondsgd.bench.html import write_html_report

    root = Path(args.dir)
    if (root / "sweep.json").is_file():
        from beyondsgd.bench.sweep_report import write_report

        md = write_report(root)
    elif (root / "report.md").is_file():
        md = root / "report.md"
    else:
        raise ValueError(f"{root} has neither sweep.json (a sweep) nor report.md (compare/reproduce)")
    print(f"wrote {md} and {write_html_report(md)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``beyondsgd`` console script; returns the exit code."""
    from beyondsgd.data import DatasetUnavailableError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"invalid --threads {args.threads}: expected a positive integer")
        torch.set_num_threads(args.threads)
    try:
        if args.command == "list":
            _cmd_list()
        elif args.command == "compare":
            _cmd_compare(args)
        elif args.command == "reproduce":
            _cmd_reproduce(args)
        elif args.command == "sweep":
            _cmd_sweep(args)
        elif args.command == "report":
            _cmd_report(args)
    except (ValueError, ImportError, DatasetUnavailableError) as err:
        print(f"beyondsgd: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("beyondsgd: interrupted; files written so far are complete and kept"
              + (" (continue with --resume)" if args.command == "sweep" else ""), file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
