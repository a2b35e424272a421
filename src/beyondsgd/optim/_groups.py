"""What every elementwise optimizer's ``_init_group`` does first: collect a group's parameters.

torch.optim's optimizers create their state in ``_init_group(group, ...)``, a method that
``torch.compile`` (dynamo) runs eagerly instead of tracing, guarding on the state it made;
ours follow that convention (``RuleOptimizer``, ``hb``/``nag``), and share this first part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def collect_with_grad(owner: str, group: Mapping[str, Any], params: list[torch.Tensor]) -> bool:
    """Append the parameters of ``group`` that have a gradient to ``params``, in order.

    Args:
        owner: the optimizer's name, for the error.
        group: a param group.
        params: the list to append to (dynamo maps it back to the traced list).

    Returns:
        Whether any appended parameter is complex.

    Raises:
        RuntimeError: a sparse gradient (as torch.optim's dense optimizers raise).
    """
    has_complex = False
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError(f"{owner} does not support sparse gradients")
        params.append(p)
        has_complex |= p.is_complex()
    return has_complex
