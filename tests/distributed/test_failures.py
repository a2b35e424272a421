"""A rank that dies or stops communicating makes the others fail with a clear message, in time."""

import re

import dist_workers
import pytest

from beyondsgd.distributed import run_local

TIMEOUT_S = 3.0  # the process group's collective timeout in these tests


def _failed_after(msg: str) -> float:
    match = re.search(r"\[failed after ([0-9.]+) s\]", msg)
    assert match, msg
    return float(match.group(1))


@pytest.mark.parametrize(
    "worker,args",
    [
        (dist_workers.die_or_reduce, ()),  # rank 1 exits
        (dist_workers.stall_or_reduce, (4.5,)),  # rank 1 alive but never joins the all-reduce
    ],
)
def test_survivor_fails_with_a_clear_message_within_the_timeout(worker, args):
    with pytest.raises(RuntimeError) as info:
        run_local(worker, 2, args=args, timeout_s=90, collective_timeout_s=TIMEOUT_S)
    msg = str(info.value)
    assert "rank 0: RankFailure: rank 0 of 2: all_reduce failed — another rank died" in msg, msg
    assert _failed_after(msg) < TIMEOUT_S + 2.0  # failed by itself, bounded by the timeout: no hang
    if worker is dist_workers.die_or_reduce:
        assert "rank 1: exited with code 7" in msg
