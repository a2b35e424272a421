"""Sharding rules, checked for every rank of several world sizes without starting processes."""

import pytest
import torch

from beyondsgd import distributed as dist
from beyondsgd import optim
from beyondsgd.distributed import context
from beyondsgd.validation import NONNEGATIVE


@pytest.fixture
def as_rank(monkeypatch):
    def set_rank(r, w):
        monkeypatch.setattr(context, "is_initialized", lambda: True)
        monkeypatch.setattr(context.dist, "get_rank", lambda: r)
        monkeypatch.setattr(context.dist, "get_world_size", lambda: w)

    return set_rank


@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [1, 7, 64, 101])
def test_shards_partition_every_batch(as_rank, world, n):
    batch = torch.randperm(200)[:n]
    pieces, owned, blocks = [], [], []
    for r in range(world):
        as_rank(r, world)
        local, total = dist.batch_shard(batch, 200)
        pieces.append(local)
        assert total == n
        o, total = dist.owned_shard(batch, 200)
        owned.append(o)
        blocks.append(dist.owned_range(n))
        full, total = dist.batch_shard(None, n)
        start, stop = dist.owned_range(n)
        assert total == n and torch.equal(full, torch.arange(start, stop))  # full batch = the owned block
    assert torch.equal(torch.cat(pieces), batch)  # contiguous split, in order, nothing lost
    assert max(len(p) for p in pieces) - min(len(p) for p in pieces) <= 1  # balanced
    assert sorted(torch.cat(owned).tolist()) == sorted(batch.tolist())  # each sample on exactly one rank
    assert blocks[0][0] == 0 and blocks[-1][1] == n and all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    # shares of the global mean add up to 1
    assert sum(dist.local_weight(len(p), n) for p in pieces) == pytest.approx(1.0)


def test_single_process_is_a_no_op():
    t = torch.tensor([1.0, 2.0])
    assert dist.world_size() == 1 and dist.rank() == 0 and dist.is_main() and not dist.is_distributed()
    assert dist.all_reduce_sum(t) is t and t.tolist() == [1.0, 2.0]
    assert dist.same_on_all_ranks(t)
    assert dist.init_from_env() is False or dist.launched_by_torchrun()


def test_flat_parameter_shard_refused_by_registry():
    shard = torch.nn.Parameter(torch.zeros(6))
    shard._is_flat_param = True  # what FSDP1's FlatParameter carries
    optim.register(optim.OptimizerSpec("test_needs_full", torch.optim.SGD, {"lr": NONNEGATIVE}, defaults={"lr": 0.1}))
    try:
        with pytest.raises(ValueError, match="needs whole parameter tensors"):
            optim.create("test_needs_full", [shard])
        with pytest.raises(ValueError, match="needs whole parameter tensors"):
            optim.create("test_needs_full", [{"params": [shard]}])
        assert optim.create("sgd", [shard]) is not None  # elementwise: shards are fine
    finally:
        optim.registry._REGISTRY.pop("test_needs_full")
