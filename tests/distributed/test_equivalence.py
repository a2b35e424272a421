"""2 ranks == 1 rank for every registered optimizer, under DistributedDataParallel (gloo, loopback).

One spawn of 2 processes runs every optimizer (plus a backtracking test optimizer
whose decisions come from the closure's loss); the tests then check each result.
The registry is read at collection time, so optimizers added later are covered.
"""

import pytest

from beyondsgd import optim
from beyondsgd.distributed import run_local

import dist_workers

CASES = [(name, {}) for name in optim.available()] + [
    ("sgd", {"momentum": 0.9, "nesterov": True}),  # state (momentum buffers) must stay replicated
    ("adam", {"amsgrad": True, "weight_decay": 1e-3}),
    ("test_armijo", {}),  # takes decisions from the closure's loss: needs the global loss
]
KEYS = [name + (f" {hp}" if hp else "") for name, hp in CASES]
TOL = 1e-10  # float64: 2 ranks sum the batch in a different order than 1 rank


@pytest.fixture(scope="module")
def results():
    per_rank = run_local(dist_workers.equivalence, 2, args=(CASES,), timeout_s=240)
    return per_rank


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


def test_sharded_parameters_refused_for_non_elementwise_optimizers():
    res = run_local(dist_workers.sharded_refusal, 2, timeout_s=120)[0]
    assert res["sgd_accepts"]
    assert res["armijo_error"] and "needs whole parameter tensors" in res["armijo_error"]
    assert "DTensor" in res["armijo_error"]
