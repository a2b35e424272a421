"""The momentum reproduction at the widths the paper's theory is about (1e3 to 1e5).

`beyondsgd reproduce momentum` stops at width 8000 so that it finishes in minutes on a laptop
CPU; this script runs the same experiment (same data, tuning, iterations and report) at
widths 1 000, 10 000 and 100 000 (about 15 minutes on 2 CPU cores).

    PYTHONPATH=src python benchmarks/momentum_wide.py --out docs/momentum-wide
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from beyondsgd.device import resolve_device
from beyondsgd.reproduce.momentum import MomentumConfig, run_momentum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="momentum-wide", help="output folder")
    parser.add_argument("--widths", default="1000,10000,100000", help="comma-separated widths")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    widths = tuple(int(w) for w in args.widths.split(","))
    report = run_momentum(Path(args.out), MomentumConfig(widths=widths), resolve_device(args.device), progress=True)
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
