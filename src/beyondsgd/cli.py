"""The ``beyondsgd`` command: ``list``, ``compare``, ``reproduce``, ``sweep`` and ``report``.

Launched by torchrun (``torchrun --nproc_per_node=N -m beyondsgd compare ...``)
the command joins the process group and runs data-parallel; rank 0 prints and
writes the results, the other ranks write nothing.
"""

from __future__ import annotations

import argparse
import ast
import os
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
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
    c.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
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
    c.add_argument("--out", default="compare-results", help="output folder (default: ./compare-results)")
    c.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    c.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="checkpoint each run every N epochs under OUT/checkpoints; rerunning resumes",
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
    s.add_argument("--quiet", action="store_true", help="no line per finished run")
    s.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="each run also checkpoints every N epochs under OUT/checkpoints; --resume continues it",
    )
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
    from beyondsgd.distributed import is_main

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
        checkpoint_every=args.checkpoint_every,
    )
    out = run_compare(cfg, progress=False if args.no_progress else None)
    if not is_main():
        return
    print(markdown_table(out.summary, cfg.target_accuracy))
    for alg, seed, msg in out.failures:
        print(f"failed: {alg} seed {seed}: {msg}", file=sys.stderr)
    print(f"wrote {out.out / 'report.md'}, {out.out / 'results.csv'} and plots in {out.out}/")


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from beyondsgd.bench.reproductions import ReproduceContext, get_reproduction
    from beyondsgd.device import resolve_device
    from beyondsgd.distributed import is_distributed, is_main, rank
    from beyondsgd.validation import POSITIVE_INT

    repro = get_reproduction(args.name)
    if args.checkpoint_every is not None:
        POSITIVE_INT.check("checkpoint_every", args.checkpoint_every)
        if not repro.checkpoints:
            from beyondsgd.bench.reproductions import available_reproductions

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
    )
    out.mkdir(parents=True, exist_ok=True)
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
    )
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
    from beyondsgd import distributed as dist
    from beyondsgd.data import DatasetUnavailableError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            parser.error(f"invalid --threads {args.threads}: expected a positive integer")
        torch.set_num_threads(args.threads)
    if getattr(args, "dist_timeout", None) is not None and not args.dist_timeout > 0:
        parser.error(f"invalid --dist-timeout {args.dist_timeout}: expected a number of seconds > 0")
    owns_group = False  # leave a process group the caller created alone
    try:
        if args.command in ("sweep", "report") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError(
                f"'beyondsgd {args.command}' runs its own worker processes (--backend local|ray); "
                "launch it without torchrun"
            )
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
    except KeyboardInterrupt:
        print(
            "beyondsgd: interrupted; files written so far are complete and kept"
            + (" (continue with --resume)" if args.command == "sweep" else ""),
            file=sys.stderr,
        )
        return 130
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
