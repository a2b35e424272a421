"""Data-parallel training on torch.distributed (torchrun, DistributedDataParallel).

* :mod:`.context` — join the process group from torchrun's environment with a
  timeout; ``world_size()``, ``rank()``, ``is_main()``; ``all_reduce_sum`` (the
  one primitive algorithms need for global decisions), all no-ops in one process.
* :mod:`.sharding` — which samples of a global batch a rank processes.
* :mod:`.sharded_params` — refusal of FSDP/ZeRO-3 parameter shards for
  optimizers that need whole tensors.
* :mod:`.launch` — ``run_local``: N local gloo processes, for tests and benchmarks.

See ``docs/distributed.md``.
"""

from beyondsgd.distributed.context import (
    DEFAULT_TIMEOUT_S,
    RankFailure,
    all_reduce_max,
    all_reduce_sum,
    barrier,
    broadcast,
    init_from_env,
    is_distributed,
    is_initialized,
    is_main,
    launched_by_torchrun,
    rank,
    same_on_all_ranks,
    shutdown,
    world_size,
)
from beyondsgd.distributed.launch import free_port, run_local
from beyondsgd.distributed.sharded_params import check_full_tensors, is_sharded
from beyondsgd.distributed.sharding import batch_shard, local_weight, owned_range, owned_shard

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "RankFailure",
    "all_reduce_max",
    "all_reduce_sum",
    "barrier",
    "batch_shard",
    "broadcast",
    "check_full_tensors",
    "free_port",
    "init_from_env",
    "is_distributed",
    "is_initialized",
    "is_main",
    "is_sharded",
    "launched_by_torchrun",
    "local_weight",
    "owned_range",
    "owned_shard",
    "rank",
    "run_local",
    "same_on_all_ranks",
    "shutdown",
    "world_size",
]
