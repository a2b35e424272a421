"""Benchmark sweeps: tune algorithms on several problems, re-run the best over seeds, report.

* :mod:`.config` — the YAML/dict config, search spaces, the tuning and final tasks;
* :mod:`.executor` — local process pools and Ray, with crash isolation;
* :mod:`.store` — the resumable file-per-run store;
* :mod:`.run` — :func:`run_sweep`, the whole pipeline;
* :mod:`.report` — tables, confidence intervals, performance profiles, plots;
* :mod:`.suites` — ready-made configs (``--suite small``).

Sweeps sit above the benchmark runner (:mod:`beyondsgd.bench`) and use it for
every training run.
"""

from beyondsgd.sweep.config import ConfigError, SweepConfig, load_config, parse_config
from beyondsgd.sweep.run import run_sweep
from beyondsgd.sweep.suites import suite_config

__all__ = ["ConfigError", "SweepConfig", "load_config", "parse_config", "run_sweep", "suite_config"]
