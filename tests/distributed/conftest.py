import dist_workers
import pytest
from dist_workers import CASES, CLI_ARGS

from beyondsgd.distributed import run_local


@pytest.fixture(scope="session")
def two_rank_results(tmp_path_factory):
    """One spawn of 2 gloo processes runs every check that needs a healthy group; per-rank results."""
    out_root = tmp_path_factory.mktemp("dist-cli")
    per_rank = run_local(dist_workers.all_checks, 2, args=(CASES, str(out_root), CLI_ARGS), timeout_s=300)
    return per_rank, out_root
