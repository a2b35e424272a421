"""Ways to get a layer's singular values on CPU: time and accuracy, for DSGD's spectral scores.

For rank-deficient float32 matrices the size of DSGD's layers in the 784-256-256-10 MLP
(a gradient of batch 128 has rank <= 128), it times ``svdvals``, ``matrix_norm(ord=2)``, the
full SVD, and the eigenvalues of the smaller Gram matrix formed in float32 or float64, and
prints the relative error of the nuclear norm against a float64 SVD of the same matrix.

The last method is not in the optimizer (it sees only ``.grad``): a Linear layer's batch
gradient is ``G = D^T [X | 1]`` with ``D`` the ``batch x out`` output gradients and ``X`` the
``batch x in`` inputs, so its singular values are those of a ``batch x batch`` problem:
``C = [X | 1][X | 1]^T = L L^T`` (Cholesky), then ``eigvalsh(L^T D D^T L)``. It needs the
layer's inputs and output gradients (forward and backward hooks).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/spectral_scores.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import time

import torch

from beyondsgd.optim.layer_norms import singular_values


def _best_ms(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats)
    return 1000 * best


def _gram32(G: torch.Tensor) -> torch.Tensor:
    A = G @ G.T if G.shape[0] <= G.shape[1] else G.T @ G
    return torch.linalg.eigvalsh(A).clamp_min(0).sqrt()


def _from_factors(Dt: torch.Tensor, Xa: torch.Tensor) -> torch.Tensor:
    """Singular values of ``G = Dt @ Xa`` from its factors (``Dt``: rows x k, ``Xa``: k x cols), in float64."""
    x, d = Xa.double(), Dt.double()
    chol, _ = torch.linalg.cholesky_ex(x @ x.T)
    evals = torch.linalg.eigvalsh(chol.T @ (d.T @ d) @ chol)
    floor = evals[-1] * max(Dt.shape[0], Xa.shape[1]) * torch.finfo(torch.float64).eps
    return torch.where(evals > floor, evals, torch.zeros_like(evals)).sqrt().flip(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, 1 thread; best of 3 x {args.repeats} calls")
    print(f"{'matrix':<22} {'method':<34} {'ms':>7} {'nuclear rel. error':>19}")
    for rows, cols, rank in ((256, 785, 128), (256, 257, 128), (10, 257, 10)):
        Dt, Xa = torch.randn(rows, rank, generator=gen), torch.randn(rank, cols, generator=gen)
        G = (Dt @ Xa).float()
        exact = float(torch.linalg.svdvals(G.double()).sum())
        methods = {
            "svdvals (float32)": lambda G=G: torch.linalg.svdvals(G),
            "Gram float32 + eigvalsh": lambda G=G: _gram32(G),
            "Gram float64 + eigvalsh (ours)": lambda G=G: singular_values(G),
            "matrix_norm(ord=2) (no nuclear)": lambda G=G: torch.linalg.matrix_norm(G, ord=2),
            "full SVD (no nuclear)": lambda G=G: torch.linalg.svd(G, full_matrices=False),
            "from factors D, [X|1] (not in DSGD)": lambda Dt=Dt, Xa=Xa: _from_factors(Dt, Xa),
        }
        for name, fn in methods.items():
            ms = _best_ms(fn, args.repeats)
            out = fn()
            err = (
                f"{abs(float(out.double().sum()) - exact) / exact:.1e}"
                if isinstance(out, torch.Tensor) and out.dim()
                else "-"
            )
            print(f"{f'{rows}x{cols}, rank {rank}':<22} {name:<34} {ms:>7.2f} {err:>19}", flush=True)


if __name__ == "__main__":
    main()
