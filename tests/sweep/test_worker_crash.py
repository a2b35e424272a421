"""A worker process killed mid-run: the pool is rebuilt, the run re-submitted, nothing lost."""

import os
import signal
import threading
import time

from beyondsgd.sweep.config import final_tasks, parse_config
from beyondsgd.sweep.executor import LocalPool, run_local
from beyondsgd.sweep.store import RunStore

CONFIG = {
    "problems": [
        {
            "name": "d",
            "dataset": "digits",
            "model": "mlp",
            "model_options": {"widths": [16]},
            "dataset_options": {"n_train": 300},
            "epochs": 6,
            "batch_size": 32,
        }
    ],
    "algorithms": {"sgd": {}},
    "seeds": 4,
}


class CountingPool(LocalPool):
    discarded = 0

    def discard(self, wait_=False, kill=False):
        if self.executor is not None:
            CountingPool.discarded += 1
        super().discard(wait_, kill)


def test_killed_worker_is_replaced_and_its_run_resubmitted(tmp_path):
    tasks = final_tasks(parse_config(CONFIG), {})
    store = RunStore(tmp_path)
    killed = []

    def killer(pool):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ex = pool.executor
            procs = list(getattr(ex, "_processes", {}) or {}) if ex else []
            if procs and not store.keys():  # workers up, nothing finished yet: a run is in flight
                time.sleep(0.3)
                os.kill(procs[0], signal.SIGKILL)
                killed.append(procs[0])
                return
            time.sleep(0.05)

    with CountingPool(2, 1) as pool:
        t = threading.Thread(target=killer, args=(pool,), daemon=True)
        t.start()
        lost = run_local(tasks, store, workers=2, threads=1, pool=pool)
        t.join(timeout=5)
    assert killed, "the worker was not killed; the test did not exercise a crash"
    assert CountingPool.discarded >= 2  # the broken pool, then the final shutdown
    assert lost == []
    assert store.keys() == {t.key for t in tasks}
    assert all(store.get(t.key)["status"] == "ok" for t in tasks)
    assert all(store.get(t.key)["pid"] != killed[0] for t in tasks)
