import pytest
import torch

from beyondsgd.data import load_dataset
from beyondsgd.models import create_model


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def small_problem(digits):
    """A 3-layer MLP on 400 digits samples."""

    def make(activation="relu", widths=(32, 32), n=400, seed=0):
        torch.manual_seed(seed)
        model = create_model("mlp", digits.input_shape, digits.num_classes, widths=widths, activation=activation)
        return model, digits.X_train[:n], digits.y_train[:n]

    return make
