"""Leaky ReLU (slope 0.01) and the relaxation half-width eps (docs/tiam.md, "Leaky ReLU").

With a small negative slope s, the box |h(z) - a| <= eps lets z move by up to eps/s on the
negative side per iteration; this script measures the effect of eps on digits (3x100 MLP,
30 full-batch outer iterations, seed 0): test accuracy, the most negative hidden z, and the
penalty and loss terms of F_eps. It uses the output box (``box="output"``), the one this finding
is about (the default for leaky ReLU is now the input box: benchmarks/am_levers.py).

    PYTHONPATH=src python benchmarks/leaky_relu_eps.py
"""

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
from beyondsgd.am import AM_DEFAULTS, TIAM, TIAM_DEFAULTS, PlainAM
from beyondsgd.bench.metrics import evaluate
from beyondsgd.data import load_dataset
from beyondsgd.models import create_model

d = load_dataset("digits")
for label, kw in [
    ("def", {}),
    ("eps.1", {"eps": 0.1}),
    ("dec.5", {"eps_decay": 0.5}),
    ("eps.1dec.5", {"eps": 0.1, "eps_decay": 0.5}),
    ("eps.01", {"eps": 0.01}),
]:
    for cls, base in ((PlainAM, AM_DEFAULTS), (TIAM, TIAM_DEFAULTS)):
        torch.manual_seed(0)
        m = create_model("mlp", d.input_shape, 10, widths=(100, 100), activation="leaky_relu")
        tr = cls(m, d.X_train, d.y_train, F.cross_entropy, **{**base, "box": "output", **kw})
        for _ in range(30):
            tr.train_step(None)
        t = tr.objective_terms()
        print(
            label,
            cls.__name__,
            round(evaluate(tr.module, d.X_test, d.y_test, F.cross_entropy, True)[1], 3),
            "zmin",
            round(float(min(z.min() for z in tr.z[:-1])), 1),
            round(t.penalty, 3),
            round(t.loss, 3),
        )
