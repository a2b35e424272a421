"""The ``beyondsgd`` command: ``list``, ``compare``, ``reproduce``, ``sweep``, ``advise`` and ``report``.

Launched by torchrun (``torchrun --nproc_per_node=N -m beyondsgd compare ...``)
the command joins the process group and runs data-parallel; rank 0 prints and
writes the results, the other ranks write nothing.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        key = key.strip()
        if key in out:  # (silently keeping the last one hid typos in long command lines)
            raise ValueError(f"invalid {flag} {key}={value}: {key} is already set to {out[key]!r}; give it once")
        out[key] = _literal(value)
    return out


def _hyperparams(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["sgd.lr=0.1", "adam.betas=(0.9,0.99)"]`` -> ``{"sgd": {"lr": 0.1}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in _key_values(items, "--set").items():
        if "." not in key:
            raise ValueError(f"invalid --set {key!r}: expected ALGORITHM.HYPERPARAMETER=VALUE, e.g. sgd.lr=0.1")
        alg, name = key.split(".", 1)
        if name in out.setdefault(alg.lower(), {}):  # (SGD.lr and sgd.lr are the same key)
            raise ValueError(f"invalid --set {key}: {alg.lower()}.{name} is already set; give it once")
        out[alg.lower()][name] = value
    return out


def _batch_size(text: str) -> int | str:
    if text == "full":
        return "full"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None


def _threads(text: str) -> int | str:
    from beyondsgd.bench.threads import parse_threads

    try:
        return parse_threads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class Parser(argparse.ArgumentParser):
    """``argparse`` that never takes an option for an abbreviation of another and suggests the closest option.

    Abbreviations are off (``allow_abbrev=False``): ``--target diagnosis`` must not
    silently become ``--target-accuracy diagnosis``. An unknown option is answered
    with the closest valid one of the same command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def option_names(self) -> list[str]:
        return [o for a in self._actions for o in a.option_strings if o.startswith("--")]

    def suggest(self, token: str) -> str | None:
        """The valid option closest to ``token`` (``None`` if none is close)."""
        flag = token.split("=", 1)[0]
        names = self.option_names()
        prefixed = [n for n in names if n.startswith(flag)] if flag.startswith("--") and len(flag) > 2 else []
        if len(prefixed) == 1:
            return prefixed[0]
        close = difflib.get_close_matches(flag, names, n=1, cutoff=0.6)
        return close[0] if close else None

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            target: Parser = self
            command = getattr(ns, "command", None)
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                    target = action.choices[command]
            hints = []
            for tok in extras:
                if tok.startswith("-"):
                    best = target.suggest(tok)
                    if best:
                        hints.append(f"{tok.split('=', 1)[0]} -> did you mean {best}?")
            message = f"unrecognized arguments: {' '.join(extras)}"
            if hints:
                message += " (" + "; ".join(hints) + ")"
            target.error(message)
        return ns


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="beyondsgd",
        description="Train neural networks with algorithms beyond plain SGD and compare them.",
    )
    from beyondsgd import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = Parser(add_help=False)
    common.add_argument(
        "--threads",
        type=_threads,
        default="auto",
        metavar="N|auto",
        help="torch CPU threads per run. auto (default): compare uses 1 thread for small runs "
        "(parameters x batch < 5e7) or parallel ranks, else the idle cores; reproduce keeps torch's choice",
    )
    common.add_argument(
        "--dist-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="under torchrun: how long a rank waits for the others before failing "
        "(default: $BEYONDSGD_DIST_TIMEOUT, else 300)",
    )

    sub.add_parser("list", help="list algorithms, datasets, models and reproductions")

    c = sub.add_parser(
        "compare", parents=[common], help="run algorithms on one problem over several seeds and write a report"
    )
    c.add_argument(
        "--dataset",
        default="digits",
        metavar="NAME|FILE",
        help="dataset name, or your own .csv/.npz/.pt file (default: digits); see docs/own-data.md",
    )
    c.add_argument(
        "--target",
        default=None,
        metavar="COLUMN",
        help="with a .csv --dataset: the label column (default: the last column)",
    )
    c.add_argument(
        "--task",
        default=None,
        choices=("classification", "regression"),
        help="with a file --dataset: classification (default; labels of any type) or regression (numeric target)",
    )
    c.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        metavar="F",
        help="with a file holding one unsplit set: share held out for testing, stratified, seed 0 (default: 0.2)",
    )
    c.add_argument("--model", default="mlp", help="model name (default: mlp)")
    c.add_argument(
        "--algorithms", default=None, help="comma-separated algorithm names (default: every registered algorithm)"
    )
    c.add_argument("--seeds", type=int, default=3, help="number of seeds (default: 3)")
    c.add_argument("--epochs", type=int, default=20, help="epochs per run (default: 20)")
    c.add_argument(
        "--batch-size",
        type=_batch_size,
        default=None,
        help="batch size for every algorithm, or 'full' (default: each algorithm's preference, else 64)",
    )
    c.add_argument("--n-train", type=int, default=None, help="use a deterministic subsample of the training set")
    c.add_argument("--target-accuracy", type=float, default=0.9, help="accuracy for time-to-target (default: 0.9)")
    c.add_argument(
        "--set",
        dest="hp",
        action="append",
        default=[],
        metavar="ALG.NAME=VALUE",
        help="override a hyperparameter, e.g. --set sgd.lr=0.1 (repeatable)",
    )
    c.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. --model-option widths=(256,256) --model-option activation=tanh",
    )
    c.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset option, e.g. --data-option unit_norm=True",
    )
    c.add_argument(
        "--out",
        default="compare-results",
        help="output folder (default: ./compare-results); rerunning the same command there trains only "
        "the runs that have not finished",
    )
    c.add_argument(
        "--overwrite", action="store_true", help="delete the results of a different comparison found in --out"
    )
    c.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    c.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="also checkpoint each run every N epochs under OUT/checkpoints, so an interrupted run resumes mid-way",
    )
    c.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the checkpoints of finished runs (default: deleted once the run's results are written)",
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bars")

    r = sub.add_parser("reproduce", parents=[common], help="reproduce a paper's experiments")
    r.add_argument("name", help="which paper (see `beyondsgd list`)")
    r.add_argument("--quick", action="store_true", help="the small, CI-sized version (under a minute)")
    r.add_argument("--out", default=None, help="output folder (default: ./reproduce-NAME)")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    r.add_argument("--data-dir", default=None, help="where downloadable datasets are cached")
    r.add_argument(
        "--dataset",
        default=None,
        help="run on this dataset only, e.g. fashion-mnist (the real files, no stand-in); default: the "
        "reproduction's list",
    )
    r.add_argument(
        "--preset",
        default="default",
        choices=("default", "paper"),
        help="default: sized for a 2-core CPU; paper: full datasets and the papers' widths (for a GPU)",
    )
    r.add_argument(
        "--seeds", type=int, default=None, help="seeds per headline comparison (default: 5 full, 2 with --quick)"
    )
    r.add_argument(
        "--activation",
        default=None,
        help="run with this activation only, e.g. leaky_relu (reproductions that offer it: tiam); default: the "
        "reproduction's list",
    )
    r.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="checkpoint each training run every N epochs under OUT/checkpoints; rerunning the same "
        "command resumes (reproductions whose runs go through the runner)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bars")

    s = sub.add_parser("sweep", help="tune algorithms on several problems, re-run the best over seeds, report")
    s.add_argument("config", nargs="?", default=None, help="sweep config (.yaml/.yml or .toml); see docs/benchmarks.md")
    s.add_argument("--suite", default=None, help="a built-in suite instead of a config file: small")
    s.add_argument("--out", default=None, help="sweep folder (default: ./sweep-NAME)")
    s.add_argument("--resume", action="store_true", help="continue the sweep in --out, skipping finished runs")
    s.add_argument("--retry-failed", action="store_true", help="with --resume: also re-run runs that failed")
    s.add_argument(
        "--backend", default="local", choices=("local", "ray"), help="local worker processes (default) or a Ray cluster"
    )
    s.add_argument("--workers", type=int, default=None, help="local worker processes (default: one per core)")
    s.add_argument(
        "--threads-per-worker", type=int, default=None, help="torch threads per run (default: cores // workers)"
    )
    s.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local instance)")
    s.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="search method tpe: the Optuna study database shared by every process given the same URL "
        "(sqlite:///PATH, postgresql://USER@HOST/DB, journal:PATH; default: OUT/optuna.db)",
    )
    s.add_argument("--quiet", action="store_true", help="no line per finished run")
    s.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="each run also checkpoints every N epochs under OUT/checkpoints; --resume continues it",
    )
    s.add_argument("--no-report", action="store_true", help="only run; write the report later with `beyondsgd report`")

    a = sub.add_parser(
        "advise", help="which method should I use on this data? race every family within a time budget, report"
    )
    a.add_argument(
        "--dataset", default="digits", help="dataset name (default: digits; see `beyondsgd list`) or data file path"
    )
    a.add_argument("--model", default="mlp", help="model name (default: mlp)")
    a.add_argument("--budget", default="10m", help="wall-clock budget: seconds or 90s, 10m, 1h (default: 10m)")
    a.add_argument("--out", default="advise-results", help="report folder (default: ./advise-results)")
    a.add_argument("--algorithms", default=None, help="comma-separated algorithms to race (default: all)")
    a.add_argument(
        "--families",
        default=None,
        help="comma-separated families to race, e.g. baseline,momentum,tiam (a family's first word, or a prefix "
        "of one family, in any case; default: all)",
    )
    a.add_argument("--epochs", type=int, default=20, help="epochs per run (default: 20)")
    a.add_argument("--batch-size", type=_batch_size, default=64, help="batch size, or 'full' (default: 64)")
    a.add_argument("--n-train", type=int, default=None, help="use a deterministic subsample of the training set")
    a.add_argument("--seeds", type=int, default=5, help="seeds per finalist, at least 5 (default: 5)")
    a.add_argument("--target-accuracy", type=float, default=None, help="accuracy for time-to-target")
    a.add_argument("--seed", type=int, default=0, help="seeds the TPE samplers (default: 0)")
    a.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    a.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE", help="model option")
    a.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE", help="dataset option")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")

    rp = sub.add_parser("report", help="(re)write report.md and the self-contained report.html of a results folder")
    rp.add_argument(
        "dir", help="a sweep or compare folder (also a partial one), or any folder with a report.md (reproduce)"
    )
    return parser


def _cmd_list() -> None:
    from beyondsgd.algorithms import algorithm_info, available_algorithms
    from beyondsgd.data import available_datasets, dataset_description, dataset_origin
    from beyondsgd.models import available_models, model_description, model_origin
    from beyondsgd.reproduce import available_reproductions, get_reproduction

    print("Algorithms (beyondsgd compare --algorithms a,b,...):")
    for name in available_algorithms():
        info = algorithm_info(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items())
        print(f"  {name:<14} [{info.family}] {info.description}" + (f" (defaults: {defaults})" if defaults else ""))
    print("\nDatasets (--dataset NAME, or --dataset FILE.csv|.npz|.pt):")
    for name in available_datasets():
        origin = dataset_origin(name)
        print(f"  {name:<14} {dataset_description(name)}" + ("" if origin == "built-in" else f" [{origin}]"))
    print("\nModels (--model):")
    for name in available_models():
        origin = model_origin(name)
        print(f"  {name:<14} {model_description(name)}" + ("" if origin == "built-in" else f" [{origin}]"))
    print("\nReproductions (beyondsgd reproduce NAME):")
    names = available_reproductions()
    for name in names:
        print(f"  {name:<14} {get_reproduction(name).description}")
    if not names:
        print("  (none yet)")


def _cmd_compare(args: argparse.Namespace) -> None:
    from beyondsgd.bench.compare import CompareConfig, run_compare
    from beyondsgd.bench.report import markdown_table
    from beyondsgd.data.files import looks_like_path
    from beyondsgd.distributed import is_main

    data_options = _key_values(args.data_option, "--data-option")
    if args.n_train is not None:
        data_options["n_train"] = args.n_train
    for flag, key in (("target", "target"), ("task", "task"), ("test_fraction", "test_fraction")):
        value = getattr(args, flag)
        if value is None:
            continue
        if not looks_like_path(args.dataset):
            raise ValueError(
                f"--{flag.replace('_', '-')} applies to a data file (--dataset FILE.csv|.npz|.pt), "
                f"not to the dataset {args.dataset!r}"
            )
        data_options[key] = value
    cfg = CompareConfig(
        dataset=args.dataset,
        model=args.model,
        algorithms=[a.strip() for a in args.algorithms.split(",") if a.strip()]
        if args.algorithms is not None
        else None,
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hyperparams=_hyperparams(args.hp),
        target_accuracy=args.target_accuracy,
        dataset_options=data_options,
        model_options=_key_values(args.model_option, "--model-option"),
        out=args.out,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        overwrite=args.overwrite,
        threads=args.threads,
    )
    try:
        out = run_compare(cfg, progress=False if args.no_progress else None)
    except KeyboardInterrupt:
        if is_main() and (Path(cfg.out) / "report.md").is_file():
            print(f"beyondsgd: partial report of the finished runs in {Path(cfg.out) / 'report.md'}", file=sys.stderr)
        raise
    if not is_main():
        return
    from beyondsgd.bench.report import report_metric

    print(markdown_table(out.summary, cfg.target_accuracy, report_metric(_task_of(out))))
    for alg, seed, msg in out.failures:
        print(f"failed: {alg} seed {seed}: {msg}", file=sys.stderr)
    if out.reused:
        print(f"reused {out.reused} finished run(s) found in {out.out}/; trained {len(out.results) - out.reused}")
    print(f"wrote {out.out / 'report.md'}, {out.out / 'results.csv'} and plots in {out.out}/")


def _task_of(out: Any) -> str:
    import json

    try:
        return json.loads((out.out / "compare.json").read_text())["data"]["task"]
    except (OSError, ValueError, KeyError):
        return "classification"


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from beyondsgd.device import resolve_device
    from beyondsgd.distributed import is_distributed, is_main, rank
    from beyondsgd.reproduce import ReproduceContext, get_reproduction
    from beyondsgd.validation import POSITIVE_INT

    repro = get_reproduction(args.name)
    if args.activation is not None and args.activation not in repro.activations:
        if not repro.activations:
            from beyondsgd.reproduce import available_reproductions

            able = [n for n in available_reproductions() if get_reproduction(n).activations]
            raise ValueError(
                f"reproduction {args.name!r} has no --activation option; it is offered by: {', '.join(able)}"
            )
        raise ValueError(
            f"invalid --activation {args.activation!r} for reproduction {args.name!r}: expected one of "
            f"{', '.join(repro.activations)}"
        )
    if args.checkpoint_every is not None:
        POSITIVE_INT.check("checkpoint_every", args.checkpoint_every)
        if not repro.checkpoints:
            from beyondsgd.reproduce import available_reproductions

            able = [n for n in available_reproductions() if get_reproduction(n).checkpoints]
            raise ValueError(
                f"reproduction {args.name!r} runs its own training loops and cannot resume from "
                f"checkpoints; --checkpoint-every works for: {', '.join(able)}"
            )
        if is_distributed():
            raise ValueError(
                "--checkpoint-every is not supported for reproduce under torchrun "
                "(the other ranks write to scratch folders); use it in a single process"
            )
    if not is_main():
        # Every rank runs the reproduction (its runs are data-parallel); rank 0's files are the
        # result, the others' identical copies go to a scratch folder that is deleted.
        with tempfile.TemporaryDirectory(prefix=f"beyondsgd-rank{rank()}-") as scratch:
            repro.run(
                ReproduceContext(
                    out=Path(scratch),
                    quick=args.quick,
                    device=resolve_device(args.device),
                    progress=False,
                    data_dir=Path(args.data_dir) if args.data_dir else None,
                    dataset=args.dataset,
                    preset=args.preset,
                    seeds=args.seeds,
                    activation=args.activation,
                )
            )
        return
    out = Path(args.out or f"reproduce-{args.name}")
    ctx = ReproduceContext(  # validated before anything is created
        out=out,
        quick=args.quick,
        device=resolve_device(args.device),
        progress=not args.no_progress and sys.stderr.isatty(),
        data_dir=Path(args.data_dir) if args.data_dir else None,
        checkpoint_every=args.checkpoint_every,
        dataset=args.dataset,
        preset=args.preset,
        seeds=args.seeds,
        activation=args.activation,
    )
    out.mkdir(parents=True, exist_ok=True)
    report = Path(repro.run(ctx))
    if report.suffix == ".md" and report.is_file():
        from beyondsgd.bench.html import write_html_report

        print(f"wrote {report} and {write_html_report(report)}")
    else:
        print(f"wrote {report}")


def _cmd_sweep(args: argparse.Namespace) -> None:
    from beyondsgd.sweep.config import load_config, parse_config
    from beyondsgd.sweep.run import run_sweep
    from beyondsgd.sweep.suites import suite_config

    if (args.config is None) == (args.suite is None):
        raise ValueError("give either a CONFIG file or --suite NAME (not both)")
    for flag in ("workers", "threads_per_worker"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"invalid --{flag.replace('_', '-')} {value}: expected a positive integer")
    cfg = parse_config(suite_config(args.suite)) if args.suite else load_config(args.config)
    if args.retry_failed and not args.resume:
        raise ValueError("--retry-failed only makes sense with --resume")
    out = run_sweep(
        cfg,
        args.out or f"sweep-{cfg.name}",
        backend=args.backend,
        workers=args.workers,
        threads=args.threads_per_worker,
        resume=args.resume,
        retry_failed=args.retry_failed,
        ray_address=args.ray_address,
        verbose=not args.quiet,
        report=not args.no_report,
        checkpoint_every=args.checkpoint_every,
        storage=args.storage,
    )
    wrote = f"wrote {out.report} and {out.report.with_suffix('.html')}" if out.report else f"results in {out.out}"
    print(f"{out.ran} run(s) executed, {out.skipped} already stored, {len(out.lost)} lost; {wrote}")
    if out.lost:
        print("some runs were lost to crashed workers; run again with --resume to retry them", file=sys.stderr)


def _cmd_advise(args: argparse.Namespace) -> int:
    from beyondsgd.advise import advise

    data_options = _key_values(args.data_option, "--data-option")
    if args.n_train is not None:
        data_options["n_train"] = args.n_train

    def names(text: str | None) -> list[str] | None:
        return [x.strip() for x in text.split(",") if x.strip()] if text else None

    res = advise(
        args.dataset,
        args.model,
        args.budget,
        args.out,
        algorithms=names(args.algorithms),
        families=names(args.families),
        epochs=args.epochs,
        batch_size=args.batch_size,
        model_options=_key_values(args.model_option, "--model-option"),
        dataset_options=data_options,
        seeds=args.seeds,
        target_accuracy=args.target_accuracy,
        seed=args.seed,
        device=args.device,
        progress=False if args.no_progress else None,
    )
    text = res.report.read_text()
    verdict = text.split("## Verdict", 1)[1].split("\n## ", 1)[0].strip()
    print(verdict)
    print(f"wrote {res.report} and {res.report.with_suffix('.html')} ({res.elapsed_s:.0f} s of {res.budget_s:.0f} s)")
    if res.interrupted:
        print("beyondsgd: interrupted; the report covers the runs that finished", file=sys.stderr)
        return 130
    return 0


def _cmd_report(args: argparse.Namespace) -> None:
    from beyondsgd.bench.html import write_html_report

    root = Path(args.dir)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    if (root / "sweep.json").is_file():
        from beyondsgd.sweep.report import write_report

        md = write_report(root)
    elif (root / "compare.json").is_file():
        from beyondsgd.bench.compare import rewrite_report

        md = rewrite_report(root)
    elif (root / "report.md").is_file():
        md = root / "report.md"
    else:
        raise ValueError(f"{root} has neither sweep.json (a sweep) nor report.md (compare/reproduce)")
    print(f"wrote {md} and {write_html_report(md)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``beyondsgd`` console script; returns the exit code."""
    from beyondsgd import distributed as dist
    from beyondsgd.data import DatasetUnavailableError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command != "compare" and isinstance(getattr(args, "threads", None), int):
        torch.set_num_threads(args.threads)  # compare chooses per comparison (see beyondsgd.bench.threads)
    if getattr(args, "dist_timeout", None) is not None and not args.dist_timeout > 0:
        parser.error(f"invalid --dist-timeout {args.dist_timeout}: expected a number of seconds > 0")
    owns_group = False  # leave a process group the caller created alone
    try:
        if args.command in ("sweep", "report", "advise") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            how = (
                "runs in one process"
                if args.command == "advise"
                else "runs its own worker processes (--backend local|ray)"
            )
            raise ValueError(f"'beyondsgd {args.command}' {how}; launch it without torchrun")
        if args.command in ("compare", "reproduce") and not dist.is_initialized():
            owns_group = dist.init_from_env(timeout_s=args.dist_timeout)
        if dist.is_distributed() and dist.is_main():
            print(
                f"beyondsgd: data-parallel on {dist.world_size()} ranks ({torch.distributed.get_backend()})",
                file=sys.stderr,
            )
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
        elif args.command == "advise":
            code = _cmd_advise(args)
            if code:
                return code
        if owns_group:
            # Leave together: a rank that tears its group down while rank 0 is still writing
            # results can abort in the backend's teardown ("terminate called without an active
            # exception", seen with gloo under load) and make torchrun report a failed run.
            dist.barrier()
    except dist.RankFailure as err:
        print(f"beyondsgd: error: {err}", file=sys.stderr)
        return 1
    except torch.distributed.DistError as err:  # raised inside DDP's backward, not by our collectives
        print(
            f"beyondsgd: error: {_on_rank(err)} — a collective failed: another rank probably died "
            "or timed out; look at the other ranks' output for the first error",
            file=sys.stderr,
        )
        return 1
    except (ValueError, ImportError, DatasetUnavailableError) as err:
        print(f"beyondsgd: error: {_on_rank(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # a file that cannot be read or written: say which, no traceback
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        print(f"beyondsgd: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(
            "beyondsgd: interrupted; files written so far are complete and kept"
            + (" (continue with --resume)" if args.command == "sweep" else "")
            + (" (run the same command again to train only the missing runs)" if args.command == "compare" else ""),
            file=sys.stderr,
        )
        # 128 + the signal, as a shell reports a process it stopped: 130 for Ctrl-C, 143 for SIGTERM.
        return 128 + getattr(err, "signum", signal.SIGINT)
    finally:
        if owns_group:
            dist.shutdown()
    return 0


def _on_rank(err: BaseException) -> str:
    """Prefix the rank when several ranks print (each rank reports its own error)."""
    from beyondsgd import distributed as dist

    return f"(rank {dist.rank()}) {err}" if dist.is_distributed() else str(err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
