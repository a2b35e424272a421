"""Time per TIAM outer iteration vs one full-batch gradient epoch, and TIAM's time split.

Same machine, same run, same MLP (three Linear layers, 100 hidden units, ReLU)
on mnist5k (4000 training images, 784 features), full batch:

* one TIAM outer iteration (registry defaults) vs one full-batch epoch of
  torch.optim.SGD and torch.optim.Adam (forward, backward, step), timed call by call
  and interleaved (SGD, Adam, TIAM, AM, SGD, ...) so that all see the same load of a
  shared machine; the ratio is of the medians, printed with the geometric mean of the per-round
  ratios and its 95 % t-interval over rounds;
* the split of TIAM's time across its sub-problems (W, b, z, a, z_L), with the
  backtracking trials of W and a and the inner prox solver of z_L shown apart;
* host synchronizations per outer iteration (what a GPU run waits for), counted as
  tensor -> host conversions over 10 further iterations, for both ``prox_stopping`` rules,
  next to the backtracking trials, the prox stopping tests and TIAM's safeguard checks.

    PYTHONPATH=src python benchmarks/bench_tiam.py [--dataset mnist5k] [--iters 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F

from beyondsgd.am import AM_DEFAULTS, TIAM, TIAM_DEFAULTS, PlainAM
from beyondsgd.am import trainer as am_trainer_module
from beyondsgd.am.losses import CrossEntropy
from beyondsgd.bench.evidence import ratio_ci
from beyondsgd.data import load_dataset
from beyondsgd.models import create_model


def gradient_stepper(opt_name: str, data):
    """One full-batch epoch of torch.optim.SGD / Adam (forward, backward, step) as a callable."""
    torch.manual_seed(0)
    model = create_model("mlp", data.input_shape, data.num_classes, widths=(100, 100))
    opt = {"sgd": lambda p: torch.optim.SGD(p, lr=0.5), "adam": lambda p: torch.optim.Adam(p, lr=1e-2)}[opt_name](
        model.parameters()
    )

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.X_train), data.y_train).backward()
        opt.step()

    return step


def am_trainer(cls, defaults, data):
    torch.manual_seed(0)
    model = create_model("mlp", data.input_shape, data.num_classes, widths=(100, 100))
    return cls(model, data.X_train, data.y_train, F.cross_entropy, **defaults)


def time_interleaved(steppers: dict, iters: int) -> dict[str, list[float]]:
    """Time ``iters`` calls of every stepper, interleaved (A, B, C, A, B, C, ...).

    On a machine shared with other jobs the load changes by the second; interleaving
    exposes every method to the same load, so the ratio of medians is meaningful.
    """
    for step in steppers.values():  # warm-up
        step()
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for _ in range(iters):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return times


def paired_ratio(a: list[float], b: list[float]) -> str:
    """:func:`~beyondsgd.bench.evidence.ratio_ci` of ``a_i / b_i`` over the interleaved rounds, as text.

    Each round times both in turn under the same load, so the per-round ratios pair them. The
    interval is over rounds of one run (one allocation of each method's tensors, one trajectory):
    a second run on the same machine can land outside it by where its memory lands.
    """
    ratio, low, high = ratio_ci(a, b)
    return f"per-round ratio {ratio:.2f}x, 95% CI [{low:.2f}, {high:.2f}]"


@contextlib.contextmanager
def counting_syncs(counter: dict[str, int]):
    """Count ``float()``/``bool()``/``int()``/``.item()``/``.tolist()`` on tensors (each waits for the device)."""
    originals = {name: getattr(torch.Tensor, name) for name in ("__float__", "__bool__", "__int__", "item", "tolist")}

    def counted(original):
        def wrapped(self, *args, **kwargs):
            counter["syncs"] += 1
            return original(self, *args, **kwargs)

        return wrapped

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, counted(original))
        yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def sync_counts(data, iters: int = 10) -> None:
    """Host syncs per outer iteration of TIAM and plain AM under both prox stopping rules."""
    print(f"host syncs per outer iteration (min / median / max over {iters} iterations after a warm-up):")
    for name, cls, defaults in (("tiam", TIAM, TIAM_DEFAULTS), ("am", PlainAM, AM_DEFAULTS)):
        for stopping in ("test", "bound"):
            tr = am_trainer(cls, {**defaults, "prox_stopping": stopping}, data)
            tr.train_step(None)
            seen = {"trials": 0, "prox_tests": 0}
            step, check = am_trainer_module.backtracking_step, CrossEntropy._converged

            def counted_step(*args, _step=step, _seen=seen, **kwargs):
                res = _step(*args, **kwargs)
                _seen["trials"] += res.doublings + 1
                return res

            def counted_check(self, *args, _check=check, _seen=seen):
                _seen["prox_tests"] += 1
                return _check(self, *args)

            counts, trials, tests, redos0 = [], [], [], tr.safeguard_count
            am_trainer_module.backtracking_step, CrossEntropy._converged = counted_step, counted_check
            try:
                for _ in range(iters):
                    counter = {"syncs": 0}
                    seen["trials"] = seen["prox_tests"] = 0
                    with counting_syncs(counter):
                        tr.train_step(None)
                    counts.append(counter["syncs"])
                    trials.append(seen["trials"])
                    tests.append(seen["prox_tests"])
            finally:
                am_trainer_module.backtracking_step, CrossEntropy._converged = step, check
            # TIAM checks every block once (4 per hidden layer, b and W and z_L of the output layer).
            checks = (4 * (tr.num_layers - 1) + 3) if name == "tiam" else 0
            other = [c - t - q - checks for c, t, q in zip(counts, trials, tests)]
            print(
                f"  {name:<4s} prox_stopping={stopping!r:<8s} syncs {min(counts)} / {statistics.median(counts):g} / "
                f"{max(counts)}; backtracking trials {statistics.median(trials):g}, safeguard checks {checks}, "
                f"prox stopping tests {statistics.median(tests):g} (medians), any other {max(other)} (max); "
                f"safeguard redos {tr.safeguard_count - redos0}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    print(
        f"{args.dataset}: {data.n_train} samples, MLP {data.input_shape} -> 100 -> 100 -> {data.num_classes}, "
        f"torch {torch.__version__}, {args.threads} thread(s), {args.iters} iterations each"
    )
    trainers = {"tiam": am_trainer(TIAM, TIAM_DEFAULTS, data), "am": am_trainer(PlainAM, AM_DEFAULTS, data)}
    steppers = {"sgd": gradient_stepper("sgd", data), "adam": gradient_stepper("adam", data)}
    steppers.update({name: (lambda tr=tr: tr.train_step(None)) for name, tr in trainers.items()})
    for tr in trainers.values():
        tr.train_step(None)  # the first iteration also computes the starting products
        tr.timings = {}
    times = time_interleaved(steppers, args.iters)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(
        f"median of {args.iters} interleaved calls each: sgd epoch {med['sgd'] * 1e3:.1f} ms, adam epoch {med['adam'] * 1e3:.1f} ms"
    )
    for name, tr in trainers.items():
        t, split = med[name], {k: v / (args.iters + 1) for k, v in tr.timings.items()}
        mean = sum(times[name]) / len(times[name])
        print(
            f"{name}: {t * 1e3:.1f} ms per outer iteration = {t / med['sgd']:.2f}x a full-batch SGD epoch, "
            f"{t / med['adam']:.2f}x a full-batch Adam epoch (ratio of means: {mean / (sum(times['sgd']) / args.iters):.2f}x "
            f"SGD; {paired_ratio(times[name], times['sgd'])}); safeguard redos {tr.safeguard_count} in {tr.k} iterations"
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
        parts["rest (penalties at start, write-back)"] = mean - accounted
        print("    time split (means):")
        for k, v in parts.items():
            print(f"    {k:<40s} {v * 1e3:7.2f} ms  {v / mean:6.1%}")
    sync_counts(data)


if __name__ == "__main__":
    main()
