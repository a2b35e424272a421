"""dlADMM (Wang, Yu, Chen & Zhao, KDD 2019) as a :class:`beyondsgd.training.Trainer`, on am's machinery.

Problem (samples as rows, ``a_0 = X``, ``r_l = z_l - a_{l-1} W_l^T - b_l``): the
activation constraints and all but the last linear constraint are relaxed by a
quadratic penalty, the last one is kept and handled by a dual variable ``u``:

    min  R(z_L; Y) + sum_l (mu/2)||W_l||^2 + (nu/2) sum_{l<L} (||r_l||^2 + ||a_l - h(z_l)||^2)
    s.t. r_L = 0

with the augmented Lagrangian (the project's scaling, as in :mod:`beyondsgd.am.objective`:
every per-sample sum divided by ``N`` so ``rho``, ``nu``, ``mu`` do not depend on ``N``)

    L_rho = (1/N) [ sum_i R_i(z_L) + <u, r_L> + (rho/2)||r_L||^2
                    + (nu/2) sum_{l<L} (||r_l||^2 + ||a_l - h(z_l)||^2) ] + sum_l (mu/2)||W_l||^2.

One iteration is the paper's **backward-then-forward** sweep of primal block
updates followed by the dual ascent step:

* backward, ``l = L..1``: ``z_l, b_l, W_l, a_{l-1}`` (``a_{l-1}`` for ``l > 1``);
* forward, ``l = 1..L``: ``W_l, b_l, z_l, a_l`` (``a_l`` for ``l < L``);
* dual: ``u <- u + rho r_L``.

Block updates ("quadratic approximation" of the paper where no closed form is used):

* ``W_l``, ``a_l``: linearized step with backtracking (:func:`beyondsgd.am.blocks.backtracking_step`,
  capped at ``max_doublings``: the authors' loop has no cap);
* ``b_l``: exact (a quadratic of curvature ``nu``/``rho``): ``b = mean(z_l - a W^T)`` (last layer: ``+ u/rho``);
* ``z_l``, ``l < L``: exact elementwise minimizer of ``(z - c)^2 + (a_l - h(z))^2``
  (:meth:`beyondsgd.am.projections.Activation.relaxed_argmin`: ReLU, leaky ReLU);
* ``z_L``: proximal map of the loss (:mod:`beyondsgd.am.losses`) around ``c_L - u/rho``.

Every primal update does not increase ``L_rho`` (tested); the dual step raises it by
``rho ||r_L||^2 / N``. Full batch is the paper's setting (mini-batches: the project's extension).

Penalty schedule (``rho_schedule="authors"``, the authors' released code; off by default): after
every pass over the training data (full batch: every iteration) the training loss of the exact
forward pass is computed; when it has risen ``rho_patience`` times in a row (strictly, from one
pass to the next) both penalties ``rho`` and ``nu`` are multiplied by ``rho_factor`` and the run of
rises starts again from zero (the project's reading, see :class:`DLADMM`).

References:
    J. Wang, F. Yu, X. Chen, L. Zhao, "ADMM for Efficient Deep Learning with Global
    Convergence", KDD 2019 (arXiv 1905.13611), Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from beyondsgd.am.blocks import backtracking_step
from beyondsgd.am.losses import CrossEntropy, output_loss_for
from beyondsgd.am.network import parse_mlp
from beyondsgd.am.objective import penalty_sum
from beyondsgd.am.trainer import AM_DEFAULTS, check_memory, checked_state_lists, forward_pass, start_variables
from beyondsgd.training import LossFn, Trainer, batch_indices
from beyondsgd.validation import (
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Interval,
    OneOf,
    check_hyperparams,
)

#: Constraints of dlADMM's hyperparameters.
DLADMM_HYPERPARAMS = {
    "rho": POSITIVE,
    "nu": POSITIVE,
    "mu": NONNEGATIVE,
    "theta_init": POSITIVE,
    "max_doublings": NONNEGATIVE_INT,
    "prox_iters": POSITIVE_INT,
    "prox_tol": POSITIVE,
    "prox_stopping": OneOf(CrossEntropy.STOPPING),
    "output_init": OneOf(("forward", "labels")),
    "rho_schedule": OneOf(("constant", "authors")),
    "rho_factor": Interval(1.0, low_open=True),
    "rho_patience": POSITIVE_INT,
    "memory_fraction": Interval(0.0, 1.0, low_open=True),
}
#: Defaults (the project's choice: ``rho = nu`` as in the authors' code, on the mean scale of
#: ``am``; ``mu`` as ``am``'s; ``z_L`` started at the labels as in the authors' code).
DLADMM_DEFAULTS: dict[str, Any] = {"rho": 1.0, "nu": 1.0, "mu": AM_DEFAULTS["mu"], "output_init": "labels"}


class DLADMM(Trainer):
    """dlADMM: relaxed ADMM with a dual variable on the last layer, backward-then-forward sweeps.

    Args:
        model: a chain ``[Flatten,] Linear, act, ..., Linear`` with ReLU or leaky ReLU
            (see :func:`beyondsgd.am.network.parse_mlp`); trained in place.
        X, y: the whole training set (``z, a, u`` are kept for every sample).
        loss_fn: cross-entropy or MSE (functions or modules, see :func:`beyondsgd.am.losses.output_loss_for`).
        rho: augmented-Lagrangian penalty of the last layer's constraint (and dual step).
        nu: penalty of the relaxed hidden constraints.
        mu: weight decay ``(mu/2)||W||^2``.
        theta_init: first ``theta`` of each backtracking (later: the last accepted one).
        max_doublings: backtracking cap; on the cap the block keeps its value.
        prox_iters, prox_tol: inner solver of the cross-entropy prox.
        prox_stopping: when it stops (``"auto"``, ``"bound"``, ``"test"``; see :class:`~beyondsgd.am.TIAM`).
        output_init: ``"labels"`` (+1 at the label, -1 elsewhere, the authors' code) or ``"forward"``.
        rho_schedule: ``"constant"`` (default: ``rho``, ``nu`` never change) or ``"authors"``: the
            authors' code multiplies its penalty by 10 when the training loss rose three times in a
            row. The project's reading: the training loss is the output loss of the exact forward
            pass on the whole training set (the authors' ``train_cost``), computed after every pass
            over the data (full batch: every iteration); a rise is a strict increase over the
            previous pass; after ``rho_patience`` consecutive rises both ``rho`` and ``nu`` (the
            authors' code has one penalty for both) are multiplied by ``rho_factor`` and the count
            restarts at zero, so a new increase needs ``rho_patience`` new rises. Not taken over:
            the authors' cap (0.1 on their scale, below this trainer's default ``rho = 1``) and
            their scaling of the backtracking start (here ``theta`` is the last accepted value and
            doubles as needed).
        rho_factor: the multiplier of the schedule (> 1; the authors': 10).
        rho_patience: consecutive rises that trigger it (the authors': 3).
        memory_fraction: refuse when the auxiliary variables need more of the free memory.

    Raises:
        ValueError: bad hyperparameter, model, activation (ELU has no closed-form
            z-subproblem), loss, or not enough memory.

    References:
        Wang et al., KDD 2019, arXiv 1905.13611.
    """

    HYPERPARAMS: Mapping[str, Any] = DLADMM_HYPERPARAMS
    DEFAULTS: Mapping[str, Any] = DLADMM_DEFAULTS

    def __init__(
        self,
        model: nn.Module,
        X: torch.Tensor,
        y: torch.Tensor,
        loss_fn: LossFn = F.cross_entropy,
        *,
        rho: float = DLADMM_DEFAULTS["rho"],
        nu: float = DLADMM_DEFAULTS["nu"],
        mu: float = DLADMM_DEFAULTS["mu"],
        theta_init: float = 1.0,
        max_doublings: int = 10,
        prox_iters: int = 500,
        prox_tol: float = 1e-4,
        prox_stopping: str = "auto",
        output_init: str = DLADMM_DEFAULTS["output_init"],
        rho_schedule: str = "constant",
        rho_factor: float = 10.0,
        rho_patience: int = 3,
        memory_fraction: float = 0.5,
    ) -> None:
        hp = dict(
            rho=rho,
            nu=nu,
            mu=mu,
            theta_init=theta_init,
            max_doublings=max_doublings,
            prox_iters=prox_iters,
            prox_tol=prox_tol,
            prox_stopping=prox_stopping,
            output_init=output_init,
            rho_schedule=rho_schedule,
            rho_factor=rho_factor,
            rho_patience=rho_patience,
            memory_fraction=memory_fraction,
        )
        check_hyperparams("DLADMM", hp, self.HYPERPARAMS)
        super().__init__(X, y, loss_fn)
        self.hyperparams = hp
        self.model = model
        self.structure = parse_mlp(model)
        self.acts = self.structure.activations
        probe = torch.zeros(1)
        for act in self.acts:
            act.relaxed_argmin(probe, probe)  # ELU etc.: a clear error now, not in the first step
        self.out_loss = output_loss_for(loss_fn, prox_iters, prox_tol, y=y, prox_stopping=prox_stopping)
        self.rho, self.nu, self.mu = float(rho), float(nu), float(mu)
        self.max_doublings = int(max_doublings)
        self.rho_schedule, self.rho_factor, self.rho_patience = rho_schedule, float(rho_factor), int(rho_patience)
        lin = self.structure.linears
        Xf = self.structure.flat_inputs(X, y)
        self.y = y = self.out_loss.check_targets(y, lin[-1].out_features)
        self.n = Xf.shape[0]
        dtype, device = lin[0].weight.dtype, lin[0].weight.device
        # z, a and the dual u (no previous iterates: half of am's stored variables, plus u).
        check_memory(self.n, Xf.shape[1], self.structure.widths, dtype, device, memory_fraction)
        self.Xf = Xf.to(dtype)
        self.W, self.b, self.z, self.a = start_variables(self.structure, self.Xf, y, self.out_loss, output_init)
        self.u = torch.zeros_like(self.z[-1])
        self.theta_W = [float(theta_init)] * len(lin)
        self.theta_a = [float(theta_init)] * (len(lin) - 1)
        self.k = 0
        self.cap_count = 0
        # The penalty schedule's state (rho_schedule="authors"; unused with "constant").
        self.samples_seen = 0
        self.passes_checked = 0
        self.prev_train_loss: float | None = None
        self.rises = 0
        self.rho_increases = 0
        # The variables of the batch being updated (full batch: the stored lists themselves).
        self._bz, self._ba, self._bu, self._by, self._bm = self.z, self.a, self.u, self.y, self.n
        #: Set to a list to record ``(block, L_rho after it)`` after every update (tests).
        self.trace: list[tuple[str, float]] | None = None

    # ------------------------------------------------------------------ the objective
    @property
    def num_layers(self) -> int:
        return len(self.W)

    def _weight(self, j: int) -> float:
        """Penalty weight of layer ``j``'s linear constraint: ``rho`` (last, augmented) or ``nu``."""
        return self.rho if j == self.num_layers - 1 else self.nu

    def _target(self, j: int) -> torch.Tensor:
        """What ``a_{j} W_j^T + b_j`` is pulled to: ``z_j``, or ``z_L + u/rho`` for the last layer (batch rows)."""
        return self._bz[j] + self._bu / self.rho if j == self.num_layers - 1 else self._bz[j]

    @torch.no_grad()
    def _term_tensors(self) -> dict[str, torch.Tensor]:
        """The terms of :meth:`terms` as 0-d tensors (no host sync)."""
        n, L = self.n, self.num_layers
        loss = self.out_loss.sum(self.z[-1], self.y) / n
        r_L = self.z[-1] - self.a[-1] @ self.W[-1].T - self.b[-1]
        aug = ((self.u * r_L).sum() + 0.5 * self.rho * r_L.pow(2).sum()) / n
        hidden = sum(
            (
                penalty_sum(self.a[j], self.W[j], self.b[j], self.z[j], self.nu)
                + 0.5 * self.nu * (self.a[j + 1] - self.acts[j](self.z[j])).pow(2).sum()
                for j in range(L - 1)
            ),
            torch.zeros((), dtype=loss.dtype, device=loss.device),
        )
        reg = 0.5 * self.mu * torch.stack([w.pow(2).sum() for w in self.W]).sum()
        return {
            "dladmm_objective": loss + aug + hidden / n + reg,
            "dladmm_loss": loss,
            "dladmm_augmented": aug,
            "dladmm_penalty": hidden / n,
            "dladmm_reg": reg,
            "dladmm_residual": r_L.pow(2).sum() / n,
            "dladmm_dual_norm": self.u.pow(2).sum() / n,
        }

    def terms(self) -> dict[str, float]:
        """``L_rho`` and its terms (per sample), the residual ``||r_L||^2/N`` and ``||u||^2/N``."""
        return {k: float(v) for k, v in self._term_tensors().items()}

    @torch.no_grad()
    def train_loss(self) -> float:
        """Output loss of the exact forward pass with the current ``W, b`` on the whole training set (mean)."""
        z, _ = forward_pass(self.Xf, self.W, self.b, self.acts)
        return float(self.out_loss.sum(z[-1], self.y) / self.n)

    def _schedule_rho(self) -> None:
        """The authors' penalty schedule, once per pass over the data (see :class:`DLADMM`)."""
        passes = self.samples_seen // self.n
        if passes <= self.passes_checked:
            return
        self.passes_checked = passes
        loss = self.train_loss()
        if self.prev_train_loss is not None and loss > self.prev_train_loss:
            self.rises += 1
        else:
            self.rises = 0
        self.prev_train_loss = loss
        if self.rises >= self.rho_patience:
            self.rho *= self.rho_factor
            self.nu *= self.rho_factor
            self.rho_increases += 1
            self.rises = 0

    def _record(self, name: str) -> None:
        if self.trace is not None:
            self.trace.append((name, self.terms()["dladmm_objective"]))

    # ------------------------------------------------------------------ blocks
    def _update_W(self, j: int) -> None:
        n, w, mu = self._bm, self._weight(j), self.mu
        a_in, target, b, W = self._ba[j], self._target(j), self.b[j], self.W[j]
        r = a_in @ W.T + b - target
        f_now = 0.5 * w * r.pow(2).sum() / n + 0.5 * mu * W.pow(2).sum()
        grad = (w / n) * (r.T @ a_in) + mu * W

        def f(U):
            return penalty_sum(a_in, U, b, target, w) / n + 0.5 * mu * U.pow(2).sum()

        res = backtracking_step(f, f_now, grad, W, W, self.theta_W[j], None, self.max_doublings)
        self.theta_W[j] = res.theta
        if res.u is None:
            self.cap_count += 1
        else:
            self.W[j] = res.u
        self._record(f"W{j + 1}")

    def _update_b(self, j: int) -> None:
        self.b[j] = (self._target(j) - self._ba[j] @ self.W[j].T).mean(0)
        self._record(f"b{j + 1}")

    def _update_z(self, j: int) -> None:
        c = self._ba[j] @ self.W[j].T + self.b[j]
        if j == self.num_layers - 1:
            self._bz[j] = self.out_loss.prox(c - self._bu / self.rho, self._by, self.rho, start=self._bz[j])
        else:
            self._bz[j] = self.acts[j].relaxed_argmin(c, self._ba[j + 1])
        self._record(f"z{j + 1}")

    def _update_a(self, i: int) -> None:
        """Update ``a_i`` (hidden, ``1 <= i < L``): input of layer ``i`` (0-based), output of ``i - 1``."""
        w, nu = self._weight(i), self.nu
        W, b, target = self.W[i], self.b[i], self._target(i)
        hz = self.acts[i - 1](self._bz[i - 1])
        a = self._ba[i]
        r = a @ W.T + b - target
        f_now = 0.5 * w * r.pow(2).sum() + 0.5 * nu * (a - hz).pow(2).sum()
        grad = w * (r @ W) + nu * (a - hz)

        def f(U):
            return penalty_sum(U, W, b, target, w) + 0.5 * nu * (U - hz).pow(2).sum()

        res = backtracking_step(f, f_now, grad, a, a, self.theta_a[i - 1], None, self.max_doublings)
        self.theta_a[i - 1] = res.theta
        if res.u is None:
            self.cap_count += 1
        else:
            self._ba[i] = res.u
        self._record(f"a{i}")

    # ------------------------------------------------------------------ one iteration
    @torch.no_grad()
    def train_step(self, indices: torch.Tensor | None) -> torch.Tensor:
        """One dlADMM iteration (backward sweep, forward sweep, dual step) on a batch.

        Args:
            indices: the batch's sample indices (``None``: full batch, the paper's setting).
                Mini-batch (the project's extension, as for ``am``): ``z, a, u`` are kept
                for every sample; ``W, b`` and the batch's rows are updated from the batch.

        Returns:
            ``L_rho`` after the iteration, on the batch (0-d tensor).
        """
        indices = batch_indices(indices, self.Xf.device)
        full = indices is None
        self.k += 1
        L = self.num_layers
        if full:
            self._bz, self._ba, self._bu, self._by, self._bm = self.z, self.a, self.u, self.y, self.n
        else:
            self._bz = [t[indices] for t in self.z]
            self._ba = [t[indices] for t in self.a]
            self._bu, self._by, self._bm = self.u[indices], self.y[indices], int(indices.numel())  # type: ignore[union-attr]
        for j in reversed(range(L)):  # backward: z_l, b_l, W_l, a_{l-1}
            self._update_z(j)
            self._update_b(j)
            self._update_W(j)
            if j > 0:
                self._update_a(j)
        for j in range(L):  # forward: W_l, b_l, z_l, a_l
            self._update_W(j)
            self._update_b(j)
            self._update_z(j)
            if j < L - 1:
                self._update_a(j + 1)
        r_L = self._bz[-1] - self._ba[-1] @ self.W[-1].T - self.b[-1]
        self._bu = self._bu + self.rho * r_L
        if full:
            self.u = self._bu
        else:
            for j in range(L):
                self.z[j][indices] = self._bz[j]
            for j in range(1, L):
                self.a[j][indices] = self._ba[j]
            self.u[indices] = self._bu
        self._record("u")
        self.structure.write(self.W, self.b)
        m, y = self._bm, self._by
        loss = self.out_loss.sum(self._bz[-1], y) / m
        aug = ((self._bu - self.rho * r_L) * r_L).sum() / m + 0.5 * self.rho * r_L.pow(2).sum() / m
        hidden = sum(
            (
                penalty_sum(self._ba[j], self.W[j], self.b[j], self._bz[j], self.nu)
                + 0.5 * self.nu * (self._ba[j + 1] - self.acts[j](self._bz[j])).pow(2).sum()
                for j in range(L - 1)
            ),
            torch.zeros_like(loss),
        )
        reg = 0.5 * self.mu * sum(w.pow(2).sum() for w in self.W)
        value = (loss + aug + hidden / m + reg).detach()
        self.samples_seen += m
        if self.rho_schedule == "authors":
            self._schedule_rho()  # after the value: it is L_rho at the penalties this step used
        return value

    # ------------------------------------------------------------------ runner interface
    @property
    def module(self) -> nn.Module:
        """The user's model itself: it holds the current ``W, b`` after every :meth:`train_step`."""
        return self.model

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """``L_rho``, its terms, the last-layer residual, the dual norm, backtracking caps and the penalties.

        ``dladmm_rho`` / ``dladmm_nu`` are the penalties in force; ``dladmm_rho_increases`` counts
        the schedule's multiplications (``rho_schedule="authors"``; always 0 with ``"constant"``).
        """
        return {
            **self.terms(),
            "dladmm_backtrack_caps": float(self.cap_count),
            "dladmm_rho": self.rho,
            "dladmm_nu": self.nu,
            "dladmm_rho_increases": float(self.rho_increases),
        }

    _STATE = ("W", "b", "z", "a", "theta_W", "theta_a")
    #: The penalties in force and the schedule's state (``rho``, ``nu`` change with ``rho_schedule="authors"``).
    _SCHEDULE = ("rho", "nu", "samples_seen", "passes_checked", "prev_train_loss", "rises", "rho_increases")

    def state_dict(self) -> dict[str, Any]:
        """Everything for an identical resume (primal blocks, dual variable, backtracking state)."""
        state: dict[str, Any] = {"module": self.model.state_dict(), "u": self.u.clone(), "k": self.k}
        for name in self._STATE:
            state[name] = [t.clone() if torch.is_tensor(t) else t for t in getattr(self, name)]
        state["cap_count"] = self.cap_count
        for name in self._SCHEDULE:
            state[name] = getattr(self, name)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (checked first: a refused state changes nothing)."""
        staged = checked_state_lists(self, state, self._STATE, ("u", "k", "cap_count"), ("z", "a"))
        if tuple(state["u"].shape) != tuple(self.u.shape):
            raise ValueError(
                f"state's dual u has shape {tuple(state['u'].shape)}, this trainer's {tuple(self.u.shape)}"
            )
        missing = [name for name in self._SCHEDULE if name not in state]
        if missing and self.rho_schedule == "authors":
            raise ValueError(f"state lacks the penalty schedule's entries {missing} (saved by an older version?)")
        for name, new in staged.items():
            setattr(self, name, new)
        self.u, self.k, self.cap_count = state["u"].clone().to(self.u.device), state["k"], state["cap_count"]
        for name in self._SCHEDULE:  # a constant-schedule state of an older version: the constructor's values
            if name in state:
                setattr(self, name, state[name])
        self.a[0] = self.Xf
        self.model.load_state_dict(state["module"])
        self.structure.write(self.W, self.b)
