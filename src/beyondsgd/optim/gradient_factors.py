"""Each watched Linear layer's gradient as its two factors, recorded by hooks (DSGD's cheap spectral norms).

For ``y = x W^T + b`` on a batch, ``[dW | db] = D^T [X | 1]`` with ``X`` the layer's input
and ``D = dloss/dy``. A forward hook keeps ``X`` (a reference: autograd keeps it until the
backward pass anyway) and hooks the output for ``D``. With a batch smaller than both sides of
the layer, the gradient's singular values and duality map then come from batch-sized problems
(:class:`~beyondsgd.optim.layer_norms.FactoredGradient`).

The factors are used only when they reproduce the ``.grad`` being scored: every step compares
``.grad v`` with ``D^T ([X | 1] v)`` for a fresh random ``v``, to the float rounding bound of a
matrix product. Whatever else made ``.grad`` (gradients accumulated over several backward
passes, clipped or rescaled, weight decay added to them, a layer applied twice in one forward
pass, data-parallel averaging) fails that test, and the caller takes the exact path from
``.grad`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from beyondsgd.optim.layer_norms import FactoredGradient, factor_gradient

__all__ = ["LinearGradientFactors"]


class _Record:
    """The inputs and output gradients of one layer's last forward/backward pass with gradients on."""

    __slots__ = ("inputs", "output_grads")

    def __init__(self) -> None:
        self.inputs: torch.Tensor | None = None
        self.output_grads: torch.Tensor | None = None


class LinearGradientFactors:
    """Hooks on the ``nn.Linear`` modules of ``model`` whose weight is in ``weights``.

    Args:
        model: the module whose Linear layers are watched.
        weights: the weights to watch (others are left alone).

    Only forward passes with gradients enabled are recorded, so a loss evaluated under
    ``torch.no_grad()`` (DSGD's ``loss_closure``) leaves the record of the last backward pass.
    """

    def __init__(self, model: nn.Module, weights: Sequence[torch.Tensor]) -> None:
        wanted = {id(w) for w in weights}
        self._records: dict[int, tuple[nn.Linear, _Record]] = {}
        self._handles: list[RemovableHandle] = []
        for module in model.modules():
            if isinstance(module, nn.Linear) and id(module.weight) in wanted and id(module.weight) not in self._records:
                record = _Record()
                self._records[id(module.weight)] = (module, record)
                self._handles.append(module.register_forward_hook(_recorder(record), with_kwargs=True))
        self._generator: torch.Generator | None = None

    @property
    def watched(self) -> int:
        """How many layers are watched (0 after :meth:`remove`)."""
        return len(self._records)

    def remove(self) -> None:
        """Take the hooks off the model and forget the records."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._records.clear()

    def factored(
        self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], sign: float = 1.0
    ) -> FactoredGradient | None:
        """The layer gradient ``grads`` (of ``[weight]`` or ``[weight, bias]``) from its factors, or ``None``.

        ``None`` when the layer is not watched, its record is incomplete, the factors would
        not be cheaper (batch not smaller than both sides of the layer), or they do not
        reproduce ``grads`` (``sign * D^T [X | 1]``).
        """
        entry = self._records.get(id(params[0]))
        if entry is None:
            return None
        module, record = entry
        x, d = record.inputs, record.output_grads
        if x is None or d is None or x.shape[:-1] != d.shape[:-1]:
            return None
        with_bias = len(params) == 2
        if with_bias and params[1] is not module.bias:
            return None
        x = x.reshape(-1, x.shape[-1])
        d = d.reshape(-1, d.shape[-1])
        n, cols = x.shape[0], x.shape[1] + with_bias
        if not n < min(d.shape[1], cols) or grads[0].shape != (d.shape[1], x.shape[1]):
            return None
        x64, d64 = x.to(torch.float64), d.to(torch.float64)
        if sign < 0:
            d64 = -d64
        if not self._reproduces(grads, x, d, x64, d64):
            return None
        # [X | 1] in X's own dtype (exact); factor_gradient takes it to the precisions it needs.
        inputs = torch.ones(n, cols, dtype=x.dtype, device=x.device)
        inputs[:, : x.shape[1]] = x
        return factor_gradient(d64, inputs, grads[0].dtype)

    def _reproduces(
        self, grads: Sequence[torch.Tensor], x: torch.Tensor, d: torch.Tensor, x64: torch.Tensor, d64: torch.Tensor
    ) -> bool:
        """``grads v == D64^T ([X | 1] v)`` (``D64`` the signed float64 ``D``) to the rounding bound of the products, for a random ``v``.

        ``grads v`` and the bound ``|D|^T (|X| |v| + |v_b|)`` are taken in the gradient's precision
        (at least float32; no float64 copy of the gradient), ``D^T ([X | 1] v)`` in float64. The
        gradient's own rounding (``N`` terms), that of ``grads v`` (``in + 1``) and the bound's
        together stay below ``(N + in + 2) eps`` times the bound; the test allows twice that.
        """
        work = torch.promote_types(grads[0].dtype, torch.float32)
        if self._generator is None or self._generator.device != x.device:
            self._generator = torch.Generator(device=x.device).manual_seed(0)
        width = grads[0].shape[1]
        v = torch.randn(width + len(grads) - 1, generator=self._generator, dtype=work, device=x.device)
        seen = grads[0].to(work) @ v[:width]
        expected_in = x64 @ v[:width].to(torch.float64)
        bound_in = x.to(work).abs() @ v[:width].abs()
        if len(grads) == 2:
            seen = seen + grads[1].to(work) * v[width]
            expected_in = expected_in + v[width].to(torch.float64)
            bound_in = bound_in + v[width].abs()
        expected = expected_in @ d64
        bound = bound_in @ d.to(work).abs()
        eps = max(_eps(t.dtype) for t in (*grads, x, d, v))
        slack = 2.0 * (x.shape[0] + width + 2) * eps
        return bool(((seen.to(torch.float64) - expected).abs() <= slack * bound.to(torch.float64)).all())


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps if dtype.is_floating_point else 0.0


def _recorder(record: _Record) -> Any:
    def keep_output_grads(grad: torch.Tensor) -> None:
        record.output_grads = grad.detach()

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if not torch.is_grad_enabled() or not isinstance(output, torch.Tensor) or not output.requires_grad:
            return
        x = args[0] if args else kwargs.get("input")
        if not isinstance(x, torch.Tensor):
            return
        record.inputs, record.output_grads = x.detach(), None
        output.register_hook(keep_output_grads)

    return hook
