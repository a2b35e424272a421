"""Step time of the rule optimizers vs torch.optim (foreach) on a >= 10M-parameter model.

Only ``optimizer.step()`` is timed: every optimizer sees the same fixed gradients, the
optimizers are timed round-robin (so machine load hits all of them alike) and the median
over rounds is reported with its ratio to the matching torch.optim optimizer.

    PYTHONPATH=src python benchmarks/bench_update_rules.py [--threads 1] [--rounds 15] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from beyondsgd.optim import RuleAdam, RuleSGD


def make_model(device: torch.device) -> nn.Module:
    # 10 x (1024 x 1024 + 1024) = 10.5M parameters in 20 tensors, like a small transformer's blocks.
    return nn.Sequential(*[nn.Linear(1024, 1024) for _ in range(10)]).to(device)


CANDIDATES = {
    "torch Adam (foreach)": (lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True), None),
    "h_adam (foreach)": (
        lambda ps: RuleAdam(ps, rule="hybrid", gamma=0.5, lr=1e-3, eta_out=1e-3, foreach=True),
        "torch Adam (foreach)",
    ),
    "m_adam (foreach)": (
        lambda ps: RuleAdam(ps, rule="multiplicative", lr=1e-3, eta_out=1e-3, foreach=True),
        "torch Adam (foreach)",
    ),
    "additive adam (ours, foreach)": (
        lambda ps: RuleAdam(ps, rule="additive", lr=1e-3, eta_out=1e-3, foreach=True),
        "torch Adam (foreach)",
    ),
    "h_adam (for-loop)": (
        lambda ps: RuleAdam(ps, rule="hybrid", gamma=0.5, lr=1e-3, eta_out=1e-3, foreach=False),
        "torch Adam (foreach)",
    ),
    "torch SGD momentum (foreach)": (lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, foreach=True), None),
    "m_sgd momentum (foreach)": (
        lambda ps: RuleSGD(ps, rule="multiplicative", lr=0.01, eta_out=0.01, momentum=0.9, foreach=True),
        "torch SGD momentum (foreach)",
    ),
    "h_sgd momentum (foreach)": (
        lambda ps: RuleSGD(ps, rule="hybrid", gamma=0.5, lr=0.01, eta_out=0.01, momentum=0.9, foreach=True),
        "torch SGD momentum (foreach)",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    setups = {}
    for name, (make, _) in CANDIDATES.items():
        model = make_model(device)
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-2
        opt = make(list(model.parameters()))
        opt.step()  # allocate state outside the timing
        setups[name] = opt
    n = sum(p.numel() for p in make_model(torch.device("meta")).parameters())
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, opt in setups.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{n / 1e6:.1f}M parameters, device {device}, threads {torch.get_num_threads()}, "
        f"torch {torch.__version__}, median of {args.rounds} rounds"
    )
    print(f"{'optimizer':34s} {'step ms':>9s} {'ratio':>7s}")
    for name, (_, ref) in CANDIDATES.items():
        ratio = f"{med[name] / med[ref]:.2f}x" if ref else "1.00x"
        print(f"{name:34s} {med[name] * 1e3:9.1f} {ratio:>7s}")


if __name__ == "__main__":
    main()
