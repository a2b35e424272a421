"""register_dataset / register_model, and third-party packages registering through entry points."""

import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from beyondsgd import models
from beyondsgd.data import Dataset, dataset_origin, load_dataset, register_dataset, registry, unregister_dataset


def test_register_dataset_from_arrays_with_options_and_seed():
    def two_moons(n=100, noise=0.1, seed=0):
        """Two noisy half circles."""
        rng = np.random.default_rng(seed)
        t = rng.uniform(0, np.pi, n)
        y = np.arange(n) % 2
        X = np.stack([np.cos(t) + y, np.sin(t) * (1 - 2 * y)], 1) + rng.normal(0, noise, (n, 2))
        return X, np.where(y == 1, "lower", "upper")

    register_dataset("moons", two_moons)
    try:
        assert dataset_origin("moons") == f"register_dataset ({__name__})"
        assert "moons" in registry.available_datasets()
        assert registry.dataset_description("moons") == "Two noisy half circles. (options n=100, noise=0.1)"
        data = load_dataset("moons", n=60)
        assert data.n_train + data.n_test == 60 and data.class_names == ("lower", "upper")
        assert not torch.equal(load_dataset("moons", seed=1).X_train, load_dataset("moons", seed=0).X_train)
        with pytest.raises(ValueError, match="already registered.*overwrite=True"):
            register_dataset("Moons", two_moons)
        with pytest.raises(ValueError, match="unknown option 'colour'"):
            load_dataset("moons", colour=1)
    finally:
        unregister_dataset("moons")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("moons")


def test_register_dataset_returning_a_dataset_and_bad_names():
    def fixed():
        X = torch.randn(20, 3)
        y = torch.arange(20) % 2
        return Dataset("fixed", X[:16], y[:16], X[16:], y[16:], (3,), 2, "classification", "hand-made")

    register_dataset("fixed", fixed, "a fixed tensor dataset")
    try:
        data = load_dataset("fixed", standardize="none")
        assert data.n_train == 16 and data.source == "hand-made"
    finally:
        unregister_dataset("fixed")
    with pytest.raises(ValueError, match="cannot contain a path separator or end in"):
        register_dataset("my.csv", fixed)
    with pytest.raises(ValueError, match="expected a callable"):
        register_dataset("x", 3)
    with pytest.raises(ValueError, match="built in and cannot be unregistered"):
        unregister_dataset("digits")


def test_register_model():
    class Tiny(nn.Module):
        """A linear classifier."""

        def __init__(self, input_shape, num_outputs, bias=True):
            super().__init__()
            self.lin = nn.Linear(int(np.prod(input_shape)), num_outputs, bias=bias)

        def forward(self, x):
            return self.lin(x.flatten(1))

    models.register_model("tiny", Tiny)
    try:
        assert models.model_origin("tiny") == f"register_model ({__name__})"
        assert models.model_description("tiny") == "A linear classifier."
        m = models.create_model("tiny", (1, 8, 8), 10, bias=False)
        assert m.lin.bias is None and m(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
        with pytest.raises(ValueError, match="already registered"):
            models.register_model("tiny", Tiny)
        with pytest.raises(ValueError, match="bad option for model 'tiny'"):
            models.create_model("tiny", (4,), 2, width=3)
    finally:
        models.unregister_model("tiny")
    models.register_model("not_a_module", lambda input_shape, num_outputs: "oops")
    try:
        with pytest.raises(ValueError, match="returned str, expected a torch nn.Module"):
            models.create_model("not_a_module", (4,), 2)
    finally:
        models.unregister_model("not_a_module")


PLUGIN = textwrap.dedent(
    '''
    import numpy as np
    from torch import nn

    def spirals(n=80, seed=0):
        """Two interleaved spirals (from a plug-in package)."""
        rng = np.random.default_rng(seed)
        t = rng.uniform(0.5, 3, n)
        y = np.arange(n) % 2
        X = np.stack([t * np.cos(t + np.pi * y), t * np.sin(t + np.pi * y)], 1)
        return X, y

    def wide(input_shape, num_outputs, width=32):
        """A one-hidden-layer net (from a plug-in package)."""
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), width), nn.ReLU(),
                             nn.Linear(width, num_outputs))

    def broken():
        raise RuntimeError("never called")
    '''
)


def test_entry_points_are_found_lazily_and_listed_with_origin(tmp_path, capsys):
    (tmp_path / "bsgd_plugin_demo.py").write_text(PLUGIN)
    info = tmp_path / "bsgd_plugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bsgd-plugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[beyondsgd.datasets]\nspirals = bsgd_plugin_demo:spirals\nbad = bsgd_plugin_demo:missing_function\n"
        "[beyondsgd.models]\nwide = bsgd_plugin_demo:wide\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        registry.reload_entry_points()
        models.reload_entry_points()
        data = load_dataset("spirals", n=40)
        assert data.n_train + data.n_test == 40
        assert dataset_origin("spirals") == "entry point bsgd_plugin_demo:spirals (package bsgd-plugin-demo)"
        assert "bad" not in registry.available_datasets()  # a broken entry point is skipped, not fatal
        net = models.create_model("wide", data.input_shape, 2, width=8)
        assert net(data.X_train).shape == (data.n_train, 2)
        from beyondsgd.cli import main

        assert main(["list"]) == 0
        out = capsys.readouterr().out
        assert "spirals" in out and "[entry point bsgd_plugin_demo:spirals (package bsgd-plugin-demo)]" in out
        assert "[entry point bsgd_plugin_demo:wide (package bsgd-plugin-demo)]" in out
    finally:
        sys.path.remove(str(tmp_path))
        unregister_dataset("spirals")
        models.unregister_model("wide")
        sys.modules.pop("bsgd_plugin_demo", None)
        registry.reload_entry_points()
        models.reload_entry_points()
    assert "spirals" not in registry.available_datasets()
