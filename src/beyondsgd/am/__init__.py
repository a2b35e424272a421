"""Alternating minimization (gradient-free) training of MLPs: TIAM and plain AM.

The catalogue (:mod:`beyondsgd.algorithms`) names them for the runner and the CLI
(``beyondsgd compare --algorithms tiam,am``):

* ``tiam``: :class:`TIAM`, the three inertias ``p1, p2, p3``;
* ``am``: :class:`PlainAM`, the same iteration with no inertia.

The single- and double-inertia ablations are ``tiam`` with some inertias set to
zero; :data:`ABLATIONS` names them (used by ``beyondsgd reproduce tiam``) without
adding them to ``beyondsgd compare``'s default list.
"""

from __future__ import annotations

from beyondsgd.am.inertia import Inertia, extrapolate
from beyondsgd.am.projections import ELU, Activation, LeakyReLU, ReLU, activation_from_module
from beyondsgd.am.trainer import AM_HYPERPARAMS, TIAM, TIAM_HYPERPARAMS, AMTrainer, PlainAM

#: Defaults of both algorithms (chosen by the sweep in docs/tiam.md).
AM_DEFAULTS = {"rho": 1.0, "mu": 1e-4, "eps": 1.0, "eps_decay": 0.8, "eps_min": 1e-3}
#: TIAM's inertias on top of :data:`AM_DEFAULTS`.
TIAM_DEFAULTS: dict[str, float | str] = {**AM_DEFAULTS, "p1": 0.9, "p2": 0.6, "p3": 0.3, "schedule": "constant"}


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
]
