"""Which layers DSGD's greedy choice moves on real minibatches, and what branch-and-bound scoring would skip.

DSGD adaptive spectral (``DSGD.watch``, ``loss_closure``) trains an MLP on minibatches of a real
dataset (drawn without replacement from one shuffle), as ``benchmarks/dsgd_step.py`` times it
(``--data random``: one fixed batch of Gaussian inputs with random labels, that benchmark's old
setting). After every step it records:

* the layer chosen (how often each layer moves);
* for every layer the cheap upper bound ``min(N, out, n) ||G||_F^2`` of its squared nuclear norm
  (free: the Frobenius norms are computed anyway) against the exact one (float64 SVD);
* which layers branch-and-bound scoring would have skipped: exact scores taken in the order of
  the bounds' scores, a layer skipped when its bound's score is below the best exact score so far
  (the greedy choice and its score stay exact);
* the backtracks of the decrease check, and each layer's median score over the last half of the run.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/dsgd_layer_choice.py [--data fashion-mnist] [--steps 300]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.nn import functional as F

from beyondsgd.data import load_dataset
from beyondsgd.models import create_model
from beyondsgd.optim import DSGD, layer_groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--widths", default="256,256")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.data == "random":
        X, y, classes = torch.randn(args.batch, 784), torch.randint(0, 10, (args.batch,)), 10
    else:
        data = load_dataset(args.data)
        X, y, classes = data.X_train.reshape(len(data.X_train), -1), data.y_train, data.num_classes
    torch.manual_seed(0)
    widths = tuple(int(w) for w in args.widths.split(","))
    net = create_model("mlp", (X.shape[1],), classes, widths=widths, activation="relu")
    opt = DSGD(layer_groups(net), norm="spectral", mode="adaptive")
    opt.watch(net)
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    k = len(opt.param_groups)
    chosen, skipped, looseness, backtracks, late_scores = [0] * k, [0] * k, [], 0, []
    for step in range(args.steps):
        start = (step * args.batch) % (len(X) - args.batch + 1)
        idx = order[start : start + args.batch]
        xb, yb = X[idx], y[idx]

        def closure(xb=xb, yb=yb):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            return loss

        opt.step(closure, loss_closure=lambda xb=xb, yb=yb: F.cross_entropy(net(xb), yb))
        last = opt.last_step
        scores = last["scores"]
        chosen[last["layer"]] += 1
        backtracks += last["backtracks"]
        if step >= args.steps // 2:
            late_scores.append(scores)
        bound_scores = []
        for i, group in enumerate(opt.param_groups):
            weight, bias = group["params"]
            G = torch.cat([weight.grad, bias.grad[:, None]], dim=1).double()  # (.grad: before the step)
            nuclear_sq = float(torch.linalg.svdvals(G).sum()) ** 2
            bound_sq = min(G.shape[0], G.shape[1], len(idx)) * float((G * G).sum())
            looseness.append(bound_sq / nuclear_sq if nuclear_sq > 0 else 1.0)
            bound_scores.append(scores[i] * bound_sq / nuclear_sq if nuclear_sq > 0 else 0.0)
        best = -1.0
        for i in sorted(range(k), key=lambda j: -bound_scores[j]):
            if bound_scores[i] < best:
                skipped[i] += 1
            else:
                best = max(best, scores[i])
    print(
        f"{args.data}, MLP {X.shape[1]}-{'-'.join(map(str, widths))}-{classes}, batch {args.batch}, {args.steps} steps"
    )
    print(f"layer chosen (per layer): {chosen}")
    print(f"branch-and-bound would skip (per layer, of {args.steps} scorings each): {skipped}")
    print(f"bound / exact squared nuclear norm: median {statistics.median(looseness):.2f}")
    print(f"backtracks of the decrease check per step: {backtracks / args.steps:.2f}")
    medians = [statistics.median(row[i] for row in late_scores) for i in range(k)]
    print("median score per layer, last half of the run: " + ", ".join(f"{m:.3g}" for m in medians))


if __name__ == "__main__":
    main()
