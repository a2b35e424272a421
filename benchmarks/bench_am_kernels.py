"""Micro-benchmarks behind the kernel choices of the alternating-minimization trainers.

Each pair is the same quantity computed two ways, timed call by call and interleaved
(medians of ``--reps`` calls), on this machine's CPU, single thread by default:

* ``a @ W.T`` against ``(W @ a.T).T`` for a batch of 4000 samples and output widths
  from 10 (an output layer) to 100. The second is faster for narrow outputs whose width
  is not a multiple of 16, but the trainers do not use it: its rows depend on which other
  rows are in the product (not so for ``a @ W.T`` with 2 or more rows), so the forward
  start's residuals ``z_L - a W^T - b`` of a mini-batch would be rounding noise instead of
  exactly 0, and the first backtracking tests then fail up to the doubling cap;
* per-sample gradient norms of the cross-entropy prox's stopping test, 10 classes x 4000
  samples: ``torch.linalg.vector_norm(g, dim=0)`` against ``g.square().sum(0).sqrt()``.

    PYTHONPATH=src python benchmarks/bench_am_kernels.py [--reps 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def time_pairs(pairs: dict[str, tuple], reps: int) -> None:
    for label, (f, g) in pairs.items():
        tf, tg = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            t1 = time.perf_counter()
            g()
            tg.append(time.perf_counter() - t1)
            tf.append(t1 - t0)
        mf, mg = statistics.median(tf), statistics.median(tg)
        print(f"{label:<58s} {mf * 1e6:9.1f} us {mg * 1e6:9.1f} us   first/second {mf / mg:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), medians of {args.reps} interleaved calls")
    print(f"{'':<58s} {'first':>12s} {'second':>12s}")
    pairs = {}
    for n_in, widths in ((100, (10, 16, 20, 50, 100)), (784, (10, 100))):
        a = torch.randn(4000, n_in, generator=g)
        for n_out in widths:
            W = torch.randn(n_out, n_in, generator=g)
            pairs[f"(4000x{n_in}) @ (({n_out}x{n_in}).T): a@W.T | (W@a.T).T"] = (
                lambda a=a, W=W: a @ W.T,
                lambda a=a, W=W: (W @ a.T).T,
            )
    grad = torch.randn(10, 4000, generator=g)
    pairs["norms over dim 0 of (10x4000): vector_norm | sq-sum-sqrt"] = (
        lambda: torch.linalg.vector_norm(grad, dim=0),
        lambda: grad.square().sum(0).sqrt(),
    )
    time_pairs(pairs, args.reps)


if __name__ == "__main__":
    main()
