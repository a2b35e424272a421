"""The :class:`Dataset` container handed to models, optimizers and benchmarks."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

TASKS = ("classification", "regression")


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors with == has no single truth value
class Dataset:
    """A train/test pair of tensors plus what is needed to build a model for it.

    Attributes:
        name: canonical dataset name (e.g. ``"digits"``).
        X_train: float inputs, shape ``(n_train, *input_shape)``.
        y_train: ``int64`` class ids for classification; float targets of shape
            ``(n,)`` or ``(n, k)`` for regression.
        X_test: float inputs of the test split.
        y_test: targets of the test split.
        input_shape: shape of one input, e.g. ``(1, 8, 8)`` or ``(40,)``.
        num_classes: number of classes, ``None`` for regression.
        task: ``"classification"`` or ``"regression"``.
        source: human readable provenance.
        class_names: the original label of each class id (``class_names[i]`` is
            class ``i``), when the labels were mapped from names or other values
            (file data); ``None`` when the ids are the labels.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    num_classes: int | None
    task: str
    source: str
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if (self.task == "regression") != (self.num_classes is None):
            raise ValueError("num_classes must be None exactly when task is 'regression'")
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
            if len(self.class_names) != self.num_classes:
                raise ValueError(f"class_names has {len(self.class_names)} names but num_classes={self.num_classes}")
        for split in ("train", "test"):
            X = getattr(self, f"X_{split}")
            y = getattr(self, f"y_{split}")
            if tuple(X.shape[1:]) != self.input_shape:
                raise ValueError(f"X_{split} has shape {tuple(X.shape)}, expected (n, *{self.input_shape})")
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y_{split} has {y.shape[0]} rows but X_{split} has {X.shape[0]}")
            if self.task == "classification" and y.dtype != torch.int64:
                raise ValueError(f"y_{split} must be int64 class ids, got {y.dtype}")

    def validate(self) -> None:
        """Check the values, not just the shapes: no empty split, no NaN/inf,
        class ids in ``[0, num_classes)``. The runner calls this before training,
        so a hand-built :class:`Dataset` gets the same checks as a loaded one.

        Raises:
            ValueError: naming the split and the problem.
        """
        for split in ("train", "test"):
            X = getattr(self, f"X_{split}")
            y = getattr(self, f"y_{split}")
            if X.shape[0] == 0:
                raise ValueError(f"the {split} set of dataset {self.name!r} is empty")
            for name, t in ((f"X_{split}", X), (f"y_{split}", y)):
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    raise ValueError(f"{name} of dataset {self.name!r} contains NaN or infinite values")
            if self.task == "classification":
                assert self.num_classes is not None  # checked in __post_init__
                lo, hi = int(y.min()), int(y.max())
                if lo < 0 or hi >= self.num_classes:
                    raise ValueError(
                        f"y_{split} of dataset {self.name!r} has labels in [{lo}, {hi}], "
                        f"expected class ids in [0, {self.num_classes - 1}]"
                    )

    @property
    def n_features(self) -> int:
        """Number of scalar inputs, the product of ``input_shape``."""
        return math.prod(self.input_shape)

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.X_test.shape[0])

    def to(self, device: str | torch.device) -> Dataset:
        """Return a copy with every tensor on ``device`` (``self`` is unchanged).

        Args:
            device: a torch device or its name, e.g. ``"cuda"``.

        Returns:
            A new :class:`Dataset`; tensors already on ``device`` are shared.
        """
        return dataclasses.replace(
            self,
            X_train=self.X_train.to(device),
            y_train=self.y_train.to(device),
            X_test=self.X_test.to(device),
            y_test=self.y_test.to(device),
        )

    def flat(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs as matrices, for fully connected models.

        Returns:
            ``(X_train, X_test)`` reshaped to ``(n, n_features)``; views of the
            stored tensors (no copy) because those are contiguous.
        """
        return (
            self.X_train.reshape(self.n_train, self.n_features),
            self.X_test.reshape(self.n_test, self.n_features),
        )

    def __repr__(self) -> str:
        # The generated repr would print whole tensors; a summary is what one wants in logs.
        classes = "" if self.num_classes is None else f", num_classes={self.num_classes}"
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, n_train={self.n_train}, "
            f"n_test={self.n_test}, input_shape={self.input_shape}{classes}, "
            f"dtype={self.X_train.dtype}, device={self.X_train.device})"
        )
