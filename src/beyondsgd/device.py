"""Choosing the device a run uses."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``/``"cpu"``/``"cuda"``/``"cuda:1"`` into a ``torch.device``.

    ``"auto"`` (and ``None``) picks CUDA when it is available, else the CPU.

    Raises:
        ValueError: an unknown device string, or CUDA asked for where there is none.
    """
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"invalid device={device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"invalid device={device!r}: CUDA is not available on this machine (use 'cpu' or 'auto')")
    return dev
