"""Reading a model into AM's layer blocks: any chain ``[Flatten,] Linear, act, ..., Linear``.

Alternating minimization needs the network as a chain of affine layers and
elementwise activations (it keeps a pre- and a post-activation variable per
layer).  :func:`parse_mlp` finds that chain in

* an ``nn.Sequential`` (nested ones are expanded), or
* any other ``nn.Module``, by tracing its ``forward`` with ``torch.fx``: the
  traced graph must be a straight line from the input to the output (every
  node consumes the previous node only, and nothing else consumes it).

Allowed steps: ``nn.Linear`` (with bias); ``nn.ReLU``, ``nn.LeakyReLU``,
``nn.ELU`` or their functional forms (``F.relu``, ``torch.relu``,
``F.leaky_relu``, ``F.elu``, ``x.relu()``); a flatten before the first Linear
(``nn.Flatten()``, ``torch.flatten(x, 1)``, ``x.flatten(1)``); and steps that
are the identity in eval mode (``nn.Identity``, ``nn.Dropout``,
``F.dropout(x, p, training=self.training)``): AM trains the eval-mode network
(the model is traced in eval mode), so dropout is ignored; ``F.dropout`` with
its default ``training=True`` drops units in eval mode too and is refused.
A Linear module used at two places of the chain (shared weights) is refused.
Anything else (convolutions, normalization layers, residual adds, bias-free
Linear layers, tanh...) is a ``ValueError`` that names the offending module or
graph node and says what is supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from beyondsgd.am.projections import Activation, activation_from_module

SUPPORTED = (
    "a chain [Flatten,] Linear(bias=True), activation, ..., Linear with activations ReLU, LeakyReLU or ELU "
    "(modules or F.relu/F.leaky_relu/F.elu), optionally Identity/Dropout steps (ignored: AM trains the "
    "eval-mode network)"
)


@dataclass
class LayerStructure:
    """The Linear layers of an MLP, input to output, and the hidden activations between them.

    Attributes:
        linears: the ``nn.Linear`` modules of the chain (the user's own objects).
        activations: the activation after each Linear but the last.
        flatten: whether the chain flattens its input before the first Linear.
        names: the name of each Linear in the model (for messages).
    """

    linears: list[nn.Linear]
    activations: list[Activation]
    flatten: bool
    names: list[str] | None = None

    @property
    def widths(self) -> list[int]:
        """Output width of every Linear layer."""
        return [lin.out_features for lin in self.linears]

    def flat_inputs(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``X`` as ``(N, features)`` after checking it against the first Linear layer and ``y``.

        Raises:
            ValueError: no samples, image-like inputs without a Flatten in the model, a
                feature count that is not the first Linear's ``in_features`` (naming both
                shapes), ``X``, ``y`` of different lengths, or NaN/inf in ``X``.
        """
        first, lin = (self.names or ["0"])[0], self.linears[0]
        if X.dim() == 0 or X.shape[0] == 0:
            raise ValueError(f"X has no samples (shape {tuple(X.shape)}): the training set is empty")
        if X.dim() > 2 and not self.flatten:
            raise ValueError(
                f"inputs have shape {tuple(X.shape[1:])} per sample but the model has no Flatten before its first "
                f"Linear layer {first!r} (Linear({lin.in_features}, {lin.out_features})), so the model itself "
                "would fail on them; add nn.Flatten() as its first layer or pass X.flatten(1)"
            )
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
        Xf = X.reshape(X.shape[0], -1)
        if Xf.shape[1] != lin.in_features:
            raise ValueError(
                f"inputs have shape {tuple(X.shape[1:])} per sample ({Xf.shape[1]} features); the first Linear "
                f"layer {first!r} expects in_features={lin.in_features}"
            )
        if Xf.is_floating_point():
            bad = int((~torch.isfinite(Xf)).sum())
            if bad:
                raise ValueError(f"X contains {bad} NaN or inf values (of {Xf.numel()}); clean or impute them first")
        return Xf

    @torch.no_grad()
    def write(self, W: list[torch.Tensor], b: list[torch.Tensor]) -> None:
        """Copy ``W, b`` into the model's Linear layers, in place (the user's module is the trained one)."""
        for lin, w, v in zip(self.linears, W, b):
            lin.weight.copy_(w)
            lin.bias.copy_(v)


# One step of the chain: (kind, name, payload); kind in "linear", "act", "flatten", "identity".
_Step = tuple[str, str, object]

_IDENTITY_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.AlphaDropout)
_ACTIVATION_MODULES = (nn.ReLU, nn.LeakyReLU, nn.ELU)


def _refuse(name: str, what: str) -> ValueError:
    return ValueError(f"alternating minimization cannot train this model: {name} is {what}; supported: {SUPPORTED}")


def _module_step(name: str, module: nn.Module) -> _Step:
    if type(module) is nn.Linear:
        return ("linear", name, module)
    if isinstance(module, _ACTIVATION_MODULES):
        return ("act", name, activation_from_module(module))
    if type(module) is nn.Flatten:
        if module.start_dim != 1 or module.end_dim != -1:
            raise _refuse(f"module {name!r}", f"nn.Flatten(start_dim={module.start_dim}, end_dim={module.end_dim})")
        return ("flatten", name, None)
    if isinstance(module, _IDENTITY_MODULES):
        return ("identity", name, None)
    if type(module).__module__ == "torch.nn.modules.activation":  # tanh, sigmoid, SiLU...: say which are supported
        try:
            activation_from_module(module)
        except ValueError as err:
            raise ValueError(f"alternating minimization cannot train this model: module {name!r}: {err}") from None
    if isinstance(module, nn.Linear):  # a subclass may change forward: refuse rather than guess
        raise _refuse(f"module {name!r}", f"a subclass of nn.Linear ({type(module).__name__})")
    raise _refuse(f"module {name!r}", f"an unsupported layer ({type(module).__name__})")


def _sequential_steps(seq: nn.Sequential, prefix: str = "") -> list[_Step]:
    steps: list[_Step] = []
    # _modules, not named_children(): the latter lists a module used twice only once, and a
    # repeated Linear must be seen to be refused (parse_mlp: weight sharing).
    for child_name, child in seq._modules.items():
        if child is None:
            continue
        name = f"{prefix}{child_name}"
        if type(child) is nn.Sequential:
            steps.extend(_sequential_steps(child, f"{name}."))
        else:
            steps.append(_module_step(name, child))
    return steps


def _arg(node: fx.Node, position: int, keyword: str, default: object) -> object:
    if len(node.args) > position:
        return node.args[position]
    return node.kwargs.get(keyword, default)


def _function_step(node: fx.Node) -> _Step:
    from beyondsgd.am.projections import ELU, ReLU, leaky_relu

    name = f"graph node {node.name!r} ({node.op} {getattr(node.target, '__name__', node.target)})"
    fn, meth = (node.target, None) if node.op == "call_function" else (None, node.target)
    if fn in (F.relu, torch.relu, torch.relu_) or meth in ("relu", "relu_"):
        return ("act", name, ReLU())
    if fn is F.leaky_relu:
        return ("act", name, leaky_relu(float(_arg(node, 1, "negative_slope", 0.01))))  # type: ignore[arg-type]
    if fn is F.elu:
        return ("act", name, ELU(float(_arg(node, 1, "alpha", 1.0))))  # type: ignore[arg-type]
    if fn is torch.flatten or meth == "flatten":
        start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
        if start != 1 or end != -1:
            raise _refuse(name, f"a flatten with start_dim={start}, end_dim={end} (only start_dim=1, end_dim=-1)")
        return ("flatten", name, None)
    if fn is F.dropout:
        # Traced in eval mode (see _traced_steps), so training=self.training reads False here; a
        # literal training=True (F.dropout's default) drops units in eval mode too.
        if _arg(node, 2, "training", True) is not False and _arg(node, 1, "p", 0.5) != 0:
            raise _refuse(
                name,
                "F.dropout with training=True (its default), which drops units even in eval mode, while "
                "alternating minimization trains the eval-mode network; pass training=self.training or use nn.Dropout",
            )
        return ("identity", name, None)
    raise _refuse(name, "an operation that is not a Linear layer or a supported activation")


def _eval_trace(model: nn.Module) -> fx.Graph:
    """``torch.fx`` graph of ``model`` traced in eval mode (the network AM trains); modes restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return fx.symbolic_trace(model).graph
    finally:
        for m, training in modes:
            m.training = training


def _traced_steps(model: nn.Module) -> list[_Step]:
    try:
        graph = _eval_trace(model)
    except Exception as err:  # fx raises many types (TraceError, TypeError, NotImplementedError...)
        raise ValueError(
            f"alternating minimization could not trace {type(model).__name__}.forward with torch.fx "
            f"({type(err).__name__}: {err}); its forward must be a plain chain of layers. Supported: {SUPPORTED}"
        ) from None
    nodes = list(graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise ValueError(
            f"alternating minimization needs a forward with one input tensor; {type(model).__name__}.forward "
            f"takes {len(inputs)} ({', '.join(n.name for n in inputs)})"
        )
    steps: list[_Step] = []
    prev = inputs[0]
    for node in nodes:
        if node.op == "placeholder":
            continue
        tensor_inputs = list(node.all_input_nodes)
        if node.op == "output":
            if tensor_inputs != [prev]:
                raise _refuse(f"the output of {type(model).__name__}.forward", "not the end of a single chain")
            if node.args[0] is not prev:  # e.g. return (x,) or {"logits": x}
                raise _refuse(
                    f"the output of {type(model).__name__}.forward",
                    f"a {type(node.args[0]).__name__} holding the last tensor; forward must return the tensor itself",
                )
            break
        if node.op == "get_attr":  # a parameter used outside a Linear module
            raise _refuse(f"graph node {node.name!r} ({node.op} {node.target})", "a tensor used outside nn.Linear")
        if len(prev.users) != 1:
            users = ", ".join(repr(u.name) for u in prev.users)
            hint = ""
            if any(u.target in ("size", "view", "reshape", getattr) for u in prev.users):  # x.view(x.size(0), -1)
                hint = "; to flatten the input, write torch.flatten(x, 1) or use nn.Flatten()"
            raise _refuse(
                f"the output of graph node {prev.name!r}",
                f"used by {len(prev.users)} nodes ({users}): a branch of the chain, e.g. a residual add{hint}",
            )
        if tensor_inputs != [prev]:
            raise _refuse(f"graph node {node.name!r} ({node.op} {node.target})", "a merge of several tensors")
        if node.op == "call_module":
            steps.append(_module_step(str(node.target), model.get_submodule(str(node.target))))
        else:  # call_function, call_method
            steps.append(_function_step(node))
        prev = node
    return steps


def parse_mlp(model: nn.Module) -> LayerStructure:
    """Find the chain ``[Flatten] -> Linear -> act -> ... -> Linear`` of ``model`` and split it.

    Args:
        model: an ``nn.Sequential`` or any ``nn.Module`` whose ``forward`` is such a chain
            (found by ``torch.fx`` tracing).

    Returns:
        The :class:`LayerStructure` (the user's Linear modules, trained in place).

    Raises:
        ValueError: anything else (a CNN, a norm layer, a residual add, a missing bias,
            an activation without a z-projection), naming the offending module or node.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if type(model) is nn.Sequential:
        steps = _sequential_steps(model)
    elif type(model) is nn.Linear:  # a one-layer model (fx would trace into F.linear's parameters)
        steps = [_module_step(type(model).__name__, model)]
    else:
        steps = _traced_steps(model)
    steps = [s for s in steps if s[0] != "identity"]
    flatten = bool(steps) and steps[0][0] == "flatten"
    if flatten:
        steps = steps[1:]
    for kind, name, _ in steps:
        if kind == "flatten":
            raise _refuse(name, "a flatten that is not before the first Linear layer")
    kinds = [k for k, _, _ in steps]
    expected = ["linear" if i % 2 == 0 else "act" for i in range(len(steps))]
    if not steps or kinds != expected or kinds[-1] != "linear":
        names = ", ".join(f"{n} ({k})" for k, n, _ in steps) or "no Linear layer"
        raise ValueError(
            f"alternating minimization needs Linear and activation steps alternating, starting and ending with a "
            f"Linear; found: {names}. Supported: {SUPPORTED}"
        )
    linears: list[nn.Linear] = [m for k, _, m in steps if k == "linear"]  # type: ignore[misc]
    linear_names = [n for k, n, _ in steps if k == "linear"]
    seen: dict[int, str] = {}
    for name, lin in zip(linear_names, linears):
        if id(lin) in seen:
            also = "" if seen[id(lin)] == name else f" (also as {seen[id(lin)]!r})"
            raise _refuse(
                f"module {name!r}",
                f"a Linear layer used twice in the chain{also}: shared weights, while alternating "
                "minimization gives every layer its own W, b",
            )
        seen[id(lin)] = name
    for name, lin in zip(linear_names, linears):
        if lin.bias is None:
            raise _refuse(f"module {name!r}", "a Linear layer without bias (bias=False)")
    acts: list[Activation] = [a for k, _, a in steps if k == "act"]  # type: ignore[misc]
    return LayerStructure(linears, acts, flatten, linear_names)
