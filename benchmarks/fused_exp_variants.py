"""What the exponential costs in a generated M-rule kernel, against torch's fused SGD(momentum).

One compiled function (``torch.compile``, inductor, ``fullgraph=True``) steps 20 float32
tensors (10M entries in all, the layout of ``bench_update_rules.py``) with SGD momentum and
the M rule ``p <- p - a |p| tanh(eta_in b)``; the variants differ only in how ``tanh`` is
computed: ``2 sigmoid(2x) - 1`` (``exp``), ``2 / (1 + exp2(-2 log2(e) x)) - 1`` (``exp2``,
what ``beyondsgd.optim.fused`` uses), ``torch.tanh``, and no ``tanh`` at all (``b`` itself:
the memory traffic alone). All are timed round-robin with torch's fused SGD(momentum) step;
the table gives medians and ratios.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/fused_exp_variants.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

SHAPES = [(1000, 1000), (1000,)] * 10
_M2LOG2E = -2.0 / math.log(2.0)


def _tanh_exp(x):
    return 2.0 * torch.sigmoid(2.0 * x) - 1.0


def _tanh_exp2(x):
    return 2.0 / (1.0 + torch.exp2(x * _M2LOG2E)) - 1.0


def _none(x):
    return x


VARIANTS = {"exp": _tanh_exp, "exp2": _tanh_exp2, "torch.tanh": torch.tanh, "no tanh": _none}


def kernel(squash):
    def step(ps, gs, bs, sc):
        for i in range(len(ps)):
            b = bs[i] * sc[0] + gs[i]
            bs[i].copy_(b)
            ps[i].copy_(ps[i] - squash(b * sc[1]) * torch.abs(ps[i]) * sc[2])

    return torch.compile(step, dynamic=True, fullgraph=True)


def tensors(scale: float) -> list[torch.Tensor]:
    return [torch.randn(s) * scale for s in SHAPES]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    steps = {}
    for name, squash in VARIANTS.items():
        fn = kernel(squash)
        data = (tensors(0.03), tensors(1e-2), tensors(1e-2), torch.tensor([0.9, 10.0, 0.01]))
        steps[name] = lambda fn=fn, data=data: fn(*data)
    params = [torch.nn.Parameter(t) for t in tensors(0.03)]
    for p, g in zip(params, tensors(1e-2)):
        p.grad = g
    steps["torch SGD(momentum) fused"] = torch.optim.SGD(params, lr=0.01, momentum=0.9, fused=True).step
    for step in steps.values():  # compile, create state
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["torch SGD(momentum) fused"])
    print(f"10.01M float32 entries in 20 tensors, 1 thread, torch {torch.__version__}, median of {args.rounds} rounds")
    print(f"{'step':28s} {'median ms':>9s} {'ratio':>6s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:28s} {med * 1e3:9.2f} {med / base:6.2f}")


if __name__ == "__main__":
    main()
