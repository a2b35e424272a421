import pytest

from beyondsgd import optim
from beyondsgd.distributed import run_local

import dist_workers

#: (optimizer, hyperparameters) checked for 2 ranks == 1 rank: every registered optimizer
#: (read at collection time, so optimizers merged later are covered) plus stateful variants
#: and a backtracking optimizer that takes decisions from the closure's loss.
CASES = [(name, {}) for name in optim.available()] + [
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adam", {"amsgrad": True, "weight_decay": 1e-3}),
    ("test_armijo", {}),
]

#: A small data-parallel ``beyondsgd compare`` (batch 45 on 150 samples: uneven shards).
CLI_ARGS = ["compare", "--algorithms", "sgd,adam", "--seeds", "1", "--epochs", "1", "--n-train", "150",
            "--batch-size", "45", "--model-option", "widths=(16,)", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="session")
def two_rank_results(tmp_path_factory):
    """One spawn of 2 gloo processes runs every check that needs a healthy group; per-rank results."""
    out_root = tmp_path_factory.mktemp("dist-cli")
    per_rank = run_local(dist_workers.all_checks, 2, args=(CASES, str(out_root), CLI_ARGS), timeout_s=300)
    return per_rank, out_root
