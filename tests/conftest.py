import os

import pytest
import torch

# Deterministic and fast on the 2-core CI machine.
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def device() -> torch.device:
    """The device of the tests that take one: ``$BEYONDSGD_TEST_DEVICE`` (default ``cpu``).

    ``BEYONDSGD_TEST_DEVICE=cuda python -m pytest -m device`` runs them on a GPU
    (``benchmarks/gpu_check.sh`` does); a device that is not available skips them.
    """
    name = os.environ.get("BEYONDSGD_TEST_DEVICE", "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"BEYONDSGD_TEST_DEVICE={name} but torch.cuda.is_available() is False")
    return dev
