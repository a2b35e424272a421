"""Scaling of one training epoch from 1 to 2 processes (DDP, gloo) on this machine.

For a gradient optimizer (SGD by default) on an MLP, per batch size:

* 1 process x 1 thread, 1 process x N threads (the fair single-process baseline on
  an N-core machine), and N processes x 1 thread under DistributedDataParallel;
* the communication share of the data-parallel epoch, estimated as
  ``1 - t(no_sync) / t(sync)``: the same epoch with DDP's gradient all-reduce
  switched off (``DistributedDataParallel.no_sync``; the scalar loss all-reduce
  remains), so the difference is the time spent all-reducing gradients;
* the all-reduce volume per step (parameters x 4 bytes).

Times are the median of ``--repeats`` epochs after one warm-up epoch, training only.

For TIAM (``--tiam-widths``; ``--skip-tiam`` to leave it out): one full-batch outer
iteration (= one epoch) on the same data, 1 process x 1 thread vs N processes x 1
thread (each rank holds the z, a of its samples), with the number of all-reduce
calls and floats per outer iteration and the share of the iteration spent inside
them (counted by wrapping :func:`beyondsgd.distributed.all_reduce_sum` /
``all_reduce_max``; it includes waiting for the slower rank).

Usage::

    PYTHONPATH=src python benchmarks/bench_distributed.py [--dataset mnist5k] [--widths 256,256]
        [--batch-sizes 64,512] [--procs 2] [--repeats 3] [--optimizer sgd] [--tiam-widths 256,256]
        [--skip-sgd] [--skip-tiam]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _epoch_times(
    dataset: str, widths: tuple[int, ...], batch_size: int, optimizer: str, repeats: int, no_sync: bool
) -> dict:
    from contextlib import nullcontext

    from beyondsgd import distributed as dist
    from beyondsgd import optim
    from beyondsgd.bench.runner import BatchSampler
    from beyondsgd.data import load_dataset
    from beyondsgd.models import create_model
    from beyondsgd.training.trainer import GradientTrainer

    data = load_dataset(dataset, seed=0)
    torch.manual_seed(0)
    model = create_model("mlp", data.input_shape, data.num_classes, widths=widths)
    trainer = GradientTrainer(
        model, optim.create(optimizer, model), data.X_train, data.y_train, torch.nn.functional.cross_entropy
    )
    n = data.n_train
    steps = -(-n // batch_size)
    sampler = BatchSampler(n, batch_size, 0, torch.device("cpu"))
    ctx = trainer.ddp.no_sync if (no_sync and trainer.ddp is not None) else nullcontext
    times = []
    for _epoch in range(repeats + 1):
        dist.barrier()
        start = time.perf_counter()
        with ctx():
            for _ in range(steps):
                trainer.train_step(sampler.next())
        times.append(time.perf_counter() - start)
    params = sum(p.numel() for p in model.parameters())
    return {"epoch_s": statistics.median(times[1:]), "steps": steps, "params": params}


def _worker(*args) -> dict:
    return _epoch_times(*args)


def _tiam_times(dataset: str, widths: tuple[int, ...], repeats: int) -> dict:
    """Median seconds of one full-batch TIAM outer iteration, and its collectives (calls, floats, seconds)."""
    from beyondsgd import distributed as dist
    from beyondsgd.am import TIAM, TIAM_DEFAULTS
    from beyondsgd.data import load_dataset
    from beyondsgd.models import create_model

    stats = {"calls": 0, "floats": 0, "seconds": 0.0}
    originals = {name: getattr(dist, name) for name in ("all_reduce_sum", "all_reduce_max")}

    def counted(fn):
        def wrapper(tensor):
            t0 = time.perf_counter()
            out = fn(tensor)
            stats["seconds"] += time.perf_counter() - t0
            stats["calls"] += 1
            stats["floats"] += tensor.numel()
            return out

        return wrapper

    data = load_dataset(dataset, seed=0)
    torch.manual_seed(0)
    model = create_model("mlp", data.input_shape, data.num_classes, widths=widths)
    trainer = TIAM(model, data.X_train, data.y_train, torch.nn.functional.cross_entropy, **TIAM_DEFAULTS)
    times, comm = [], []
    try:
        for name, fn in originals.items():
            setattr(dist, name, counted(fn))
        for _ in range(repeats + 1):
            dist.barrier()
            before = dict(stats)
            start = time.perf_counter()
            trainer.train_step(None)
            times.append(time.perf_counter() - start)
            comm.append({k: stats[k] - before[k] for k in stats})
    finally:
        for name, fn in originals.items():
            setattr(dist, name, fn)
    i = min(range(1, repeats + 1), key=lambda j: abs(times[j] - statistics.median(times[1:])))
    return {"iter_s": times[i], **comm[i], "params": sum(p.numel() for p in model.parameters())}


def _tiam_table(args) -> None:
    from beyondsgd.distributed import run_local

    widths = tuple(int(w) for w in args.tiam_widths.split(","))
    print(
        f"\nTIAM (defaults), one full-batch outer iteration on {args.dataset}, MLP widths {widths}; "
        f"median of {args.repeats} after a warm-up"
    )
    print(
        f"| 1p x 1t [s] | {args.procs}p x 1t [s] | speed-up | all-reduce calls / iteration | floats / iteration "
        "| share in collectives (incl. waiting) | parameters |"
    )
    print("|---|---|---|---|---|---|---|")
    torch.set_num_threads(1)
    one = _tiam_times(args.dataset, widths, args.repeats)
    many = run_local(_tiam_times, args.procs, args=(args.dataset, widths, args.repeats), timeout_s=600)
    slow = max(many, key=lambda r: r["iter_s"])
    share = max(r["seconds"] / r["iter_s"] for r in many)
    print(
        f"| {one['iter_s']:.3f} | {slow['iter_s']:.3f} | {one['iter_s'] / slow['iter_s']:.2f}x | {slow['calls']} "
        f"| {slow['floats']} | {share:.0%} | {one['params']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--widths", default="256,256")
    parser.add_argument("--batch-sizes", default="64,512")
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiam-widths", default="256,256")
    parser.add_argument("--skip-sgd", action="store_true")
    parser.add_argument("--skip-tiam", action="store_true")
    args = parser.parse_args()
    from beyondsgd.distributed import run_local

    if not args.skip_tiam:
        _tiam_table(args)
    if args.skip_sgd:
        return
    widths = tuple(int(w) for w in args.widths.split(","))
    print(
        f"{args.optimizer} on {args.dataset}, MLP widths {widths}, torch {torch.__version__}, "
        f"{args.procs} processes vs 1; median of {args.repeats} epochs"
    )
    print(
        f"| batch | steps/epoch | 1p x 1t [s] | 1p x {args.procs}t [s] | {args.procs}p x 1t DDP [s] | speed-up vs 1p x 1t "
        f"| speed-up vs 1p x {args.procs}t | comm share | all-reduce per step |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        common = (args.dataset, widths, bs, args.optimizer, args.repeats)
        torch.set_num_threads(1)
        one = _epoch_times(*common, False)
        torch.set_num_threads(args.procs)
        one_n = _epoch_times(*common, False)
        ddp = run_local(_worker, args.procs, args=(*common, False), timeout_s=600)
        ddp_ns = run_local(_worker, args.procs, args=(*common, True), timeout_s=600)
        t_ddp = max(r["epoch_s"] for r in ddp)  # the slowest rank sets the pace
        t_ns = max(r["epoch_s"] for r in ddp_ns)
        share = max(0.0, 1 - t_ns / t_ddp)
        mb = one["params"] * 4 / 1e6
        print(
            f"| {bs} | {one['steps']} | {one['epoch_s']:.3f} | {one_n['epoch_s']:.3f} | {t_ddp:.3f} | "
            f"{one['epoch_s'] / t_ddp:.2f}x | {one_n['epoch_s'] / t_ddp:.2f}x | {share:.0%} | "
            f"{one['params']} floats ({mb:.2f} MB) |"
        )


if __name__ == "__main__":
    main()
