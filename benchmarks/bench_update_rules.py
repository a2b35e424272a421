"""Step time of the rule optimizers, hb and nag against torch.optim's fastest path of the same base.

Only ``optimizer.step()`` is timed: every optimizer sees the same fixed gradients, all are
timed round-robin in one run (so machine load hits them alike), and the median over rounds
is reported with its ratio to torch's fastest path of the same base optimizer (the smaller of
its ``fused`` and ``foreach`` medians); the minimum over rounds, less sensitive to a loaded
machine, is printed next to it.  Memory, in units of the parameters' size ``P``:
"extra state" is the persistent state beyond torch's for the same base; "peak temp" is the
largest total size of the tensors a step allocates that are alive at once (counted exactly
by a dispatch mode over one extra step), printed also in units of the largest parameter
tensor.

    PYTHONPATH=src python benchmarks/bench_update_rules.py --threads 1 --width 448 --layers 10 --rounds 11
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import weakref
from collections.abc import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from beyondsgd import optim

Make = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def _torch(cls: type[torch.optim.Optimizer], **kw) -> Make:
    return lambda ps: cls(ps, **kw)


def _ours(name: str, **kw) -> Make:
    return lambda ps: optim.create(name, ps, **kw)


#: name -> (factory, base: the torch optimizers whose fastest path is the reference)
BASELINES: dict[str, Make] = {
    "torch SGD foreach": _torch(torch.optim.SGD, lr=0.01, foreach=True),
    "torch SGD fused": _torch(torch.optim.SGD, lr=0.01, fused=True),
    "torch SGD(momentum) foreach": _torch(torch.optim.SGD, lr=0.01, momentum=0.9, foreach=True),
    "torch SGD(momentum) fused": _torch(torch.optim.SGD, lr=0.01, momentum=0.9, fused=True),
    "torch SGD(nesterov) fused": _torch(torch.optim.SGD, lr=0.01, momentum=0.9, nesterov=True, fused=True),
    "torch SGD(nesterov) foreach": _torch(torch.optim.SGD, lr=0.01, momentum=0.9, nesterov=True, foreach=True),
    "torch Adam foreach": _torch(torch.optim.Adam, lr=1e-3, foreach=True),
    "torch Adam fused": _torch(torch.optim.Adam, lr=1e-3, fused=True),
}
_SGD = ("torch SGD foreach", "torch SGD fused")
_SGDM = ("torch SGD(momentum) foreach", "torch SGD(momentum) fused")
_NAG = ("torch SGD(nesterov) foreach", "torch SGD(nesterov) fused")
_ADAM = ("torch Adam foreach", "torch Adam fused")

OURS: dict[str, tuple[Make, tuple[str, ...]]] = {
    "m_sgd": (_ours("m_sgd", eta_out=0.01), _SGD),
    "m_sgd(momentum)": (_ours("m_sgd", eta_out=0.01, momentum=0.9), _SGDM),
    "h_sgd(momentum)": (_ours("h_sgd", lr=0.01, eta_out=0.01, momentum=0.9), _SGDM),
    "m_adam": (_ours("m_adam", eta_out=1e-3), _ADAM),
    "h_adam": (_ours("h_adam", lr=1e-3, eta_out=1e-3), _ADAM),
    "madam": (_ours("madam", eta_out=0.01), _ADAM),
    "hb": (_ours("hb", lr=0.01, momentum=0.9), _SGDM),
    "nag": (_ours("nag", lr=0.01, momentum=0.9), _NAG),
}


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(
        v.numel() * v.element_size()
        for st in opt.state.values()
        if isinstance(st, dict)
        for v in st.values()
        if isinstance(v, torch.Tensor) and v.dim() > 0
    )


class _PeakTemporaries(TorchDispatchMode):
    """Counts the bytes of tensors created by ops (outputs not sharing an input's storage)
    that are alive at the same time; ``peak`` is the maximum."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def _release(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        seen = {
            t.untyped_storage().data_ptr()
            for t in torch.utils._pytree.tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor)
        }
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.dim() > 0 and t.untyped_storage().data_ptr() not in seen:
                nbytes = t.untyped_storage().nbytes()
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._release, nbytes)
        return out


def peak_temporary_bytes(opt: torch.optim.Optimizer) -> int:
    """Peak bytes of temporaries alive at once during one ``opt.step()``."""
    mode = _PeakTemporaries()
    with mode:
        opt.step()
    gc.collect()
    return mode.peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--width", type=int, default=448, help="Linear(width, width) layers")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--foreach", choices=("default", "true", "false"), default="default", help="our optimizers' path")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ours_kw = {"default": {}, "true": {"foreach": True}, "false": {"foreach": False}}[args.foreach]

    def params() -> list[nn.Parameter]:
        torch.manual_seed(0)
        model = nn.Sequential(*[nn.Linear(args.width, args.width) for _ in range(args.layers)]).to(device)
        ps = list(model.parameters())
        for p in ps:
            p.grad = torch.randn_like(p) * 1e-2
        return ps

    setups: dict[str, torch.optim.Optimizer] = {}
    for name, make in BASELINES.items():
        setups[name] = make(params())
    for name, (make, _) in OURS.items():
        ps = params()
        opt = make(ps)
        for g in opt.param_groups:
            g.update(ours_kw)
        setups[name] = opt
    for opt in setups.values():
        opt.step()  # allocate state outside the timing
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
    low = {k: min(v) for k, v in times.items()}
    n = sum(p.numel() for p in params())
    param_bytes = n * 4
    largest = max(p.numel() for p in params()) * 4
    peak = {name: peak_temporary_bytes(opt) for name, opt in setups.items()}
    print(
        f"{n / 1e6:.2f}M float32 parameters in {2 * args.layers} tensors, device {device}, "
        f"threads {torch.get_num_threads()}, torch {torch.__version__}, median of {args.rounds} rounds, "
        f"our path: foreach={args.foreach}"
    )

    def mem(name: str) -> str:
        return f"{peak[name] / param_bytes:5.2f}P = {peak[name] / largest:5.1f} largest"

    print(
        f"{'optimizer':30s} {'median ms':>9s} {'ratio':>14s} {'min ms':>7s} {'ratio':>6s} "
        f"{'extra state':>11s} {'peak temp':>22s}"
    )
    for name in BASELINES:
        print(f"{name:30s} {med[name] * 1e3:9.2f} {'':>14s} {low[name] * 1e3:7.2f} {'':>6s} {'':>11s} {mem(name):>22s}")
    for name, (_, refs) in OURS.items():
        best = min(refs, key=med.__getitem__)
        best_low = min(refs, key=low.__getitem__)
        extra = (_state_bytes(setups[name]) - _state_bytes(setups[best])) / param_bytes
        ratio = f"{med[name] / med[best]:.2f}x {best.split()[-1]}"
        print(
            f"{name:30s} {med[name] * 1e3:9.2f} {ratio:>14s} {low[name] * 1e3:7.2f} "
            f"{low[name] / low[best_low]:5.2f}x {extra:+10.2f}P {mem(name):>22s}"
        )


if __name__ == "__main__":
    main()
