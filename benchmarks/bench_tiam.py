"""Time per TIAM outer iteration vs one full-batch gradient epoch, and TIAM's time split.

Same machine, same run, same MLP (three Linear layers, 100 hidden units, ReLU)
on mnist5k (4000 training images, 784 features), full batch:

* one TIAM outer iteration (registry defaults) vs one full-batch epoch of
  torch.optim.SGD and torch.optim.Adam (forward, backward, step);
* the split of TIAM's time across its sub-problems (W, b, z, a, z_L), with the
  backtracking trials of W and a and the inner prox solver of z_L shown apart.

    PYTHONPATH=src python benchmarks/bench_tiam.py [--dataset mnist5k] [--iters 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from beyondsgd.am import AM_DEFAULTS, TIAM, TIAM_DEFAULTS, PlainAM
from beyondsgd.data import load_dataset
from beyondsgd.models import create_model


def time_gradient(opt_name: str, data, iters: int) -> float:
    torch.manual_seed(0)
    model = create_model("mlp", data.input_shape, data.num_classes, widths=(100, 100))
    opt = {"sgd": lambda p: torch.optim.SGD(p, lr=0.5), "adam": lambda p: torch.optim.Adam(p, lr=1e-2)}[opt_name](
        model.parameters()
    )
    for _ in range(2):  # warm-up
        opt.zero_grad()
        F.cross_entropy(model(data.X_train), data.y_train).backward()
        opt.step()
    t0 = time.perf_counter()
    for _ in range(iters):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.X_train), data.y_train).backward()
        opt.step()
    return (time.perf_counter() - t0) / iters


def time_am(cls, defaults, data, iters: int) -> tuple[float, dict[str, float], int]:
    torch.manual_seed(0)
    model = create_model("mlp", data.input_shape, data.num_classes, widths=(100, 100))
    tr = cls(model, data.X_train, data.y_train, F.cross_entropy, **defaults)
    tr.train_step(None)  # warm-up
    tr.timings = {}
    t0 = time.perf_counter()
    for _ in range(iters):
        tr.train_step(None)
    total = (time.perf_counter() - t0) / iters
    return total, {k: v / iters for k, v in tr.timings.items()}, tr.safeguard_count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    print(
        f"{args.dataset}: {data.n_train} samples, MLP {data.input_shape} -> 100 -> 100 -> {data.num_classes}, "
        f"torch {torch.__version__}, {args.threads} thread(s), {args.iters} iterations each"
    )
    sgd, adam = time_gradient("sgd", data, args.iters), time_gradient("adam", data, args.iters)
    for name, cls, defaults in (("tiam", TIAM, TIAM_DEFAULTS), ("am", PlainAM, AM_DEFAULTS)):
        t, split, redos = time_am(cls, defaults, data, args.iters)
        print(
            f"{name}: {t * 1e3:.1f} ms per outer iteration = {t / sgd:.1f}x a full-batch SGD epoch "
            f"({sgd * 1e3:.1f} ms), {t / adam:.1f}x a full-batch Adam epoch ({adam * 1e3:.1f} ms); "
            f"safeguard redos {redos}"
        )
        inner = {
            "W": split.get("W.backtracking", 0.0),
            "a": split.get("a.backtracking", 0.0),
            "z_L": split.get("z_L.prox", 0.0),
        }
        parts = {
            "W (gradient, safeguard)": split.get("W", 0.0) - inner["W"],
            "W backtracking trials": inner["W"],
            "b": split.get("b", 0.0),
            "z (hidden)": split.get("z", 0.0),
            "a (gradient, safeguard)": split.get("a", 0.0) - inner["a"],
            "a backtracking trials": inner["a"],
            "z_L (other)": split.get("z_L", 0.0) - inner["z_L"],
            "z_L prox solver": inner["z_L"],
        }
        accounted = sum(parts.values())
        parts["rest (penalties at start, write-back)"] = t - accounted
        for k, v in parts.items():
            print(f"    {k:<40s} {v * 1e3:7.2f} ms  {v / t:6.1%}")


if __name__ == "__main__":
    main()
