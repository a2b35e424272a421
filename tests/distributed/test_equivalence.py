"""2 ranks == 1 rank for every registered optimizer, under DistributedDataParallel (gloo, loopback).

One spawn of 2 processes runs every optimizer (plus a backtracking test optimizer
whose decisions come from the closure's loss); the tests then check each result.
The registry is read at collection time, so optimizers added later are covered.
"""

import dist_workers
import pytest
from dist_workers import CASES

KEYS = [name + (f" {hp}" if hp else "") for name, hp in CASES]
TOL = 1e-10  # float64: 2 ranks sum the batch in a different order than 1 rank


@pytest.fixture(scope="module")
def results(two_rank_results):
    return [res["equivalence"] for res in two_rank_results[0]]


@pytest.mark.parametrize("key", KEYS)
def test_two_ranks_equal_one_rank(results, key):
    for rank, res in enumerate(results):
        r = res[key]
        assert "error" not in r, f"rank {rank}: {r.get('error')}"
        # Bitwise identical on both ranks: parameters, every optimizer-state tensor, the losses.
        assert r["replicated"] == {"params": True, "state": True, "losses": True}, r
        # And the same as one process on the concatenated batches, to rounding.
        assert r["diff"]["params"] < TOL and r["diff"]["state"] < TOL and r["diff"]["losses"] < TOL, r["diff"]
        assert r["moved"] > 1e-4  # the run trained: equality is not vacuous


def test_armijo_took_several_decisions(results):
    # The backtracking optimizer really backtracked (so its decisions were exercised).
    assert results[0]["test_armijo"]["state_size"] > len(dist_workers.BATCHES)


def test_sharded_parameters_refused_for_non_elementwise_optimizers(two_rank_results):
    res = two_rank_results[0][0]["sharded"]
    assert res["sgd_accepts"]
    assert res["armijo_error"] and "needs whole parameter tensors" in res["armijo_error"]
    assert "DTensor" in res["armijo_error"]
