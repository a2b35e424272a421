"""Performance of the momentum/NTK code against its floors, measured in one run.

1. ``gram_inf`` (n x d, float64) against the one matrix product ``X X^T`` it needs.
2. One HeavyBall / Nesterov step against ``torch.optim.SGD(momentum, nesterov, foreach=True)``
   on the same large set of parameters (gradients fixed, only ``step()`` is timed),
   alternating the optimizers so machine load hits both alike.

Usage::

    PYTHONPATH=src python benchmarks/bench_momentum.py [--n 5000] [--d 784] [--threads 1]
        [--layers 16] [--hidden 1024] [--repeats 15] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from beyondsgd.ntk import gram_inf
from beyondsgd.optim import HeavyBall, Nesterov


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _best(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return min(times)


def bench_gram(n: int, d: int, repeats: int, device: torch.device) -> None:
    X = torch.randn(n, d, dtype=torch.float64, device=device)
    X /= X.norm(dim=1, keepdim=True)
    floor = _best(lambda: X @ X.T, repeats, device)
    full = _best(lambda: gram_inf(X), repeats, device)
    print(
        f"gram_inf n={n} d={d} float64: {full * 1e3:.1f} ms; X X^T: {floor * 1e3:.1f} ms; "
        f"ratio {full / floor:.2f}x (goal <= 3x)"
    )


def bench_step(layers: int, hidden: int, repeats: int, device: torch.device) -> None:
    torch.manual_seed(0)
    shapes = [(hidden, hidden), (hidden,)] * layers
    n_params = sum(torch.Size(s).numel() for s in shapes)

    def make_params():
        ps = [torch.randn(s, device=device, requires_grad=True) for s in shapes]
        for p in ps:
            p.grad = torch.randn_like(p) * 1e-3
        return ps

    pairs = {
        "hb": (
            lambda ps: HeavyBall(ps, lr=1e-3, momentum=0.9, foreach=True),
            lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, foreach=True),
        ),
        "nag": (
            lambda ps: Nesterov(ps, lr=1e-3, momentum=0.9, foreach=True),
            lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, nesterov=True, foreach=True),
        ),
    }
    print(f"one step, {len(shapes)} tensors, {n_params / 1e6:.1f}M parameters, foreach, {device}:")
    for name, (ours_f, ref_f) in pairs.items():
        ours, ref = ours_f(make_params()), ref_f(make_params())
        ours.step(), ref.step()  # allocate the momentum state outside the timing
        t_ours, t_ref = [], []
        for _ in range(repeats):  # alternate so that load changes affect both
            t_ours.append(_best(ours.step, 1, device))
            t_ref.append(_best(ref.step, 1, device))
        mo, mr = statistics.median(t_ours), statistics.median(t_ref)
        print(
            f"  {name}: {mo * 1e3:.2f} ms vs torch.optim.SGD {mr * 1e3:.2f} ms (medians of {repeats}); "
            f"ratio {mo / mr:.3f}x (goal <= 1.1x)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    bench_gram(args.n, args.d, max(3, args.repeats // 5), device)
    bench_step(args.layers, args.hidden, args.repeats, device)


if __name__ == "__main__":
    main()
