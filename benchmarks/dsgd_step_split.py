"""Where a watched spectral DSGD step spends its time on real minibatches, and the factored map against its previous form.

DSGD adaptive spectral with ``DSGD.watch`` and ``loss_closure`` on an MLP (784-256-256-10 by default),
on the minibatches and with the step of ``benchmarks/dsgd_step.py`` (its ``minibatches`` and
``stepper``: each step on the next of 64 minibatches of a real dataset, Fashion-MNIST by default,
drawn without replacement from one shuffle). Two measurements, one process:

* the split: the step's pieces are wrapped with timers (closure, ``loss_closure``, the factors and
  their probe, the nuclear norms, the chosen layer's map) over ``--steps`` steps;
* ``FactoredGradient.dual_map`` as it is against its form before 2026-12-04 (kept below: ``B^T B``
  formed again from ``B``, the last product in float64), the two taking turns round by round on the
  same run (``--rounds`` rounds of 20 steps each), median milliseconds per step.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/dsgd_step_split.py [--data fashion-mnist] [--steps 300] [--rounds 30]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import torch

from beyondsgd.optim import DSGD, gradient_factors, layer_groups, layer_norms
from dsgd_step import minibatches, stepper, watching  # (run as a script: benchmarks/ is on sys.path)


def previous_dual_map(self: layer_norms.FactoredGradient) -> torch.Tensor:
    """``FactoredGradient.dual_map`` before 2026-12-04: ``B^T B`` formed again from ``B``, every product in float64."""
    if self.factor_t.shape[0] == 0:
        return torch.zeros(self.shape, dtype=self.dtype, device=self.inputs.device)
    bt = self.factor_t @ self.output_grads
    evals, w = torch.linalg.eigh(bt @ bt.T)
    s = layer_norms._floored(evals, self.floor).sqrt()
    right = (w * layer_norms._kept_inverse(s, self.shape)) @ w.T @ bt
    if self.lower is not None:
        right = torch.linalg.solve_triangular(self.lower.T, right, upper=True)
    else:
        assert self.pinv is not None
        right = self.pinv.T @ right
    return (s.sum() * (right.T @ self.inputs.to(torch.float64))).to(self.dtype)


def _timer(totals: dict[str, float], label: str, fn: Callable, calls: dict[str, int] | None = None) -> Callable:
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] = totals.get(label, 0.0) + time.perf_counter() - start
            if calls is not None:
                calls[label] = calls.get(label, 0) + 1

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", help="a dataset name of load_dataset, or 'random'")
    parser.add_argument("--batches", type=int, default=64, help="distinct minibatches, taken in turn")
    parser.add_argument("--inputs", type=int, default=784, help="input size for --data random")
    parser.add_argument("--widths", default="256,256")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    args.widths = tuple(int(w) for w in args.widths.split(","))
    torch.set_num_threads(1)
    batches, classes = minibatches(args, torch.device("cpu"))
    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    labels = {"closure": "closure (forward + backward)", "loss_closure": "loss_closure (decrease check)"}
    step = stepper(
        lambda net: watching(DSGD(layer_groups(net)), net),
        "relu",
        args,
        batches,
        classes,
        loss_only=True,
        wrap=lambda name, fn: _timer(totals, labels[name], fn, calls),
    )

    current_map = layer_norms.FactoredGradient.dual_map
    patches = [
        (DSGD, "step", "step, all"),
        (DSGD, "_factored", "factors, all (probe included)"),
        (gradient_factors, "factor_gradient", "  factor_gradient (Grams, Cholesky)"),
        (gradient_factors.LinearGradientFactors, "_reproduces", "  probe"),
        (layer_norms.FactoredGradient, "nuclear_norm", "nuclear norms"),
        (layer_norms.FactoredGradient, "dual_map", "map of the chosen layer"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, label in patches:
        setattr(owner, name, _timer(totals, label, getattr(owner, name)))
    for _ in range(20):
        step()
    totals.clear()
    calls.clear()
    for _ in range(args.steps):
        step()
    for owner, name, original in originals:
        setattr(owner, name, original)
    print(
        f"{args.data}, MLP {batches[0][0].shape[1]}-{'-'.join(map(str, args.widths))}-{classes}, batch {args.batch}, 1 thread, torch {torch.__version__}"
    )
    print(f"time split over {args.steps} steps (ms per step):")
    for label, total in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {label:<40} {1000 * total / args.steps:7.2f}")
    print(
        f"forward passes of the decrease check per step: {calls.get('loss_closure (decrease check)', 0) / args.steps:.2f}"
    )

    times: dict[str, list[float]] = {"previous map": [], "current map": []}
    for _ in range(args.rounds):
        for label, impl in (("previous map", previous_dual_map), ("current map", current_map)):
            layer_norms.FactoredGradient.dual_map = impl
            start = time.perf_counter()
            for _ in range(20):
                step()
            times[label].append(1000 * (time.perf_counter() - start) / 20)
    layer_norms.FactoredGradient.dual_map = current_map
    print(f"whole step, median over {args.rounds} interleaved rounds of 20 steps:")
    for label, values in times.items():
        print(f"  {label:<40} {statistics.median(values):7.2f} ms")


if __name__ == "__main__":
    main()
