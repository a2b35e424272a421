"""Alternating minimization (gradient-free) training of MLPs: TIAM, plain AM and dlADMM.

The catalogue (:mod:`beyondsgd.algorithms`) names them for the runner and the CLI
(``beyondsgd compare --algorithms tiam,am,dladmm``):

* ``tiam``: :class:`TIAM`, the three inertias ``p1, p2, p3``;
* ``am``: :class:`PlainAM`, the same iteration with no inertia;
* ``dladmm``: :class:`DLADMM` (Wang et al., KDD 2019), the ADMM baseline.

:func:`fit` trains the user's own model (tensors, Dataset or DataLoader over an
:class:`IndexedDataset`) with any of them.

The single- and double-inertia ablations are ``tiam`` with some inertias set to
zero; :data:`ABLATIONS` names them (used by ``beyondsgd reproduce tiam``) without
adding them to ``beyondsgd compare``'s default list.
"""

from __future__ import annotations

from beyondsgd.am.dladmm import DLADMM, DLADMM_DEFAULTS, DLADMM_HYPERPARAMS
from beyondsgd.am.fit import FitResult, IndexedDataset, fit
from beyondsgd.am.inertia import Inertia, extrapolate
from beyondsgd.am.projections import ELU, Activation, LeakyReLU, ReLU, activation_from_module
from beyondsgd.am.trainer import (
    AM_DEFAULTS,
    AM_HYPERPARAMS,
    TIAM,
    TIAM_DEFAULTS,
    TIAM_HYPERPARAMS,
    AMTrainer,
    PlainAM,
)


def _ablation_overrides(keep: str) -> dict[str, float]:
    return {f"p{i}": float(TIAM_DEFAULTS[f"p{i}"]) if str(i) in keep else 0.0 for i in (1, 2, 3)}


#: Ablations: name -> ``tiam`` hyperparameters keeping only the listed inertias.
ABLATIONS: dict[str, dict[str, float]] = {
    f"tiam_p{keep}": _ablation_overrides(keep) for keep in ("1", "2", "3", "12", "13", "23")
}


__all__ = [
    "ABLATIONS",
    "AM_DEFAULTS",
    "AM_HYPERPARAMS",
    "AMTrainer",
    "Activation",
    "DLADMM",
    "DLADMM_DEFAULTS",
    "DLADMM_HYPERPARAMS",
    "FitResult",
    "IndexedDataset",
    "ELU",
    "Inertia",
    "LeakyReLU",
    "PlainAM",
    "ReLU",
    "TIAM",
    "TIAM_DEFAULTS",
    "TIAM_HYPERPARAMS",
    "activation_from_module",
    "extrapolate",
    "fit",
]
