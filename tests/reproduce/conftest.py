"""Shared fixtures of the reproduction tests."""

from __future__ import annotations

from dataclasses import fields

import pytest

from beyondsgd.data import Dataset, load_dataset


class GuardedDataset(Dataset):
    """A dataset whose test tensors raise while ``armed`` (set with ``object.__setattr__``)."""

    armed = False

    def __getattribute__(self, name):
        if name in ("X_test", "y_test") and object.__getattribute__(self, "armed"):
            raise AssertionError(f"the test split ({name}) was read during tuning")
        return object.__getattribute__(self, name)


@pytest.fixture
def guarded_digits() -> GuardedDataset:
    """digits as a :class:`GuardedDataset`, not yet armed: a tuning phase must never read its test split."""
    d = load_dataset("digits")
    return GuardedDataset(**{f.name: getattr(d, f.name) for f in fields(d)})
