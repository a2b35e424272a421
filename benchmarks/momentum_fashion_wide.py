"""The HB-vs-NAG reproduction on real Fashion-MNIST up to width 1e5 (the default stops at 1e4).

Same protocol and report as ``beyondsgd reproduce momentum`` (5 initialization seeds, n = 100,
120 iterations, the evidence rule), widths 1e3, 1e4 and 1e5, written to ``--out``:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/momentum_fashion_wide.py --out docs/momentum-fashion-wide
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from beyondsgd.reproduce.momentum import MomentumConfig, run_momentum


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("momentum-fashion-wide"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = MomentumConfig(
        n=100, widths=(1000, 10000, 100000), iterations=120, datasets=(("fashion-mnist", "fashion-mnist"),)
    )
    command = f"OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/momentum_fashion_wide.py --out {args.out}"
    print(run_momentum(args.out, cfg, torch.device("cpu"), command=command, preset="wide"))


if __name__ == "__main__":
    main()
