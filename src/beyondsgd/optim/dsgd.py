"""DSGD: duality structure gradient descent, a layer-wise greedy steepest descent.

Each parameter group is one layer.  Every step scores each layer by the decrease
its own steepest-descent step is guaranteed to give,

    score_i = |||D_i f(w)|||_*^2 / (2 kappa_i(w)),     kappa_i = L_i c_i(w)^2,

and updates only the best layer, ``w_i <- w_i - (lr / kappa_i) rho(D_i f(w))``.
``kappa_i`` comes from the derived MLP bound (``mode="bound"``) or from a local
estimate with a sufficient-decrease check (``mode="adaptive"``).  Cyclic and
uniformly random layer choice with the same step are the baselines
``dsgd_cyclic`` and ``dsgd_random``.

References:
    Flynn, "The duality structure gradient descent algorithm: analysis and
    applications to neural networks", arXiv:1708.00523.  The step, score and
    greedy rule follow the paper's l1 combination of layer norms; the layer
    constants and the adaptive mode are this project's (docs/dsgd.md).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from beyondsgd.optim._scalars import checkable
from beyondsgd.optim.gradient_factors import LinearGradientFactors
from beyondsgd.optim.layer_norms import (
    ACTIVATION_BOUNDS,
    BASE_NORMS,
    CROSS_ENTROPY_BOUNDS,
    GRAM_DTYPES,
    FactoredGradient,
    layer_curvature_bounds,
    layer_matrix,
    layer_op_norms,
    split_layer_matrix,
)
from beyondsgd.optim.registry import OptimizerSpec, register
from beyondsgd.validation import (
    BOOL,
    NONNEGATIVE_INT,
    OPTIONAL_BOOL,
    POSITIVE,
    AnyOf,
    Interval,
    OneOf,
    TupleOf,
    check_hyperparams,
)

__all__ = ["DSGD", "HYPERPARAMS", "layer_groups"]

#: Smallest adaptive constant: keeps 1/kappa finite however flat a layer looks.
_KAPPA_FLOOR = 1e-12

_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: Every DSGD hyperparameter and its allowed values (used by the class and the registry).
HYPERPARAMS = {
    # The guaranteed decrease eta (1 - eta/2) |||g|||_*^2 / kappa is positive only on (0, 2).
    "lr": Interval(0.0, 2.0, low_open=True, high_open=True),
    "mode": OneOf(("bound", "adaptive")),
    "norm": OneOf(tuple(BASE_NORMS)),
    "selection": OneOf(("greedy", "cyclic", "random")),
    "input_bound": POSITIVE,
    "loss_bounds": TupleOf((Interval(0.0), Interval(0.0))),
    "lipschitz_init": POSITIVE,
    "backtrack": Interval(1.0, low_open=True),
    "decay": Interval(0.0, 1.0, low_open=True),
    "max_backtracks": NONNEGATIVE_INT,
    "check_decrease": OPTIONAL_BOOL,
    "score_batch": OneOf(("same", "previous")),
    "seed": AnyOf((Interval(integer=True), OneOf((None,)))),
    "maximize": BOOL,
    "foreach": OPTIONAL_BOOL,
}


#: Key of DSGD's own (not per-parameter) entry in ``self.state`` (typed ``Any``: torch types the keys as tensors).
_OWN: Any = "dsgd"

#: Options that may differ between param groups (layers); the rest are the optimizer's.
_PER_GROUP_OPTIONS = ("lr", "norm")
_GLOBAL_OPTIONS = tuple(k for k in HYPERPARAMS if k not in _PER_GROUP_OPTIONS)


def _loss_value(loss: Any) -> float:
    """A closure's loss as a float: a tensor, or a Python number (as LBFGS accepts)."""
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def _activation_names() -> dict[type, str]:
    from beyondsgd.models.activations import _ACTIVATIONS

    return {type(make()): name for name, make in _ACTIVATIONS.items()}


def layer_groups(model: nn.Module) -> list[dict[str, Any]]:
    """One parameter group per ``Linear``/``Conv`` layer (weight and bias together), input to output.

    Each group also records ``name`` (the module's qualified name) and
    ``activation``: the name of the activation module that directly follows the
    layer in module order (``"none"`` after the last layer, ``"unknown"`` when the
    next module is something else).  DSGD's bound mode reads the activations.
    Trainable parameters outside such layers each get a group of their own
    (``activation="unknown"``).

    Args:
        model: any module; an :class:`~beyondsgd.models.MLP` (an ``nn.Sequential``)
            gives the chain the bound mode needs.

    Returns:
        A list of param-group dicts for :class:`DSGD` (or any ``torch.optim`` optimizer).
    """
    act_names = _activation_names()
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    for pos, (name, module) in enumerate(leaves):
        if not isinstance(module, _LAYER_TYPES):
            continue
        params = [p for p in (module.weight, module.bias) if p is not None and p.requires_grad]
        if not params:
            continue
        nxt = leaves[pos + 1][1] if pos + 1 < len(leaves) else None
        if nxt is None:
            activation = "none"
        else:
            activation = act_names.get(type(nxt), "unknown")
            if isinstance(nxt, nn.Softplus) and (nxt.beta != 1.0):
                activation = "unknown"
        seen.update(id(p) for p in params)
        groups.append({"params": params, "name": name, "activation": activation})
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in seen:
            groups.append({"params": [p], "name": name, "activation": "unknown"})
    return groups


def _tensor_norms(grads: list[list[torch.Tensor]]) -> list[float]:
    """The Frobenius norm of every gradient tensor, layer by layer (one fused call, one host sync).

    They serve twice: a NaN or an infinity makes its tensor's norm NaN or infinite (so does a
    finite gradient whose norm overflows, and no step can be scored from that one either), and a
    Frobenius layer's dual norm is the root of the sum of its tensors' squared norms. (Elementwise
    ``isfinite`` costs four passes per tensor; this is one.)
    """
    flat = [t for layer in grads for t in layer]
    return torch.stack(torch._foreach_norm(flat)).tolist() if flat else []


def _check_layer_group(index: int, group: dict[str, Any]) -> None:
    """A DSGD block is one layer: ``[weight]`` or ``[weight, bias]`` with one bias entry per output row."""
    tensors = group["params"]
    if not 1 <= len(tensors) <= 2:
        raise ValueError(
            f"invalid param group {index}: a DSGD layer is [weight] or [weight, bias], "
            f"got {len(tensors)} tensors; use layer_groups(model)"
        )
    if len(tensors) == 2:
        w, b = tensors
        rows = w.shape[0] if w.dim() > 1 else 1
        if b.numel() != rows:
            raise ValueError(
                f"invalid param group {index}: the bias has {b.numel()} entries but the weight "
                f"{tuple(w.shape)} has {rows} output rows; use layer_groups(model)"
            )


class DSGD(torch.optim.Optimizer):
    """Layer-wise greedy descent with parameter-dependent layer norms (one layer per step).

    Args:
        params: parameter groups, one per layer, input to output (use
            :func:`layer_groups`); a plain iterable of tensors makes each tensor a layer.
        lr: step multiplier ``eta`` on the ``1/kappa_i`` step. The guaranteed decrease
            is ``eta (1 - eta/2) |||g|||_*^2 / kappa_i``: largest at 1, positive on (0, 2).
        mode: ``"bound"`` (derived MLP constants; needs ``activation`` in each group,
            one of tanh/sigmoid/softplus between layers) or ``"adaptive"`` (local
            estimate with backtracking; any differentiable model, ReLU included).
        norm: base norm of each layer matrix ``[W | b]``: ``"frobenius"`` (gradient
            direction) or ``"spectral"`` (dual map ``||G||_nuc U V^T``).
        selection: ``"greedy"`` (DSGD), ``"cyclic"`` or ``"random"`` (baselines).
        input_bound: bound mode: ``B >= ||x||_2`` for every input sample; compute it
            with :func:`beyondsgd.optim.input_bound`. The default 1 fits
            ``load_dataset(..., unit_norm=True)``.
        loss_bounds: bound mode: ``(G, H)``, per-sample bounds on ``||grad_z loss||_2``
            and ``||Hess_z loss||_op`` in the network output; the default is exact for
            softmax cross-entropy (``sqrt(2)``, ``1/2``).
        lipschitz_init: adaptive mode: initial ``kappa_i`` of every layer.
        backtrack: adaptive mode: ``kappa_i`` is multiplied by this when a step fails
            the sufficient-decrease test.
        decay: adaptive mode: after an accepted step ``kappa_i`` becomes the curvature
            seen along the step, but shrinks by at most this factor.
        max_backtracks: adaptive mode: retries per step (the last try is kept).
        check_decrease: re-evaluate the loss after the step to record the realized
            decrease (needs a closure). ``None``: on in adaptive mode (it needs it), off
            in bound mode. In bound mode a realized decrease below the predicted one
            means an assumption is violated (usually ``input_bound``): it is counted
            in ``opt.violations`` and warned about once.
        score_batch: ``"same"`` scores with the step's gradient; ``"previous"`` picks
            the layer with the scores of the previous call (an independent minibatch
            in a stochastic run). ``step(closure, score_closure=...)`` scores with a
            second closure on the same iterate instead.
        seed: seeds the random layer choice; ``None`` draws the seed from torch's global
            generator at construction (so ``torch.manual_seed`` governs it, as in the runner).
        maximize: maximize the objective instead.
        foreach: apply the step with the multi-tensor ``torch._foreach_add_``; ``None`` picks it
            on CUDA (the gradient norms are always one fused ``torch._foreach_norm``).

    After each step, ``opt.last_step`` holds ``layer``, ``scores`` (all layers),
    ``predicted_decrease``, ``kappa``, ``stationarity`` (``max_i |||g_i|||_*^2/kappa_i``),
    ``loss``, ``realized_decrease``, ``backtracks`` and ``factored_layers`` (the spectral
    layers scored from their gradient factors, see :meth:`watch`).

    References:
        Flynn, arXiv:1708.00523 (DSGD); derivation of the constants: docs/dsgd.md.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1.0,
        mode: str = "adaptive",
        norm: str = "spectral",
        selection: str = "greedy",
        input_bound: float = 1.0,
        loss_bounds: tuple[float, float] = CROSS_ENTROPY_BOUNDS,
        lipschitz_init: float = 1.0,
        backtrack: float = 2.0,
        decay: float = 0.5,
        max_backtracks: int = 30,
        check_decrease: bool | None = None,
        score_batch: str = "same",
        seed: int | None = None,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        hp = dict(
            lr=lr,
            mode=mode,
            norm=norm,
            selection=selection,
            input_bound=input_bound,
            loss_bounds=tuple(loss_bounds),
            lipschitz_init=lipschitz_init,
            backtrack=backtrack,
            decay=decay,
            max_backtracks=max_backtracks,
            check_decrease=check_decrease,
            score_batch=score_batch,
            seed=seed,
            maximize=maximize,
            foreach=foreach,
        )
        check_hyperparams("DSGD", checkable("DSGD", hp), HYPERPARAMS)
        if isinstance(params, torch.Tensor):
            raise TypeError(
                "DSGD: params must be an iterable of Tensors, (name, Tensor) pairs or param-group dicts, "
                f"got a single {torch.typename(params)}; wrap it in a list: [tensor]"
            )
        items: list[Any] = list(params)
        if items and not isinstance(items[0], dict):
            items = [{"params": [p]} for p in items]  # each tensor (named or not) its own layer
        # Every option lives in ``defaults`` (pickled and deep-copied with the optimizer, and filled
        # into each group as torch.optim does); only lr and norm may differ between groups.
        super().__init__(items, hp)  # (each group checked in add_param_group)
        self.last_step: dict[str, Any] = {}
        self._warned = False
        if mode == "bound":
            self._bound_activations()  # fail early on an unsupported architecture
        self.state[_OWN] = {
            "step": 0,
            "cycle": 0,
            "violations": 0,
            "prev_scores": None,
            "rng": torch.Generator().manual_seed(int(torch.randint(2**62, ())) if seed is None else seed).get_state(),
            "kappa": [float(lipschitz_init)] * len(self.param_groups),
        }

    # ------------------------------------------------------------------ bookkeeping

    @property
    def options(self) -> dict[str, Any]:
        """The optimizer-wide options (every hyperparameter but ``lr``), read from ``defaults``."""
        return {k: self.defaults[k] for k in HYPERPARAMS if k != "lr"}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        index = len(self.param_groups)
        for key in _GLOBAL_OPTIONS:
            if key in param_group and param_group[key] != self.defaults[key]:
                raise ValueError(
                    f"invalid param group {index}: DSGD option {key}={param_group[key]!r} differs from the "
                    f"optimizer's {self.defaults[key]!r}; only {', '.join(_PER_GROUP_OPTIONS)} may be set per group "
                    "(one objective, one layer choice per step)"
                )
        check_hyperparams(
            f"DSGD param group {index}",
            checkable("DSGD", {k: v for k, v in param_group.items() if k in _PER_GROUP_OPTIONS}),
            HYPERPARAMS,
        )
        super().add_param_group(param_group)
        own = self.state.get(_OWN)
        try:  # the checks need the group as torch filled it; a refused group is taken out again
            self.param_groups[-1].setdefault("activation", "unknown")
            _check_layer_group(index, self.param_groups[-1])
            for p in self.param_groups[-1]["params"]:
                if p.is_complex():
                    raise ValueError(
                        f"invalid param group {index}: DSGD does not support complex parameters (its layer "
                        "norms, duality maps and bounds are defined for real matrices); optimize "
                        "torch.view_as_real(p) instead"
                    )
            if own is not None and self.defaults["mode"] == "bound":
                self._bound_activations()  # (the chain must still be one the bound covers)
        except ValueError:
            self.param_groups.pop()
            raise
        if own is not None:  # a layer added after construction: its own constant, scored from the next step
            own["kappa"].append(float(self.defaults["lipschitz_init"]))
            own["prev_scores"] = None  # (one entry per layer: the old list no longer lines up)

    @property
    def violations(self) -> int:
        """Bound-mode steps whose realized decrease was below the predicted one."""
        return int(self.state[_OWN]["violations"])

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("last_step", {})
        self.__dict__.setdefault("_warned", False)
        defaults = self.__dict__.get("defaults", {})
        for group in self.param_groups:  # an older state_dict: options added since get their defaults
            for key in HYPERPARAMS:
                if key in defaults:
                    group.setdefault(key, defaults[key])

    def state_dict(self) -> dict[str, Any]:
        """As ``torch.optim.Optimizer.state_dict``, with a snapshot (not a live view) of DSGD's own state."""
        sd = super().state_dict()
        sd["state"] = {**sd["state"], "dsgd": copy.deepcopy(self.state[_OWN])}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        # Own copy, so the loaded dict and this optimizer never share mutable state.
        self.state[_OWN] = copy.deepcopy(state_dict["state"]["dsgd"])

    def _bound_activations(self) -> list[str]:
        acts = [g["activation"] for g in self.param_groups]
        if acts[-1] != "none" or any(a not in ACTIVATION_BOUNDS for a in acts[:-1]):
            raise ValueError(
                "mode='bound' needs the groups of an MLP chain, input to output, each followed by a smooth "
                f"activation ({', '.join(ACTIVATION_BOUNDS)}) except the last (layer_groups(model) on an MLP "
                f"records them); got activations {acts}. "
                "Use mode='adaptive' for other models."
            )
        for g in self.param_groups:
            if g["params"][0].dim() != 2:
                raise ValueError("mode='bound' supports Linear layers only; use mode='adaptive' for conv layers")
        return acts[:-1]

    def _use_foreach(self) -> bool:
        foreach = self.options["foreach"]
        if foreach is None:
            return self.param_groups[0]["params"][0].is_cuda
        return foreach

    # ------------------------------------------------------------------ the pieces of a step

    def _grads(self) -> list[list[torch.Tensor]]:
        sign = -1.0 if self.options["maximize"] else 1.0
        out = []
        for g in self.param_groups:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in g["params"]]
            if any(gr.is_sparse for gr in grads):  # (as torch.optim's dense optimizers say)
                raise RuntimeError("DSGD does not support sparse gradients")
            out.append([gr.neg() for gr in grads] if sign < 0 else grads)
        return out

    def _dual_norms_sq(
        self,
        grads: list[list[torch.Tensor]],
        norms: list[float] | None = None,
        factored: dict[int, FactoredGradient] | None = None,
    ) -> list[float]:
        """``|||g_i|||_*^2`` of every layer (each in its group's base norm).

        A Frobenius layer's is the sum of its tensors' squared norms (``norms``, from
        :func:`_tensor_norms`, computed here if not given): the norm of ``[W | b]`` without
        forming it. A spectral layer's is the squared nuclear norm of ``[W | b]``, from its
        factors where ``factored`` has them (:meth:`watch`).
        """
        names = [g["norm"] for g in self.param_groups]
        if norms is None and "frobenius" in names:
            norms = _tensor_norms(grads)
        factored = factored or {}
        out, start = [], 0
        for index, (name, layer) in enumerate(zip(names, grads)):
            if name == "frobenius":
                assert norms is not None
                out.append(math.fsum(n * n for n in norms[start : start + len(layer)]))
            elif index in factored:
                out.append(float(factored[index].nuclear_norm()) ** 2)
            else:
                out.append(float(BASE_NORMS[name].dual_norm(layer_matrix(layer))) ** 2)
            start += len(layer)
        return out

    def watch(self, model: nn.Module) -> LinearGradientFactors:
        """Hook ``model``'s Linear layers so that spectral layers are scored from their gradient factors.

        A Linear layer's batch gradient is ``D^T [X | 1]`` (output gradients, inputs). With a
        batch smaller than both sides of the layer its nuclear norm and duality map then come
        from batch-sized problems, exactly and several times faster than from ``.grad``
        (docs/dsgd.md, "Performance"). Each step checks that the recorded factors reproduce the
        ``.grad`` it scores (a random probe, to rounding) and scores that layer from ``.grad``
        alone where they do not (accumulated, clipped or averaged gradients, a layer applied
        twice). :func:`beyondsgd.optim.create` calls this when given a model.

        Memory: each watched layer's last input and output gradient stay alive between steps
        (one batch of its activations; without the hooks the backward pass frees them).
        Hooks are not copied with the optimizer (``copy.deepcopy``, pickling, ``state_dict``): a
        copy scores from ``.grad`` until it watches a model itself.

        Args:
            model: the module whose parameters this optimizer steps.

        Returns:
            The hooks; ``.remove()`` takes them off again.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"DSGD.watch: model must be an nn.Module, got {type(model).__name__}")
        old = self.__dict__.get("_factors")
        if old is not None:
            old.remove()
        weights = [g["params"][0] for g in self.param_groups]
        self._factors = LinearGradientFactors(model, weights)
        return self._factors

    def _factored(self, grads: list[list[torch.Tensor]]) -> dict[int, FactoredGradient]:
        """The spectral layers whose gradients come from watched factors (see :meth:`watch`)."""
        hooks = self.__dict__.get("_factors")
        if hooks is None or not hooks.watched:
            return {}
        sign = -1.0 if self.options["maximize"] else 1.0
        out = {}
        for index, (group, layer) in enumerate(zip(self.param_groups, grads)):
            if group["norm"] == "spectral" and layer[0].dtype in GRAM_DTYPES:
                factored = hooks.factored(group["params"], layer, sign)
                if factored is not None:
                    out[index] = factored
        return out

    def _op_norms(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Operator norms of every layer, recomputed only for layers whose tensors changed.

        A step changes one layer, so the cache saves all but one SVD pair per step. It holds
        a copy of each layer's tensors and reuses the norms only when the tensors equal it:
        version counters alone miss writes through ``.data`` (``p.data.mul_()``,
        ``nn.utils.vector_to_parameters``), which leave them unchanged. The comparison is
        one read of the parameters, far cheaper than the SVDs it saves.
        """
        cache = self.__dict__.setdefault("_op_cache", {})
        out = []
        for i, g in enumerate(self.param_groups):
            params = g["params"]
            key = tuple((id(p), p._version, p.shape, p.dtype, p.device) for p in params)
            hit = cache.get(i)
            if hit is None or hit[0] != key or not all(torch.equal(p, c) for p, c in zip(params, hit[1])):
                hit = (key, [p.detach().clone() for p in params], layer_op_norms(params))
                cache[i] = hit
            out.append(hit[2])
        return out

    def _kappas(self) -> torch.Tensor:
        if self.options["mode"] == "bound":
            return layer_curvature_bounds(
                [g["params"] for g in self.param_groups],
                self._bound_activations(),
                self.options["input_bound"],
                self.options["loss_bounds"],
                op_norms=self._op_norms(),
            )
        ref = self.param_groups[0]["params"][0]
        return torch.tensor(self.state[_OWN]["kappa"], dtype=ref.dtype, device=ref.device)

    def _choose(self, scores: list[float]) -> int:
        st, selection, k = self.state[_OWN], self.options["selection"], len(scores)
        if selection == "cyclic":
            i = st["cycle"] % k
            st["cycle"] = (i + 1) % k
            return i
        if selection == "random":
            gen = torch.Generator().manual_seed(0)
            gen.set_state(st["rng"])
            i = int(torch.randint(k, (1,), generator=gen))
            st["rng"] = gen.get_state()
            return i
        if self.options["score_batch"] == "previous" and st["prev_scores"] is not None:
            basis = st["prev_scores"]
        else:
            basis = scores
        return max(range(k), key=basis.__getitem__)  # first maximizer on ties

    def _apply(self, params: list[torch.Tensor], direction: list[torch.Tensor], scale: float) -> None:
        if self._use_foreach():
            torch._foreach_add_(params, direction, alpha=-scale)
        else:
            for p, d in zip(params, direction):
                p.add_(d, alpha=-scale)

    @torch.no_grad()
    def layer_scores(self) -> torch.Tensor:
        """``|||g_i|||_*^2 / (2 kappa_i)`` of every layer from the current ``.grad`` (no step taken).

        ``2 * layer_scores().max()`` is the stationarity measure ``max_i |||D_i f|||_*^2 / kappa_i``.
        """
        kappas = self._kappas()
        grads = self._grads()
        dual_sq = self._dual_norms_sq(grads, factored=self._factored(grads))
        return torch.tensor(dual_sq, dtype=kappas.dtype, device=kappas.device) / (2.0 * kappas)

    # ------------------------------------------------------------------ the step

    @torch.no_grad()
    def step(  # type: ignore[override]
        self,
        closure: Callable[[], torch.Tensor] | None = None,
        score_closure: Callable[[], torch.Tensor] | None = None,
        loss_closure: Callable[[], Any] | None = None,
    ) -> torch.Tensor | None:
        """Update the one layer with the largest guaranteed decrease (or the cyclic/random one).

        Args:
            closure: zeroes the gradients, computes the loss, calls ``backward`` and
                returns the loss. Needed by the adaptive mode and ``check_decrease``;
                without it the current ``.grad`` values are used.
            score_closure: optional second closure (e.g. on an independent minibatch)
                whose gradients score the layers; ``closure``'s gradients make the step.
            loss_closure: optional: returns ``closure``'s loss on the same data *without*
                gradients (a forward pass only; it is called under ``torch.no_grad()``). The
                decrease check after the step (adaptive mode, ``check_decrease``) then calls it
                instead of ``closure``, which saves a backward pass per check; the ``.grad``
                fields then keep the gradients at the point before the step.

        Returns:
            The loss returned by ``closure`` before the step (``None`` without one).
        """
        opts = self.options
        adaptive = opts["mode"] == "adaptive"
        check = opts["check_decrease"] if opts["check_decrease"] is not None else adaptive
        if (adaptive or check) and closure is None:
            raise ValueError(
                f"DSGD with mode={opts['mode']!r} and check_decrease={check} needs a closure "
                "that recomputes the loss and its gradients"
            )
        sign = -1.0 if opts["maximize"] else 1.0
        if score_closure is not None:
            with torch.enable_grad():
                score_closure()
            score_grads = self._grads()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
            if not math.isfinite(_loss_value(loss)):
                # An unbounded (or diverged) objective: no step from a non-finite loss.
                self.last_step = {
                    "layer": None,
                    "scores": [math.nan] * len(self.param_groups),
                    "predicted_decrease": math.nan,
                    "nonfinite_loss": True,
                }
                return loss
        grads = self._grads()
        norms = _tensor_norms(grads + (score_grads if score_closure is not None else []))
        if not all(math.isfinite(n) for n in norms):
            # The run has diverged: no norm (and no SVD) of a NaN gradient exists. Leave the
            # parameters alone and report a NaN loss, so the caller records the divergence.
            self.last_step = {
                "layer": None,
                "scores": [math.nan] * len(grads),
                "predicted_decrease": math.nan,
                "nonfinite_gradient": True,
            }
            if loss is None:
                return None
            return torch.full_like(loss, math.nan) if isinstance(loss, torch.Tensor) else math.nan
        n_step = sum(len(layer) for layer in grads)  # norms: the step's gradients, then the scoring ones
        if score_closure is not None:
            score_sq = self._dual_norms_sq(score_grads, norms[n_step:])
        factored = self._factored(grads)
        dual_sq = self._dual_norms_sq(grads, norms[:n_step], factored)
        if score_closure is None:
            score_sq = dual_sq
        # The per-layer numbers are Python floats (one host sync above): no small-tensor ops per step.
        for index, g in enumerate(self.param_groups):  # (an LR scheduler may have moved lr since construction)
            lr = float(g["lr"])
            if not 0.0 <= lr < 2.0:  # (0 is a warm-up's first step: a step of size 0, as before)
                raise ValueError(
                    f"DSGD param group {index}: lr={lr!r} is outside [0, 2); the guaranteed decrease "
                    "eta (1 - eta/2) |||g|||^2 / kappa needs 0 < lr < 2 (set by an LR scheduler?)"
                )
        st = self.state[_OWN]
        kappa_list = self._kappas().tolist() if opts["mode"] == "bound" else list(st["kappa"])
        prev = [q / (2.0 * k) for q, k in zip(dual_sq, kappa_list)]
        scores = prev if score_closure is None else [q / (2.0 * k) for q, k in zip(score_sq, kappa_list)]
        i = self._choose(scores)
        st["prev_scores"] = prev

        group = self.param_groups[i]
        norm = BASE_NORMS[group["norm"]]
        params, eta = group["params"], float(group["lr"])
        if group["norm"] == "frobenius":  # the duality map is the identity: no [W | b] to form and cut
            # The .grad tensors themselves, unless a closure runs again below (it may zero them in place).
            rerun = check and loss_closure is None
            direction = [g.clone() for g in grads[i]] if rerun else grads[i]
        elif i in factored:
            direction = split_layer_matrix(factored[i].dual_map(), params)
        else:
            direction = split_layer_matrix(norm.dual_map(layer_matrix(grads[i])), params)
        g_sq, kappa = dual_sq[i], kappa_list[i]
        f0 = None if loss is None else sign * _loss_value(loss)
        saved = [p.detach().clone() for p in params] if adaptive else None
        backtracks, realized = 0, None
        while True:
            predicted = eta * (1.0 - eta / 2.0) * g_sq / kappa
            self._apply(params, direction, eta / kappa)
            if not check:
                break
            assert closure is not None and f0 is not None  # checked at the top: check needs a closure
            if loss_closure is not None:
                f1 = sign * _loss_value(loss_closure())  # under this method's no_grad: forward only
            else:
                with torch.enable_grad():
                    f1 = sign * _loss_value(closure())
            realized = f0 - f1
            # Rounding slack: below it the two loss values cannot tell the steps apart, and
            # backtracking on rounding noise would only shrink the step for nothing.
            ok = realized >= predicted - _tolerance(f0, params[0].dtype) or not math.isfinite(f0)
            if not adaptive or ok or backtracks >= opts["max_backtracks"]:
                break
            # Sufficient decrease failed: undo, raise the layer's constant, retry.
            assert saved is not None  # adaptive mode saved the layer
            for p, s in zip(params, saved):
                p.copy_(s)
            kappa *= opts["backtrack"]
            backtracks += 1
        if adaptive:
            st["kappa"][i] = self._next_kappa(kappa, g_sq, eta, realized)
        elif check and realized is not None and realized < predicted - _tolerance(f0, params[0].dtype):
            st["violations"] += 1
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"DSGD bound mode: realized decrease {realized:.3g} < predicted {predicted:.3g} on layer {i}; "
                    "an assumption of the bound is violated (is input_bound >= max ||x||? are loss_bounds right?)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        st["step"] += 1
        self.last_step = {
            "step": st["step"],
            "layer": i,
            "scores": scores,
            "predicted_decrease": predicted,
            "kappa": kappa,
            "stationarity": max(q / k for q, k in zip(dual_sq, kappa_list)),
            "loss": f0,
            "realized_decrease": realized,
            "backtracks": backtracks,
            "factored_layers": sorted(factored),
        }
        return loss

    def _next_kappa(self, kappa: float, g_sq: float, eta: float, realized: float | None) -> float:
        """After an accepted step: the secant curvature along the step, shrinking by at most ``decay``."""
        floor = kappa * self.options["decay"]
        if realized is None or not math.isfinite(realized) or g_sq <= 0.0:
            return max(floor, _KAPPA_FLOOR)
        # f(w+u) - f(w) - <g,u> = K_seen |||u|||^2 / 2 with u = -(eta/kappa) rho(g), |||u||| = eta |||g|||_*/kappa.
        step_sq = (eta / kappa) ** 2 * g_sq
        if not step_sq > 0.0:  # underflow: nothing was learned about the curvature
            return max(floor, _KAPPA_FLOOR)
        seen = 2.0 * (-realized + eta / kappa * g_sq) / step_sq
        return max(min(kappa, max(floor, seen)), _KAPPA_FLOOR)


def _tolerance(f0: float | None, dtype: torch.dtype) -> float:
    """Rounding slack for comparing two loss values computed in ``dtype``."""
    return 16.0 * torch.finfo(dtype).eps * max(1.0, abs(f0 or 0.0))


# ----------------------------------------------------------------------------- registry


def _factory(selection: str) -> Callable[..., DSGD]:
    def make(params: Any, **hp: Any) -> DSGD:
        return DSGD(params, **{"selection": selection, **hp})

    return make


def _watch(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    assert isinstance(optimizer, DSGD)
    optimizer.watch(model)


_REGISTERED = {k: v for k, v in HYPERPARAMS.items() if k != "selection"}
# Defaults for ``beyondsgd compare`` (digits/MLP, ReLU): adaptive mode, since ReLU breaks the
# bound's smoothness assumption; see docs/dsgd.md for the sweep that picked them.
_DEFAULTS = {"mode": "adaptive", "norm": "spectral", "lr": 1.0}

for _name, _selection, _what in (
    ("dsgd", "greedy", "DSGD: one layer per step, the one with the largest guaranteed decrease"),
    ("dsgd_cyclic", "cyclic", "DSGD's layer step with cyclic layer choice (baseline)"),
    ("dsgd_random", "random", "DSGD's layer step with uniformly random layer choice (baseline)"),
):
    register(
        OptimizerSpec(
            name=_name,
            factory=_factory(_selection),
            hyperparams=_REGISTERED,
            defaults=_DEFAULTS,
            description=_what,
            family="dsgd",
            param_groups=layer_groups,
            watch_model=_watch,
        )
    )
