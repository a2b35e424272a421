"""TIAM and plain alternating minimization as :class:`beyondsgd.training.Trainer` s.

One outer iteration visits, layer by layer, the blocks ``W_l, b_l, z_l, a_l``
and finally ``z_L`` (spec "Sub-problem closed forms"), each with the inertial
linearized step of :mod:`beyondsgd.am.blocks`:

* ``W_l``: backtracked gradient step on ``(rho/2N)||z_l - a_{l-1} W^T - b_l||^2 + (mu/2)||W||^2``.
* ``b_l``: exact step (the block is a quadratic with curvature ``rho``):
  ``b+ = mean(z_bar - a_bar W_bar^T) + (p1 - p2)(b^k - b^{k-1})``.
* ``z_l``: ``Proj_C(c + (p1 - p2)(z^k - z^{k-1}))`` with ``C = {|h(z) - a_l| <= eps}``.
* ``a_l``: backtracked projected step on ``(rho/2)||z_{l+1} - a W_{l+1}^T - b_{l+1}||^2``,
  box ``[h(z_l) - eps, h(z_l) + eps]``.
* ``z_L``: proximal map of the output loss around ``c_L + (p1 - p2)(z^k - z^{k-1})``.

Auxiliary variables (``z_l``, ``a_l`` and their previous iterates) are held for
every training sample; an outer iteration on a batch updates ``W, b`` and the
batch's rows (mini-batch mode: the paper's future work).  Constraints and the
safeguard always use the *raw* iterates, the couplings use the extrapolated
``u_bar = u + p3 (u - u_prev)`` of the latest two iterates (the project's reading
of the spec).  Predictions come from an exact forward pass with ``W, b``.

References:
    Yan et al., "TIAM", arXiv 2503.08489 (triple inertia, specialized approximation);
    Wang et al., mDLAM (relaxation, eps schedule); Pock & Sabach, iPALM (inertial steps).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from beyondsgd import distributed as dist
from beyondsgd.am.blocks import backtracking_step
from beyondsgd.am.inertia import Inertia, extrapolate
from beyondsgd.am.losses import CrossEntropy, output_loss_for
from beyondsgd.am.network import parse_mlp
from beyondsgd.am.objective import ObjectiveTerms, Workspace, penalty_sum
from beyondsgd.am.reduction import Reducer, abs_max, max_abs
from beyondsgd.training import LossFn, Trainer, batch_indices
from beyondsgd.validation import (
    BOOL,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    UNIT,
    Interval,
    OneOf,
    check_hyperparams,
)

#: Constraints of every hyperparameter of the AM family (one table, used by the
#: constructors and the registry).
AM_HYPERPARAMS = {
    "rho": POSITIVE,
    "mu": NONNEGATIVE,
    "eps": POSITIVE,
    "eps_decay": Interval(0.0, 1.0, low_open=True),
    "eps_min": POSITIVE,
    "safeguard": BOOL,
    "theta_init": POSITIVE,
    "max_doublings": NONNEGATIVE_INT,
    "prox_iters": POSITIVE_INT,
    "prox_tol": POSITIVE,
    "prox_stopping": OneOf(CrossEntropy.STOPPING),
    "output_init": OneOf(("forward", "labels")),
    "first_sweep": OneOf(("forward", "backward")),
    "box": OneOf(("auto", "output", "input")),
    "memory_fraction": Interval(0.0, 1.0, low_open=True),
}
#: The inertial hyperparameters TIAM adds.
TIAM_HYPERPARAMS = {
    **AM_HYPERPARAMS,
    "p1": UNIT,
    "p2": UNIT,
    "p3": UNIT,
    "schedule": OneOf(("constant", "ipalm")),
}

#: Defaults of both algorithms (chosen by the sweep in docs/tiam.md). The constructors'
#: defaults ARE these values (one source of truth for the classes, the registry and the CLI).
AM_DEFAULTS: dict[str, Any] = {
    "rho": 1.0,
    "mu": 1e-4,
    "eps": 1.0,
    "eps_decay": 0.8,
    "eps_min": 1e-3,
    "box": "auto",
}
#: TIAM's inertias on top of :data:`AM_DEFAULTS`.
TIAM_DEFAULTS: dict[str, Any] = {**AM_DEFAULTS, "p1": 0.9, "p2": 0.6, "p3": 0.3, "schedule": "constant"}

_Z3 = (0.0, 0.0, 0.0)
_NO_INERTIA = {"p1": 0.0, "p2": 0.0, "p3": 0.0, "schedule": "constant"}


def available_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (CUDA: ``mem_get_info``; CPU: available physical pages)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX: no reliable figure, do not refuse
        return 2**62


def auxiliary_bytes(n: int, in_features: int, widths: list[int], element_size: int) -> int:
    """Bytes of the auxiliary variables plus a full-batch working set.

    ``z_l`` and ``a_l`` (hidden) or ``z_L`` (output), each with its previous
    iterate: ``2 N (2 sum(hidden) + out)`` numbers, plus about four
    ``N x max(width, input)`` temporaries of one full-batch iteration and the
    reused scratch buffers (:class:`~beyondsgd.am.objective.Workspace`): about
    ``6 (L + 1)`` of ``N x max(width)`` (measured: 21 for the 3x100 MLP).
    """
    hidden, out = widths[:-1], widths[-1]
    stored = 2 * n * (2 * sum(hidden) + out)
    working = 4 * n * max(widths + [in_features]) + 6 * (len(widths) + 1) * n * max(widths)
    return (stored + working) * element_size


def forward_pass(
    Xf: torch.Tensor, W: list[torch.Tensor], b: list[torch.Tensor], acts: list[Any]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The exact forward pass of the chain: ``z_l = a_{l-1} W_l^T + b_l``, ``a_l = h(z_l)``.

    Returns:
        ``z`` (every layer's pre-activation) and ``a`` (``a[0]`` is ``Xf``, then the hidden outputs).
    """
    z: list[torch.Tensor] = []
    a: list[torch.Tensor] = [Xf]
    for j in range(len(W)):
        z.append(a[j] @ W[j].T + b[j])
        if j < len(W) - 1:
            a.append(acts[j](z[j]))
    return z, a


def start_variables(
    structure: Any, Xf: torch.Tensor, y: torch.Tensor, out_loss: Any, output_init: str
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """The model's weights and the auxiliary variables of a forward pass: a feasible, consistent start.

    Args:
        structure: the parsed chain (:func:`beyondsgd.am.network.parse_mlp`).
        Xf: the flattened inputs (``a_0``), in the weights' dtype.
        y: the targets.
        out_loss: the output loss (its ``target`` gives ``z_L`` from the labels).
        output_init: ``"forward"`` (``z_L`` from the forward pass) or ``"labels"``.

    Returns:
        ``W, b, z, a`` (copies of the weights; ``a[0]`` is ``Xf``).
    """
    lin = structure.linears
    with torch.no_grad():
        W = [m.weight.detach().clone() for m in lin]
        b = [m.bias.detach().clone() for m in lin]
        z, a = forward_pass(Xf, W, b, structure.activations)
        if output_init == "labels":
            z[-1] = out_loss.target(y, lin[-1].out_features, Xf.dtype)
    return W, b, z, a


def check_memory(
    n: int,
    in_features: int,
    widths: list[int],
    dtype: torch.dtype,
    device: torch.device,
    memory_fraction: float,
    extra_per_sample: int = 0,
) -> None:
    """Refuse early when the auxiliary variables would not fit.

    Args:
        n, in_features, widths: samples held, input width, output width of every Linear.
        dtype, device: where the variables live.
        memory_fraction: the allowed fraction of the free memory.
        extra_per_sample: further numbers per sample (e.g. dlADMM's dual variable).

    Raises:
        ValueError: the estimate exceeds ``memory_fraction`` of the free memory.
    """
    size = torch.finfo(dtype).bits // 8
    need = auxiliary_bytes(n, in_features, widths, size) + n * extra_per_sample * size
    free = available_memory_bytes(device)
    if need > memory_fraction * free:
        raise ValueError(
            f"alternating minimization needs about {need / 2**20:.0f} MiB for its auxiliary variables "
            f"(O(N x width) per layer: {n} samples, widths {widths}), more than "
            f"memory_fraction={memory_fraction} of the {free / 2**20:.0f} MiB free on {device}; "
            "use fewer training samples or a smaller net"
        )


def checked_state_lists(
    trainer: Any,
    state: Mapping[str, Any],
    lists: tuple[str, ...],
    others: tuple[str, ...],
    per_sample: tuple[str, ...],
    rows: slice | None = None,
) -> dict[str, list[Any]]:
    """The list entries ``lists`` of a saved trainer state, copied and checked against the trainer's.

    Checking everything before a trainer assigns anything keeps a refused state from
    leaving it half-loaded. The state's ``"module"`` is checked against ``trainer.model``
    (same names and shapes), not copied.

    Args:
        trainer: the trainer loading the state (its attributes ``lists`` are the current values).
        state: the saved state.
        lists: names of the per-layer lists of tensors (or numbers) to copy.
        others: further names the state must hold (besides ``"module"``).
        per_sample: those of ``lists`` whose rows are the ``trainer.n`` samples.
        rows: this rank's rows of the per-sample tensors (``None``: all).

    Returns:
        ``{name: list}`` on the trainer's devices.

    Raises:
        ValueError: a missing entry (a state of another algorithm), another number of
            layers or samples, or a tensor of another shape (another network).
    """
    missing = [k for k in (*lists, *others, "module") if k not in state]
    if missing:
        raise ValueError(
            f"not a {type(trainer).__name__} state: it lacks {', '.join(map(repr, missing))} "
            "(a state of another algorithm?)"
        )
    staged: dict[str, list[Any]] = {}
    for name in lists:
        cur, saved_list = getattr(trainer, name), state[name]
        if len(saved_list) != len(cur):
            raise ValueError(f"state has {len(saved_list)} entries of {name!r}, this trainer {len(cur)}")
        if name in per_sample:
            if any(t.shape[0] != trainer.n for t in saved_list):
                raise ValueError(
                    f"state holds {name!r} for {saved_list[0].shape[0]} samples; this trainer has {trainer.n}"
                )
            if rows is not None:
                saved_list = [t[rows] for t in saved_list]
        new = [t.clone().to(cur[0].device) if torch.is_tensor(t) else t for t in saved_list]
        for j, (t, c) in enumerate(zip(new, cur)):
            if torch.is_tensor(t) and torch.is_tensor(c) and t.shape != c.shape:
                raise ValueError(
                    f"state's {name}[{j}] has shape {tuple(t.shape)}, this trainer's {tuple(c.shape)} "
                    "(a state of a different network?)"
                )
        staged[name] = new
    own, saved = trainer.model.state_dict(), state["module"]
    wrong = sorted(set(saved) ^ set(own)) or [
        k for k in own if tuple(getattr(saved[k], "shape", ())) != tuple(own[k].shape)
    ]
    if wrong:
        raise ValueError(
            f"state's module does not fit this trainer's model ({', '.join(map(repr, wrong[:4]))}"
            f"{'...' if len(wrong) > 4 else ''} differ): a state of a different network?"
        )
    return staged


class AMTrainer(Trainer):
    """Alternating minimization of the relaxed objective, with TIAM's three inertias.

    Args:
        model: the MLP to train (``[Flatten,] Linear, act, ..., Linear``; acts:
            ReLU, LeakyReLU, ELU). Its current weights are the starting point, and
            it is updated in place: after every :meth:`train_step` its Linear layers
            hold the current ``W, b`` (evaluate ``model`` directly).
        X, y: the training set (all of it: auxiliary variables are per sample).
        loss_fn: ``F.cross_entropy`` or ``F.mse_loss`` (mean).
        rho: coupling penalty weight (per sample, see :mod:`beyondsgd.am.objective`).
        mu: weight decay ``(mu/2)||W||^2``.
        eps: initial relaxation half-width of ``|h(z) - a| <= eps``.
        eps_decay: ``eps`` is multiplied by this after every pass over the data.
        eps_min: floor of ``eps``.
        p1, p2, p3: inertias (proximal centre, gradient point, extrapolation);
            ``None``: the class's default (:data:`TIAM_DEFAULTS` for :class:`TIAM`, 0 for :class:`PlainAM`).
        schedule: ``"constant"`` or ``"ipalm"`` (``p_i (k-1)/(k+2)``); ``None``: the class's default.
        safeguard: redo a block without extrapolation when its objective rises.
        theta_init: first ``theta`` of the backtracking (later: the last accepted one).
        max_doublings: cap of the backtracking; on the cap the block keeps its value.
        prox_iters, prox_tol: inner solver of the cross-entropy prox.
        prox_stopping: when that solver stops: ``"bound"`` (a proven iteration count, no host
            sync), ``"test"`` (gradient-norm test every 10 iterations, one sync each) or
            ``"auto"`` (bound on accelerators, test on CPU); see
            :class:`~beyondsgd.am.losses.CrossEntropy`.
        output_init: ``"forward"`` (``z_L`` = network output) or ``"labels"`` (mDLAM: +-1).
        first_sweep: ``"forward"`` (every iteration sweeps layers 1..L) or ``"backward"``:
            on the first pass over the data each batch is first swept from the output
            down, ``z_L`` (prox: the label signal), then ``a_l`` and ``z_l`` (projected on
            the ``eps_min`` box around the new ``a_l``) for ``l = L-1..1``, without inertia,
            before its forward sweep; the swept values become the starting point (previous
            iterates reset to them). The project's choice, not
            the paper's: from a forward-pass start every hidden residual is zero, so a
            forward first sweep moves nothing below the output (docs/tiam.md "Levers").
        box: the relaxation ``"output"`` (``|h(z) - a| <= eps``, mDLAM's), ``"input"``
            (``h(z - eps) <= a <= h(z + eps)``: the box in ``z`` units, see
            :mod:`beyondsgd.am.projections`) or ``"auto"``: output for ReLU layers, input
            for leaky ReLU and ELU layers (the project's choice, docs/tiam.md "Levers").
        memory_fraction: refuse when the auxiliary variables need more than this
            fraction of the free memory of the device.
        distributed: data-parallel over the process group (``None``: when more
            than one rank is active). Each rank keeps ``z, a`` of the samples it
            owns (:func:`beyondsgd.distributed.owned_range`) and all-reduces every
            sum over samples that a shared block or a decision uses (see
            :mod:`beyondsgd.am.reduction`); ``X, y`` are still the whole training set.

    Raises:
        ValueError: bad hyperparameter, unsupported model or loss, or not enough memory.
    """

    HYPERPARAMS: Mapping[str, Any] = TIAM_HYPERPARAMS
    #: The defaults of this class's constructor (and of its registry entry).
    DEFAULTS: Mapping[str, Any] = TIAM_DEFAULTS
    supports_distributed = True

    def __init__(
        self,
        model: nn.Module,
        X: torch.Tensor,
        y: torch.Tensor,
        loss_fn: LossFn = F.cross_entropy,
        *,
        rho: float = AM_DEFAULTS["rho"],
        mu: float = AM_DEFAULTS["mu"],
        eps: float = AM_DEFAULTS["eps"],
        eps_decay: float = AM_DEFAULTS["eps_decay"],
        eps_min: float = AM_DEFAULTS["eps_min"],
        p1: float | None = None,
        p2: float | None = None,
        p3: float | None = None,
        schedule: str | None = None,
        safeguard: bool = True,
        theta_init: float = 1.0,
        max_doublings: int = 10,
        prox_iters: int = 500,
        prox_tol: float = 1e-4,
        prox_stopping: str = "auto",
        output_init: str = "forward",
        first_sweep: str = "forward",
        box: str = AM_DEFAULTS["box"],
        memory_fraction: float = 0.5,
        distributed: bool | None = None,
    ) -> None:
        hp = dict(
            rho=rho,
            mu=mu,
            eps=eps,
            eps_decay=eps_decay,
            eps_min=eps_min,
            safeguard=safeguard,
            theta_init=theta_init,
            max_doublings=max_doublings,
            prox_iters=prox_iters,
            prox_tol=prox_tol,
            prox_stopping=prox_stopping,
            output_init=output_init,
            first_sweep=first_sweep,
            box=box,
            memory_fraction=memory_fraction,
        )
        given = dict(p1=p1, p2=p2, p3=p3, schedule=schedule)
        # None: the class's default (TIAM_DEFAULTS for TIAM, no inertia for PlainAM).
        inertial = {k: (self.DEFAULTS.get(k, _NO_INERTIA[k]) if v is None else v) for k, v in given.items()}
        p1, p2, p3 = (float(inertial[k]) for k in ("p1", "p2", "p3"))
        schedule = str(inertial["schedule"])
        if "p1" in self.HYPERPARAMS:
            hp.update(inertial)
        elif any(inertial[k] != v for k, v in _NO_INERTIA.items()):
            raise ValueError(f"{type(self).__name__} has no inertia; use TIAM for p1, p2, p3, schedule")
        check_hyperparams(type(self).__name__, hp, self.HYPERPARAMS)
        if eps_min > eps:
            raise ValueError(
                f"invalid eps_min={eps_min!r} for {type(self).__name__}: above eps={eps!r}, so the eps in force "
                "would be eps_min from the start; give eps_min <= eps"
            )
        super().__init__(X, y, loss_fn)
        self.model = model
        self.structure = parse_mlp(model)
        self.acts = self.structure.activations
        self.distributed = dist.is_distributed() if distributed is None else bool(distributed)
        self._red = Reducer(self.distributed)
        self.out_loss = output_loss_for(
            loss_fn, prox_iters, prox_tol, self._red.max if self.distributed else None, y=y, prox_stopping=prox_stopping
        )
        self.rho, self.mu = float(rho), float(mu)
        self.eps0, self.eps_decay, self.eps_min = float(eps), float(eps_decay), float(eps_min)
        self.inertia = Inertia(float(p1), float(p2), float(p3), schedule)
        self.safeguard, self.max_doublings = bool(safeguard), int(max_doublings)
        #: The box of each hidden layer ("auto": output box for ReLU, input box for the others).
        self.boxes = [("output" if act.name == "relu" else "input") if box == "auto" else box for act in self.acts]
        for layer, (act, kind) in enumerate(zip(self.acts, self.boxes), start=1):
            if kind == "input" and act.lipschitz > 1.0:
                raise ValueError(
                    f"hidden layer {layer}: the input box (box={box!r}) keeps |h(z) - a| <= eps only for a "
                    f"1-Lipschitz activation; {act.name} here has Lipschitz constant {act.lipschitz:g} "
                    "(negative_slope or alpha above 1): use box='output' or a slope/alpha <= 1"
                )
        self.hyperparams = hp

        lin = self.structure.linears
        self.n = X.shape[0]  # global: batch sizes, the eps schedule and the means count every rank's samples
        Xf = self.structure.flat_inputs(X, y)
        self.y = y = self.out_loss.check_targets(y, lin[-1].out_features)
        # The samples whose z, a this process holds: all of them, or the rank's block.
        self.start, self.stop = dist.owned_range(self.n) if self.distributed else (0, self.n)
        if self.distributed:
            Xf, y = Xf[self.start : self.stop], y[self.start : self.stop]
        self.y_own = y
        dtype, device = lin[0].weight.dtype, lin[0].weight.device
        check_memory(Xf.shape[0], Xf.shape[1], self.structure.widths, dtype, device, memory_fraction)
        self.Xf = Xf.to(dtype)

        self.W, self.b, self.z, self.a = start_variables(self.structure, self.Xf, y, self.out_loss, output_init)
        self.Wp = [w.clone() for w in self.W]
        self.bp = [v.clone() for v in self.b]
        self.zp = [v.clone() for v in self.z]
        self.ap = [v.clone() for v in self.a]  # ap[0] is the input (never used as an iterate)
        self.k = 0
        self.samples_seen = 0
        self.theta_W = [float(theta_init)] * len(lin)
        self.theta_a = [float(theta_init)] * (len(lin) - 1)
        self.safeguard_count = 0
        self.cap_count = 0
        self._eps_of_last_step: float | None = None
        # Full batch: the logged terms of the last step, as tensors (fetched by end_epoch, one sync).
        self._last_terms: tuple | None = None
        self._cache: tuple | None = None  # full batch: products, penalties, loss at the current state
        self._xwp: torch.Tensor | None = None
        self._restored_products: list[torch.Tensor] | None = None  # X W^T, X W_prev^T from a state
        self._ex_memo: dict[tuple[int, int, float], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        # a_{j-1} W_j^T before this iteration's a-block replaced it, by layer: with the a-block's product it
        # gives a_bar W_j^T at the old W_j without a product (see _seed_coupling_product).
        self._aw_before_a: dict[int, torch.Tensor] = {}
        self._ws = Workspace()  # scratch for temporaries that are reduced right away
        self.timings: dict[str, float] | None = None  # set to {} to collect a time split per block

    # ------------------------------------------------------------------ helpers
    @property
    def num_layers(self) -> int:
        return len(self.W)

    @property
    def eps(self) -> float:
        """Relaxation half-width in force: ``eps0 * decay**(passes over the data)``, floored."""
        return max(self.eps0 * self.eps_decay ** (self.samples_seen // self.n), self.eps_min)

    def _ok(self, before: float, after: float) -> bool:
        return after <= before + 1e-6 * (abs(before) + 1e-12)

    def _ok_tensor(self, before: torch.Tensor, after: torch.Tensor) -> bool:
        """:meth:`_ok` of the two values: one host sync for the decision (both fetched at once).

        The test itself runs on the host in double precision, the arithmetic the device
        computed before in float64 (same operations in the same order: the same decision).
        """
        before, after = torch.as_tensor(before), torch.as_tensor(after)
        dtype = torch.promote_types(before.dtype, after.dtype)  # exact: the wider of the two
        b, a = torch.stack((before.to(dtype), after.to(dtype))).tolist()
        return self._ok(b, a)

    def _guarded(self, before: torch.Tensor, attempt: Callable, p: tuple[float, float, float]):
        """Run ``attempt(p)``; if the block objective rose, redo it without extrapolation (counted).

        ``before`` is a 0-d tensor: the host sync happens only when the check is made
        (safeguard on and some inertia non-zero), never in plain AM.
        """
        result = attempt(p)
        if self.safeguard and p != _Z3 and not self._ok_tensor(before, result[1]):
            self.safeguard_count += 1
            result = attempt(_Z3)
        return result

    def _ex(self, cur: torch.Tensor, prev: torch.Tensor, p: float) -> torch.Tensor:
        """:func:`extrapolate` of a per-sample variable, computed once per outer iteration.

        Several blocks see the same ``u_bar`` (e.g. ``z_bar_l`` by the ``a_{l-1}``, ``W_l`` and
        ``b_l`` blocks); the memo returns the tensor computed first (same arithmetic, so the
        iterates do not change). Entries hold ``cur`` and ``prev``, so their ids stay valid.
        """
        if p == 0 or prev is cur:
            return cur
        key = (id(cur), id(prev), p)
        hit = self._ex_memo.get(key)
        if hit is None:
            # Each entry lives until the end of the iteration, in its own workspace buffer.
            buf = self._ws.get(f"ex{len(self._ex_memo)}", cur.shape, cur)
            hit = self._ex_memo[key] = (cur, prev, torch.lerp(prev, cur, 1.0 + p, out=buf))  # = extrapolate()
        return hit[2]

    def _scratch(self, name: str, shape: torch.Size) -> torch.Tensor:
        return self._ws.get(name, shape, self.Xf)

    def _pen(self, a_in, W, b, z, aw=None) -> torch.Tensor:
        """:func:`penalty_sum` with its residual in the workspace (rank-local sum)."""
        return penalty_sum(a_in, W, b, z, self.rho, aw=aw, out=self._scratch("pen", z.shape))

    def _timed(self, name: str, fn: Callable):
        if self.timings is None:
            return fn()
        if self.Xf.device.type == "cuda":
            torch.cuda.synchronize(self.Xf.device)
        t0 = time.perf_counter()
        out = fn()
        if self.Xf.device.type == "cuda":
            torch.cuda.synchronize(self.Xf.device)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0
        return out

    # ------------------------------------------------------------------ one outer iteration
    @torch.no_grad()
    def train_step(self, indices: torch.Tensor | None) -> torch.Tensor:
        """One outer iteration on the batch ``indices`` (``None``: full batch).

        Returns:
            ``F_eps`` on the batch after the iteration (0-d tensor).
        """
        indices = batch_indices(indices, self.Xf.device)
        self.k += 1
        self._ex_memo.clear()
        self._aw_before_a.clear()
        p = self.inertia.at(self.k)
        eps = self._eps_of_last_step = self.eps
        full = indices is None
        rows, m = indices, None  # rows of this process's per-sample arrays; m: the global batch size
        if self.distributed:
            owned, m = dist.owned_shard(indices, self.n, self.Xf.device)
            rows = None if full else owned - self.start

        def take(t: torch.Tensor) -> torch.Tensor:
            return t if full else t[rows]

        A, Ap = [take(t) for t in self.a], [take(t) for t in self.ap]
        Z, Zp = [take(t) for t in self.z], [take(t) for t in self.zp]
        Ap[0] = A[0]
        Y = take(self.y_own)
        if m is None:
            m = A[0].shape[0]
        L = self.num_layers
        if full and self._cache is not None:
            # Full batch: the last iteration ended at exactly this state; reuse its
            # products a_{l-1} W_l^T, penalties and loss (saves a forward pass).
            AW, pen, loss, self._xwp = self._cache
        else:
            # A resumed full-batch run takes layer 1's products from the state: they carry the
            # rounding of the trials' line evaluation (see _update_W), so a resume is identical.
            restored, self._restored_products = self._restored_products, None
            restored = restored if full else None
            AW = [restored[0] if restored and j == 0 else A[j] @ self.W[j].T for j in range(L)]
            pen = [self._pen(A[j], self.W[j], self.b[j], Z[j], aw=AW[j]) for j in range(L)]
            loss = self.out_loss.sum(Z[L - 1], Y)
            *pen, loss = self._red.sums(*pen, loss)
            # X W_prev^T of the input layer (full batch: X is fixed, so extrapolated products
            # of layer 1 are combinations of two known products; see _input_product).
            self._xwp = (restored[1] if restored else A[0] @ self.Wp[0].T) if full else None
        if self.hyperparams["first_sweep"] == "backward" and self.samples_seen < self.n:
            loss = self._backward_sweep(A, Ap, Z, Zp, AW, pen, m, Y, loss, eps)
        for j in range(L):
            memo: dict[float, torch.Tensor] = {}  # a_bar W_bar^T of this layer, shared by b, z, z_L
            self._timed("W", lambda: self._update_W(j, A, Ap, Z, Zp, AW, pen, m, p, memo))
            self._timed("b", lambda: self._update_b(j, A, Ap, Z, Zp, AW, pen, m, p, memo))
            if j < L - 1:
                self._timed("z", lambda: self._update_z(j, A, Ap, Z, Zp, AW, pen, m, p, eps, memo))
                self._timed("a", lambda: self._update_a(j + 1, A, Ap, Z, Zp, AW, pen, m, p, eps))
            else:
                loss = self._timed("z_L", lambda: self._update_zL(A, Ap, Z, Zp, AW, pen, m, p, Y, loss, memo))

        # Write the batch's auxiliary variables back.
        for store, store_p, new, new_p, first in ((self.a, self.ap, A, Ap, 1), (self.z, self.zp, Z, Zp, 0)):
            for j in range(first, len(store)):
                if full:
                    store[j], store_p[j] = new[j], new_p[j]
                else:
                    store[j][rows], store_p[j][rows] = new[j], new_p[j]
        self.samples_seen += m
        self._ex_memo.clear()
        self._aw_before_a.clear()
        self._cache = (AW, pen, loss, self._xwp) if full else None
        self._sync_module()
        reg = 0.5 * self.mu * sum(w.pow(2).sum() for w in self.W)
        penalty = sum(pen) / m
        if full:
            # No host sync here: the terms stay on the device until end_epoch reads them.
            self._last_terms = (loss / m, penalty, reg, Z[: L - 1], A[1:L], eps)
        return (loss / m + penalty + reg).detach()

    def _terms_of_last_step(self) -> ObjectiveTerms:
        """The logged terms of the last full-batch step, fetched to the host in one sync."""
        assert self._last_terms is not None
        loss, penalty, reg, zs, as_, eps = self._last_terms
        gaps = []
        for act, z, a in zip(self.acts, zs, as_):  # max |h(z_l) - a_l|, on the device
            d = act(z).sub_(a)
            if d.numel():
                gaps.append(abs_max(d))
        vals = torch.stack([torch.as_tensor(v).to(loss) for v in (loss, penalty, reg)] + gaps).tolist()
        gap = self._red.max(max(vals[3:], default=0.0))
        return ObjectiveTerms(vals[0], vals[1], vals[2], gap, eps)

    def _backward_sweep(self, A, Ap, Z, Zp, AW, pen, m, Y, loss, eps) -> torch.Tensor:
        """``z_L``, then ``a_l, z_l`` for ``l = L-1..1``, no inertia (``first_sweep="backward"``).

        ``z_L`` and ``a_l`` take their usual steps; ``z_l`` is projected on the box of
        half-width ``eps_min`` (not ``eps``) around the new ``a_l``: with the full box the
        coupling point ``c_l`` stays feasible, ``z_l`` does not move and nothing below moves
        either. This makes the sweep a target propagation from the labels down (it can raise
        the layer's penalty; the constraint ``|h(z) - a| <= eps`` holds). Afterwards the
        previous iterates are reset to the swept values (no inertia from this warm start).
        """
        L = self.num_layers
        loss = self._timed("z_L", lambda: self._update_zL(A, Ap, Z, Zp, AW, pen, m, _Z3, Y, loss, {}))
        for i in range(L - 1, 0, -1):
            self._timed("a", lambda: self._update_a(i, A, Ap, Z, Zp, AW, pen, m, _Z3, eps))
            self._timed("z", lambda: self._update_z(i - 1, A, Ap, Z, Zp, AW, pen, m, _Z3, self.eps_min, {}))
        for j in range(L):
            Zp[j] = Z[j]
            if j > 0:
                Ap[j] = A[j]
        return loss

    def _update_W(self, j, A, Ap, Z, Zp, AW, pen, m, p, memo) -> None:
        rho, mu = self.rho, self.mu
        W, Wp, b = self.W[j], self.Wp[j], self.b[j]
        before = pen[j] / m + 0.5 * mu * W.pow(2).sum()  # 0-d tensor: synced only if the safeguard checks

        def attempt(q):
            p1, p2, p3 = q
            a_in = self._ex(A[j], Ap[j], p3)
            z_in = self._ex(Z[j], Zp[j], p3)
            b_in = extrapolate(b, self.bp[j], p3)
            W_hat, W_til = extrapolate(W, Wp, p2), extrapolate(W, Wp, p1)
            if a_in is A[j] and W_hat is W:
                aw_hat = AW[j]
            elif j == 0 and self._xwp is not None:
                aw_hat = self._input_product(AW[0], p2)
            else:
                aw_hat = torch.mm(a_in, W_hat.T, out=self._scratch("W.aw", (a_in.shape[0], W.shape[0])))
            r = torch.add(aw_hat, b_in, out=self._scratch("W.r", aw_hat.shape)).sub_(z_in)
            r_a = r.T @ a_in
            r_sq = r.square_().sum()
            # Reduction point: the sample sums of the W_l model (gradient and value), one call.
            r_a, r_sq = self._red.sums(r_a, r_sq)
            f_hat = 0.5 * rho * r_sq / m + 0.5 * mu * W_hat.pow(2).sum()
            grad = (rho / m) * r_a + mu * W_hat
            last = {}
            raw_inputs = a_in is A[j] and b_in is b and z_in is Z[j]

            def f(U, aw=None):  # every trial's value is global: all ranks accept the same theta
                last["aw"] = a_in @ U.T if aw is None else aw
                last["pen"] = self._red.sum(self._pen(a_in, U, b_in, z_in, aw=last["aw"]))
                return last["pen"] / m + 0.5 * mu * U.pow(2).sum()

            f_trial = None
            if j == 0 and self._xwp is not None:
                # Layer 1, full batch: X W_til^T is free (_input_product) and the trials lie on the
                # line U(theta) = W_til - g/theta, so X U(theta)^T = X W_til^T + (theta_1/theta)
                # (X U(theta_1)^T - X W_til^T): one product for the first trial, none for the others.
                line: dict[str, Any] = {}

                def f_trial(U, theta):
                    if not line:
                        line["theta"], line["xu"] = theta, a_in @ U.T
                        return f(U, line["xu"])
                    if "xw_til" not in line:
                        line["xw_til"] = self._input_product(AW[0], p1)
                    return f(U, torch.lerp(line["xw_til"], line["xu"], line["theta"] / theta))

            res = self._timed(
                "W.backtracking",
                lambda: backtracking_step(
                    f,
                    f_hat,
                    grad,
                    W_til,
                    W_hat,
                    self.theta_W[j],
                    None,
                    self.max_doublings,
                    scratch=self._scratch,
                    f_trial=f_trial,
                ),
            )
            self.theta_W[j] = res.theta
            accepted["q"], accepted["a_in"], accepted["aw_in"] = q, a_in, None if res.u is None else last["aw"]
            if res.u is None:
                self.cap_count += 1
                W_new, aw = W, AW[j]
                pen_new = pen[j]
            else:
                W_new = res.u
                aw = last["aw"] if a_in is A[j] else A[j] @ W_new.T
                # At the raw iterates the accepted trial's penalty is the block's new penalty.
                pen_new = last["pen"] if raw_inputs else self._red.sum(self._pen(A[j], W_new, b, Z[j], aw=aw))
            return W_new, pen_new / m + 0.5 * mu * W_new.pow(2).sum(), pen_new, aw

        aw_old = AW[j]
        accepted: dict[str, Any] = {}  # the attempt that ran last (the one kept) and its trial product
        W_new, _, pen[j], AW[j] = self._guarded(before, attempt, p)
        self.Wp[j], self.W[j] = W, W_new
        self._seed_coupling_product(j, A, Ap, aw_old, accepted, memo)
        if j == 0 and self._xwp is not None:
            self._xwp = aw_old  # X W_prev^T after the update is the product before it

    def _seed_coupling_product(self, j, A, Ap, aw_old, accepted, memo) -> None:
        """Put ``a_bar W_bar^T`` of layer ``j`` (``j >= 1``) into ``memo`` from products already made.

        With ``a_bar = a + p3 (a - a_prev)`` and ``W_bar = W_new + p3 (W_new - W_old)`` the product is
        bilinear: ``a_bar W_bar^T = (1 + p3) a_bar W_new^T - p3 a_bar W_old^T``. The W-block's accepted
        trial already computed ``a_bar W_new^T``, and ``a_bar W_old^T = (1 + p3) a W_old^T - p3 a_prev
        W_old^T`` comes from the products of ``a`` and ``a_prev`` with ``W_old``, held before and after
        this iteration's a-block. So the b, z (and z_L) blocks need no product (rounding differs from the
        direct product; the arithmetic is the same). Only when the W-block kept its inertial attempt and
        a trial was accepted; otherwise ``_coupling_product`` multiplies as before.
        """
        q, a_in, aw_in = accepted.get("q"), accepted.get("a_in"), accepted.get("aw_in")
        if j == 0 or aw_in is None or q is None or q[2] == 0 or a_in is A[j] or j not in self._aw_before_a:
            return
        p3 = q[2]
        if a_in is not self._ex(A[j], Ap[j], p3):  # (the memoized a_bar the coupling blocks will use)
            return
        aw_bar_old = torch.lerp(self._aw_before_a[j], aw_old, 1.0 + p3)
        memo[p3] = torch.lerp(aw_bar_old, aw_in, 1.0 + p3)

    def _input_product(self, xw: torch.Tensor, p: float) -> torch.Tensor:
        """``X (W + p (W - W_prev))^T = xw + p (xw - X W_prev^T)``: no matrix product (full batch, layer 1)."""
        assert self._xwp is not None  # set by the full-batch step before layer 1 is updated
        return extrapolate(xw, self._xwp, p)

    def _coupling_product(self, j, A, Ap, AW, p3, memo) -> torch.Tensor:
        """``a_bar W_bar^T`` of layer ``j`` with the latest (extrapolated) ``W_l, a_{l-1}``."""
        if p3 not in memo:
            a_in = self._ex(A[j], Ap[j], p3)
            W_in = extrapolate(self.W[j], self.Wp[j], p3)
            if a_in is A[j] and W_in is self.W[j]:
                memo[p3] = AW[j]
            elif j == 0 and self._xwp is not None:
                memo[p3] = self._input_product(AW[0], p3)
            else:
                memo[p3] = a_in @ W_in.T
        return memo[p3]

    def _update_b(self, j, A, Ap, Z, Zp, AW, pen, m, p, memo) -> None:
        b, bp = self.b[j], self.bp[j]
        before = pen[j] / m  # 0-d tensor: synced only if the safeguard checks

        def attempt(q):
            p1, p2, p3 = q
            z_in = self._ex(Z[j], Zp[j], p3)
            # Exact 1/rho step on a quadratic of curvature rho: only p1 - p2 survives.
            prod = self._coupling_product(j, A, Ap, AW, p3, memo)
            resid = torch.sub(z_in, prod, out=self._scratch("b.resid", prod.shape))
            # Reduction point: the mean over the global batch (sum over ranks / B).
            b_new = self._red.sum(resid.sum(0)) / m if self.distributed else resid.mean(0)
            if p1 != p2:
                b_new = b_new + (p1 - p2) * (b - bp)
            pen_new = self._red.sum(self._pen(A[j], self.W[j], b_new, Z[j], aw=AW[j]))
            return b_new, pen_new / m, pen_new

        b_new, _, pen[j] = self._guarded(before, attempt, p)
        self.bp[j], self.b[j] = b, b_new

    def _coupling_centre(self, j, A, Ap, AW, p3, memo) -> torch.Tensor:
        """``c_l = a_bar W_bar^T + b_bar``."""
        return self._coupling_product(j, A, Ap, AW, p3, memo) + extrapolate(self.b[j], self.bp[j], p3)

    def _update_z(self, j, A, Ap, Z, Zp, AW, pen, m, p, eps, memo) -> None:
        act, a_next = self.acts[j], A[j + 1]
        before = pen[j] / m  # 0-d tensor: synced only if the safeguard checks
        box: list[tuple[torch.Tensor, torch.Tensor]] = []  # the clamp's bounds: shared by the safeguard's redo

        def attempt(q):
            p1, p2, p3 = q
            v = self._coupling_centre(j, A, Ap, AW, p3, memo)  # a fresh tensor: updated in place
            if p1 != p2:
                v.add_(torch.sub(Z[j], Zp[j], out=self._scratch("z.diff", v.shape)).mul_(p1 - p2))
            if not box:  # (depend on a_{l+1} and eps only; in scratch, untouched until the block ends)
                bounds = act.bounds if self.boxes[j] == "output" else act.input_box_bounds
                box.append(bounds(a_next, eps, self._scratch))
            z_new = torch.clamp(v, *box[0])
            pen_new = self._red.sum(self._pen(A[j], self.W[j], self.b[j], z_new, aw=AW[j]))
            return z_new, pen_new / m, pen_new

        z_new, _, pen[j] = self._guarded(before, attempt, p)
        Zp[j], Z[j] = Z[j], z_new

    def _update_a(self, i, A, Ap, Z, Zp, AW, pen, m, p, eps) -> None:
        """Update ``a_i`` (input of layer ``i``); its box comes from the just-updated ``z_{i-1}``."""
        rho = self.rho
        act = self.acts[i - 1]
        if self.boxes[i - 1] == "output":
            lo, hi = act.box(Z[i - 1], eps, self._scratch)
        else:
            lo, hi = act.input_box(Z[i - 1], eps)
        a, a_prev = A[i], Ap[i]
        W, b = self.W[i], self.b[i]
        before = pen[i] / m  # 0-d tensor: synced only if the safeguard checks

        def op(u):  # u is the step's fresh trial point: clipped in place
            return u.clamp_(lo, hi)

        def attempt(q):
            p1, p2, p3 = q
            W_in = extrapolate(W, self.Wp[i], p3)
            b_in = extrapolate(b, self.bp[i], p3)
            z_in = self._ex(Z[i], Zp[i], p3)
            a_hat, a_til = self._ex(a, a_prev, p2), self._ex(a, a_prev, p1)
            if a_hat is a and W_in is W:
                aw_hat = AW[i]
            else:
                aw_hat = torch.mm(a_hat, W_in.T, out=self._scratch("a.aw", (a_hat.shape[0], W.shape[0])))
            r = torch.add(aw_hat, b_in, out=self._scratch("a.r", aw_hat.shape)).sub_(z_in)
            grad = r @ W_in  # per sample: stays local
            if rho != 1.0:  # (x * 1.0 == x: the pass is skipped at the default rho = 1, same bits)
                grad.mul_(rho)
            f_hat = 0.5 * rho * self._red.sum(r.square_().sum())
            last = {}

            def f(U):
                last["aw"] = U @ W_in.T
                return self._pen(U, W_in, b_in, z_in, aw=last["aw"])

            res = self._timed(
                "a.backtracking",
                lambda: backtracking_step(
                    f,
                    f_hat,
                    grad,
                    a_til,
                    a_hat,
                    self.theta_a[i - 1],
                    op,
                    self.max_doublings,
                    self._red.sum if self.distributed else None,
                    scratch=self._scratch,
                ),
            )
            self.theta_a[i - 1] = res.theta
            if res.u is None:
                self.cap_count += 1
                return a, pen[i] / m, pen[i], AW[i]
            if W_in is W and b_in is b and z_in is Z[i]:
                return res.u, res.value / m, res.value, last["aw"]
            aw = last["aw"] if W_in is W else res.u @ W.T
            pen_new = self._red.sum(self._pen(res.u, W, b, Z[i], aw=aw))
            return res.u, pen_new / m, pen_new, aw

        self._aw_before_a[i] = AW[i]  # a_prev W^T once A[i] is replaced (_seed_coupling_product)
        a_new, _, pen[i], AW[i] = self._guarded(before, attempt, p)
        Ap[i], A[i] = a, a_new

    def _update_zL(self, A, Ap, Z, Zp, AW, pen, m, p, Y, loss, memo) -> torch.Tensor:
        j = self.num_layers - 1
        before = (loss + pen[j]) / m  # 0-d tensor: synced only if the safeguard checks

        def attempt(q):
            p1, p2, p3 = q
            v = self._coupling_centre(j, A, Ap, AW, p3, memo)  # a fresh tensor: updated in place
            if p1 != p2:
                v.add_(torch.sub(Z[j], Zp[j], out=self._scratch("z.diff", v.shape)).mul_(p1 - p2))
            z_new = self._timed("z_L.prox", lambda: self.out_loss.prox(v, Y, self.rho, start=Z[j]))
            pen_new = self._pen(A[j], self.W[j], self.b[j], z_new, aw=AW[j])
            loss_new = self.out_loss.sum(z_new, Y)
            pen_new, loss_new = self._red.sums(pen_new, loss_new)
            return z_new, (loss_new + pen_new) / m, pen_new, loss_new

        z_new, _, pen[j], loss_new = self._guarded(before, attempt, p)
        Zp[j], Z[j] = Z[j], z_new
        return loss_new

    # ------------------------------------------------------------------ runner interface
    @torch.no_grad()
    def _sync_module(self) -> None:
        """Copy the current ``W, b`` into the user's Linear layers (in place: same Parameter objects)."""
        self.structure.write(self.W, self.b)

    @property
    def module(self) -> nn.Module:
        """The user's model itself: it holds the current ``W, b`` after every :meth:`train_step`."""
        return self.model

    @torch.no_grad()
    def objective_terms(self) -> ObjectiveTerms:
        """``F_eps`` and its terms on the whole training set, at the current raw iterates."""
        L, n = self.num_layers, self.n
        *pens, loss_sum = self._red.sums(
            *[penalty_sum(self.a[j], self.W[j], self.b[j], self.z[j], self.rho) for j in range(L)],
            self.out_loss.sum(self.z[-1], self.y_own),
        )
        pen = sum(float(v) for v in pens)
        loss = float(loss_sum) / n
        reg = float(0.5 * self.mu * sum(w.pow(2).sum() for w in self.W))
        gap = self._red.max(max((max_abs(self.a[j + 1] - self.acts[j](self.z[j])) for j in range(L - 1)), default=0.0))
        # The eps the last step used (as a full-batch step logs), not the next pass's.
        eps = self.eps if self._eps_of_last_step is None else self._eps_of_last_step
        return ObjectiveTerms(loss, pen / n, reg, gap, eps)

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Objective terms, activation gap, eps, safeguard and backtracking-cap counts."""
        terms = self._terms_of_last_step() if self._last_terms is not None else self.objective_terms()
        self._last_terms = None
        return {
            **terms.as_log(),
            "am_safeguard_redos": float(self.safeguard_count),
            "am_backtrack_caps": float(self.cap_count),
        }

    _STATE_LISTS = ("W", "Wp", "b", "bp", "z", "zp", "a", "ap", "theta_W", "theta_a")
    _STATE_SCALARS = ("k", "samples_seen", "safeguard_count", "cap_count")
    _PER_SAMPLE = ("z", "zp", "a", "ap")  # rows are samples; split across ranks when data-parallel

    def state_dict(self) -> dict[str, Any]:
        """Everything for an identical resume, previous iterates included (inertia needs them).

        Data-parallel: the per-sample variables are gathered, so the state is the
        one a single process would hold (every row of the training set) and a
        checkpoint resumes on any number of ranks. This is a collective: every
        rank must call it (the runner does); rank 0 writes the file.
        """
        state: dict[str, Any] = {"module": self.module.state_dict()}
        for name in self._STATE_LISTS:
            v = getattr(self, name)
            if self.distributed and name in self._PER_SAMPLE:
                state[name] = [self._gather_rows(t, name, j) for j, t in enumerate(v)]
            else:
                state[name] = [t.clone() if torch.is_tensor(t) else t for t in v]
        for name in self._STATE_SCALARS:
            state[name] = getattr(self, name)
        # After a full-batch step: the input layer's products X W^T, X W_prev^T as held (the
        # trials after the first are evaluated along a line, so they are X W^T up to rounding,
        # and recomputing them on resume would change the continuation by that rounding).
        held = self._restored_products
        if self._cache is not None and self._cache[3] is not None:
            held = [self._cache[0][0], self._cache[3]]
        if held is not None:
            state["input_products"] = [self._gather_rows(t, "z", 0) if self.distributed else t.clone() for t in held]
        return state

    def _gather_rows(self, t: torch.Tensor, name: str, j: int) -> torch.Tensor:
        """All ranks' rows of a per-sample variable, in sample order (a sum of zero-padded blocks: exact)."""
        if name in ("a", "ap") and j == 0:  # the input: every rank has it, nothing to communicate
            return self.X.reshape(self.n, -1).to(t.dtype).clone()
        full = t.new_zeros((self.n, *t.shape[1:]))
        full[self.start : self.stop] = t
        return dist.all_reduce_sum(full)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (from any number of ranks); each rank keeps its own rows.

        Everything is checked before anything is assigned: a state of another trainer or
        network is a ``ValueError`` and leaves this trainer as it was.
        """
        rows = slice(self.start, self.stop) if self.distributed else None
        staged = checked_state_lists(self, state, self._STATE_LISTS, self._STATE_SCALARS, self._PER_SAMPLE, rows)
        products = state.get("input_products")  # absent in states of mini-batch runs and older versions
        if products is not None and (
            len(products) != 2 or any(t.shape != (self.n, self.W[0].shape[0]) for t in products)
        ):
            raise ValueError(
                f"state's input_products must be 2 tensors of shape {(self.n, self.W[0].shape[0])}; "
                f"got {[tuple(t.shape) for t in products]}"
            )
        for name, new in staged.items():
            setattr(self, name, new)
        for name in self._STATE_SCALARS:
            setattr(self, name, state[name])
        self.a[0] = self.ap[0] = self.Xf
        self._cache = None
        self._restored_products = None
        self._eps_of_last_step = None  # (the loaded state's own eps is self.eps)
        if products is not None:
            products = [t.clone().to(self.Xf.device, self.Xf.dtype) for t in products]
            if self.distributed:
                products = [t[self.start : self.stop].clone() for t in products]
            self._restored_products = products
        self.model.load_state_dict(state["module"])
        self._sync_module()


class TIAM(AMTrainer):
    """Triple-inertial accelerated alternating minimization (see :class:`AMTrainer`).

    References:
        Yan et al., arXiv 2503.08489.
    """


class PlainAM(AMTrainer):
    """Alternating minimization without inertia: TIAM with ``p1 = p2 = p3 = 0``."""

    HYPERPARAMS = AM_HYPERPARAMS
    DEFAULTS = AM_DEFAULTS
