"""Functions run inside the 2-rank gloo process groups of the distributed tests.

They live in their own module so that spawned processes can import them.
"""

from __future__ import annotations

import os
import time

import torch

from beyondsgd import distributed as dist
from beyondsgd import optim
from beyondsgd.data import load_dataset
from beyondsgd.models import create_model
from beyondsgd.training.trainer import GradientTrainer
from beyondsgd.validation import NONNEGATIVE

# Global batches of several sizes: odd (uneven shards), size 1 (rank 1's shard is empty),
# the full batch (None), and a regular one. 2 ranks must reproduce 1 rank on each.
N_TRAIN = 101
BATCHES = [33, 1, None, 64, 7]


class ArmijoSGD(torch.optim.Optimizer):
    """Gradient descent with backtracking on the returned loss (Armijo sufficient decrease).

    A test optimizer whose decisions depend on the closure's loss value: under DDP
    a rank-local loss would make ranks accept different step sizes.
    The trial losses are evaluated with gradients disabled (loss-only closure calls).
    """

    def __init__(self, params, lr: float = 4.0, shrink: float = 0.5, c: float = 0.5, max_halvings: int = 12):
        super().__init__(params, dict(lr=lr, shrink=shrink, c=c, max_halvings=max_halvings))

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        grads = [p.grad.clone() for p in params]
        start = [p.clone() for p in params]
        gnorm2 = sum(float((g * g).sum()) for g in grads)
        t = group["lr"]
        for _ in range(group["max_halvings"]):
            for p, p0, g in zip(params, start, grads):
                p.copy_(p0 - t * g)
            if float(closure()) <= float(loss) - group["c"] * t * gnorm2:
                break
            t *= group["shrink"]
        self.state.setdefault("accepted", []).append(t)
        self.state["last_t"] = torch.tensor(t, dtype=torch.float64)
        return loss


def register_test_optimizers() -> None:
    optim.register(optim.OptimizerSpec("test_armijo", ArmijoSGD, {"lr": NONNEGATIVE}, family="test"))


def _flat_state(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """Every tensor and number of the optimizer state, flattened in a fixed order."""
    parts = []

    def visit(value):
        if isinstance(value, torch.Tensor):
            parts.append(value.detach().reshape(-1).to(torch.float64))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(torch.tensor([float(value)], dtype=torch.float64))
        elif isinstance(value, dict):
            for k in sorted(value, key=str):
                visit(value[k])
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    visit(optimizer.state_dict()["state"])
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def _flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _maxabs(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a - b).abs().max()) if a.numel() else 0.0


def _run(name: str, hp: dict, X, y, distributed: bool):
    torch.manual_seed(0)
    model = create_model("mlp", (1, 8, 8), 10, widths=(12, 10)).double()
    opt = optim.create(name, model, **hp)
    initial = _flat_params(model).clone()
    trainer = GradientTrainer(model, opt, X, y, torch.nn.functional.cross_entropy, distributed=distributed)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for bs in BATCHES:
        idx = None if bs is None else torch.randperm(X.shape[0], generator=gen)[:bs]
        losses.append(float(trainer.train_step(idx)))
    moved = float((_flat_params(model) - initial).abs().max())
    return _flat_params(model), _flat_state(opt), torch.tensor(losses, dtype=torch.float64), moved


def equivalence(cases: list[tuple[str, dict]]) -> dict:
    """For each (optimizer, hyperparameters): 2-rank DDP run vs itself on the other rank and vs 1 rank.

    Returns, per case, whether parameters, optimizer state and losses are bitwise identical
    on both ranks, and the largest difference from the single-process run on the same
    (concatenated) batches; or the error message.
    """
    register_test_optimizers()
    data = load_dataset("digits", n_train=N_TRAIN, n_test=10, seed=0)
    X, y = data.X_train.double(), data.y_train
    out = {}
    for name, hp in cases:
        key = name + (f" {hp}" if hp else "")
        try:
            params, state, losses, moved = _run(name, hp, X, y, distributed=True)
            replicated = {
                k: dist.same_on_all_ranks(v) for k, v in (("params", params), ("state", state), ("losses", losses))
            }
            ref_params, ref_state, ref_losses, _ = _run(name, hp, X, y, distributed=False)
            diff = {
                "params": _maxabs(params, ref_params),
                "state": _maxabs(state, ref_state),
                "losses": _maxabs(losses, ref_losses),
            }
            out[key] = {"replicated": replicated, "diff": diff, "moved": moved, "state_size": state.numel()}
        except Exception as err:  # report per optimizer; keep the ranks in step for the next one
            out[key] = {"error": f"{type(err).__name__}: {err}"}
    return out


def sharded_refusal() -> dict:
    """A DTensor shard (what FSDP2 makes of a parameter) is refused by a non-shardable optimizer only."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    register_test_optimizers()
    mesh = init_device_mesh("cpu", (dist.world_size(),))
    weight = torch.nn.Parameter(distribute_tensor(torch.randn(4, 3), mesh, [Shard(0)]))
    result = {"sgd_accepts": optim.create("sgd", [weight]) is not None}
    try:
        optim.create("test_armijo", [weight])
        result["armijo_error"] = None
    except ValueError as err:
        result["armijo_error"] = str(err)
    return result


def _reduce_timed() -> None:
    """All-reduce on rank 0; re-raise its failure with the seconds it took to fail."""
    start = time.monotonic()
    try:
        dist.all_reduce_sum(torch.ones(3))
    except dist.RankFailure as err:
        raise dist.RankFailure(f"{err} [failed after {time.monotonic() - start:.2f} s]") from None


def die_or_reduce() -> None:
    """Rank 1 dies; rank 0 then enters an all-reduce and must fail, not hang."""
    if dist.rank() == 1:
        os._exit(7)
    time.sleep(0.5)
    _reduce_timed()


def stall_or_reduce(stall_s: float) -> None:
    """Rank 1 stays alive but never joins the collective; rank 0 must time out."""
    if dist.rank() == 1:
        time.sleep(stall_s)
        return None
    _reduce_timed()


def cli_compare(out_root: str, argv: list[str]) -> int:
    """``beyondsgd compare`` on every rank, each pointed at its own folder (to see who writes)."""
    from beyondsgd.cli import main

    return main([*argv, "--out", os.path.join(out_root, f"out-rank{dist.rank()}")])


def all_checks(cases: list[tuple[str, dict]], out_root: str, cli_argv: list[str]) -> dict:
    """Everything that needs a healthy 2-rank group, in one spawn (starting processes is the slow part)."""
    return {
        "equivalence": equivalence(cases),
        "sharded": sharded_refusal(),
        "cli_code": cli_compare(out_root, cli_argv),
    }


# Shared by the test modules (imported from here, not from conftest: several test folders
# have a conftest.py, and `from conftest import ...` picks whichever pytest loaded last).
#: (optimizer, hyperparameters) checked for 2 ranks == 1 rank: every registered optimizer
#: (read at collection time, so optimizers merged later are covered) plus stateful variants
#: and a backtracking optimizer that takes decisions from the closure's loss.
CASES = [(name, {}) for name in optim.available()] + [
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adam", {"amsgrad": True, "weight_decay": 1e-3}),
    ("test_armijo", {}),
]

#: A small data-parallel ``beyondsgd compare`` (batch 45 on 150 samples: uneven shards).
CLI_ARGS = [
    "compare",
    "--algorithms",
    "sgd,adam",
    "--seeds",
    "1",
    "--epochs",
    "1",
    "--n-train",
    "150",
    "--batch-size",
    "45",
    "--model-option",
    "widths=(16,)",
    "--no-progress",
    "--threads",
    "1",
]
