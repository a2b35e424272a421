"""How tight are DSGD's bound-mode layer constants?

For a small random MLP (6-5-4-3, cross-entropy, 40 Gaussian inputs) and each smooth
activation, the largest measured ``|d^2/dt^2 f(w + tU)| / (kappa_i |||U|||_op^2)`` at t = 0
over random directions ``U`` on layer ``i`` (autograd second derivatives).  1 would be
tight; the bound requires <= 1.

    PYTHONPATH=src python benchmarks/dsgd_bound_tightness.py [--directions 50]
"""

from __future__ import annotations

import argparse

import torch
from torch.nn import functional as F

from beyondsgd.models import create_model
from beyondsgd.optim import input_bound, layer_groups
from beyondsgd.optim.layer_norms import layer_curvature_bounds, layer_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directions", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(1)
    X = torch.randn(40, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    header = "max |phi''| / (kappa |||U|||^2)"
    print(f"{'activation':<10} {'layer':>5} {'kappa':>10} {header:>32}")
    for act in ("tanh", "sigmoid", "softplus"):
        net = create_model("mlp", (6,), 3, widths=(5, 4), activation=act).double()
        groups = layer_groups(net)
        kappas = layer_curvature_bounds([g["params"] for g in groups], [act] * 2, input_bound(X))
        params = dict(net.named_parameters())
        for i, g in enumerate(groups):
            names = [n for n, p in params.items() if any(p is q for q in g["params"])]
            worst = 0.0
            for _ in range(args.directions):
                U = [torch.randn_like(p) for p in g["params"]]
                t = torch.zeros((), dtype=torch.float64, requires_grad=True)
                moved = {**params, **{n: params[n].detach() + t * u for n, u in zip(names, U)}}
                loss = F.cross_entropy(torch.func.functional_call(net, moved, (X,)), y)
                (d1,) = torch.autograd.grad(loss, t, create_graph=True)
                (d2,) = torch.autograd.grad(d1, t)
                norm_sq = torch.linalg.matrix_norm(layer_matrix(U), ord=2) ** 2
                worst = max(worst, float(d2.abs() / (kappas[i] * norm_sq)))
            print(f"{act:<10} {i + 1:>5} {float(kappas[i]):>10.3g} {worst:>32.4f}")


if __name__ == "__main__":
    main()
