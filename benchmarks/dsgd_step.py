"""DSGD step cost against ``torch.optim.SGD`` on the same model, batches and machine, in one run.

Each optimizer takes steps with a closure (forward + backward included, as in training) on an
MLP, the optimizers taking turns round by round; the table gives the median milliseconds per
step and the ratio to SGD. Each step takes the next minibatch of a real dataset (``--data``,
Fashion-MNIST by default: batches drawn without replacement from one shuffle of the training
set, ``--batches`` of them in turn, the same sequence for every optimizer), as in training.
``--data random`` steps every optimizer on one fixed batch of Gaussian inputs with random labels
(this benchmark's setting before 2026-12-04): there DSGD soon drives the hidden layers' scores to
~1e-18 and moves only the small output layer, whose map is cheap, so it understates the cost of
a spectral step on real data. The
"loss-only" rows also pass ``loss_closure`` (a forward pass), which the adaptive mode's
decrease check calls instead of the closure. The "watched" rows score spectral layers from
their gradient factors (``DSGD.watch(model)``, which ``optim.create(name, model)`` calls).

    PYTHONPATH=src python benchmarks/dsgd_step.py [--data fashion-mnist] [--widths 256,256] [--batch 128] [--steps 20] [--rounds 15] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from beyondsgd.bench.evidence import ratio_ci
from beyondsgd.data import load_dataset
from beyondsgd.models import create_model
from beyondsgd.optim import DSGD, input_bound, layer_groups


def minibatches(args, device: torch.device) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """The minibatches every optimizer steps through in turn (see the module docstring), and the class count."""
    if args.data == "random":
        X = torch.randn(args.batch, args.inputs)
        return [(X.to(device), torch.randint(0, 10, (args.batch,)).to(device))], 10
    data = load_dataset(args.data)
    X, y = data.X_train.reshape(len(data.X_train), -1), data.y_train
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    count = min(args.batches, len(X) // args.batch)
    if count < 1:
        raise SystemExit(f"--batch {args.batch} is larger than {args.data}'s {len(X)} training samples")
    picks = [order[i * args.batch : (i + 1) * args.batch] for i in range(count)]
    return [(X[idx].contiguous().to(device), y[idx].to(device)) for idx in picks], data.num_classes


def stepper(
    make_opt,
    activation: str,
    args,
    batches,
    classes: int,
    loss_only: bool = False,
    wrap: Callable[[str, Callable], Callable] | None = None,
):
    """One optimizer step with its closure (forward + backward) on its own copy of the MLP, each
    step on the next batch of ``batches``. ``wrap(name, fn)``, if given, wraps the ``"closure"`` and
    the ``"loss_closure"`` (``benchmarks/dsgd_step_split.py`` times them so)."""
    torch.manual_seed(0)
    X0 = batches[0][0]
    net = create_model("mlp", (X0.shape[1],), classes, widths=args.widths, activation=activation).to(X0.device)
    opt = make_opt(net)
    cursor = [0]

    def step():
        X, y = batches[cursor[0] % len(batches)]
        cursor[0] += 1

        def closure():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(X), y)
            loss.backward()
            return loss

        def loss_closure():
            return F.cross_entropy(net(X), y)

        if wrap is not None:
            closure, loss_closure = wrap("closure", closure), wrap("loss_closure", loss_closure)
        if loss_only:
            return opt.step(closure, loss_closure=loss_closure)
        return opt.step(closure)

    return step


def watching(opt: DSGD, net: torch.nn.Module) -> DSGD:
    """``opt`` scoring its spectral layers from gradient factors (``DSGD.watch``, as ``optim.create`` does)."""
    opt.watch(net)
    return opt


def _time_interleaved(steppers: dict, args, device: torch.device) -> dict[str, list[float]]:
    """Milliseconds per step in each of ``--rounds`` rounds of ``--steps`` steps, the optimizers
    taking turns round by round (SGD, DSGD, ..., SGD, DSGD, ...) so that all see the same load."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for step in steppers.values():  # warm-up
        for _ in range(5):
            step()
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for _ in range(args.rounds):
        for name, step in steppers.items():
            sync()
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync()
            times[name].append((time.perf_counter() - start) / args.steps)
    return {name: [1000 * t for t in v] for name, v in times.items()}


def paired_ratio(a: list[float], b: list[float]) -> str:
    """:func:`~beyondsgd.bench.evidence.ratio_ci` of the per-round ratios ``a_i / b_i`` (a round times
    both in turn, under the same load) over the rounds of this run, as text."""
    ratio, low, high = ratio_ci(a, b)
    return f"{ratio:.2f} [{low:.2f}, {high:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", help="a dataset name of load_dataset, or 'random'")
    parser.add_argument("--batches", type=int, default=64, help="distinct minibatches, taken in turn")
    parser.add_argument("--widths", default="256,256")
    parser.add_argument("--inputs", type=int, default=784, help="input size for --data random")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    args.widths = tuple(int(w) for w in args.widths.split(","))
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batches, classes = minibatches(args, device)
    B = max(input_bound(X) for X, _ in batches)
    cases = [
        ("sgd (torch.optim, relu)", "relu", lambda net: torch.optim.SGD(net.parameters(), lr=0.05)),
        ("dsgd adaptive frobenius (relu)", "relu", lambda net: DSGD(layer_groups(net), norm="frobenius")),
        (
            "dsgd adaptive frobenius foreach",
            "relu",
            lambda net: DSGD(layer_groups(net), norm="frobenius", foreach=True),
        ),
        ("dsgd adaptive spectral (relu)", "relu", lambda net: DSGD(layer_groups(net), norm="spectral")),
        ("dsgd adaptive frobenius, loss-only", "relu", lambda net: DSGD(layer_groups(net), norm="frobenius"), True),
        ("dsgd adaptive spectral, loss-only", "relu", lambda net: DSGD(layer_groups(net), norm="spectral"), True),
        ("dsgd adaptive spectral, watched", "relu", lambda net: watching(DSGD(layer_groups(net)), net)),
        (
            "dsgd adaptive spectral, watched, loss-only",
            "relu",
            lambda net: watching(DSGD(layer_groups(net)), net),
            True,
        ),
        ("sgd (torch.optim, tanh)", "tanh", lambda net: torch.optim.SGD(net.parameters(), lr=0.05)),
        (
            "dsgd bound frobenius (tanh)",
            "tanh",
            lambda net: DSGD(layer_groups(net), mode="bound", norm="frobenius", input_bound=B),
        ),
        (
            "dsgd bound spectral (tanh)",
            "tanh",
            lambda net: DSGD(layer_groups(net), mode="bound", norm="spectral", input_bound=B),
        ),
        (
            "dsgd bound spectral, watched",
            "tanh",
            lambda net: watching(DSGD(layer_groups(net), mode="bound", norm="spectral", input_bound=B), net),
        ),
        (
            "dsgd bound frobenius + check",
            "tanh",
            lambda net: DSGD(layer_groups(net), mode="bound", norm="frobenius", input_bound=B, check_decrease=True),
        ),
    ]
    print(
        f"MLP {batches[0][0].shape[1]}-{'-'.join(map(str, args.widths))}-{classes}, batch {args.batch}, "
        f"data {args.data} ({len(batches)} batch{'es' if len(batches) > 1 else ''} in turn), "
        f"{args.threads} thread(s), device {device}, torch {torch.__version__}"
    )
    steppers = {name: stepper(make, act, args, batches, classes, *lo) for name, act, make, *lo in cases}
    rounds = _time_interleaved(steppers, args, device)
    ms = {name: statistics.median(v) for name, v in rounds.items()}
    print(
        f"median over {args.rounds} interleaved rounds of {args.steps} steps; per round: the geometric mean "
        "of the rounds' ratios to SGD with its 95% t-interval over rounds"
    )
    print(f"{'optimizer':<44} {'ms/step':>8} {'x SGD':>7} {'per round [95% CI]':>20}")
    base = {act: name for name, act, *_ in cases if name.startswith("sgd")}
    for name, act, *_ in cases:
        ref = base[act]
        per_round = "" if name == ref else paired_ratio(rounds[name], rounds[ref])
        print(f"{name:<44} {ms[name]:>8.3f} {ms[name] / ms[ref]:>7.2f} {per_round:>20}")


if __name__ == "__main__":
    main()
