"""Two-layer network theory: Gram matrices, NTK, rates and ODEs.

* :mod:`~beyondsgd.ntk.gram`: ``gram_inf`` (H_inf), ``empirical_ntk`` (H(t)), spectra.
* :mod:`~beyondsgd.ntk.theory`: frozen-kernel per-mode prediction of GD/HB/NAG,
  tuned parameters, the published anchor bounds.
* :mod:`~beyondsgd.ntk.ode`: the high- and low-resolution ODEs of HB and NAG.

See ``docs/momentum-ntk.md`` for the math and the choices made.
"""

from beyondsgd.ntk.gram import (
    Spectrum,
    activation_patterns,
    condition_number,
    empirical_ntk,
    gram_inf,
    lambda_min,
    spectrum,
)
from beyondsgd.ntk.ode import integrate_modes, mode_coefficients, ode_loss
from beyondsgd.ntk.theory import (
    gd_bound_du,
    hb_bound_wang,
    iterations_to,
    measured_rate,
    mode_rates,
    predict_loss,
    predict_modes,
    rate,
    tuned_parameters,
)

__all__ = [
    "Spectrum",
    "activation_patterns",
    "condition_number",
    "empirical_ntk",
    "gd_bound_du",
    "gram_inf",
    "hb_bound_wang",
    "integrate_modes",
    "iterations_to",
    "lambda_min",
    "measured_rate",
    "mode_coefficients",
    "mode_rates",
    "ode_loss",
    "predict_loss",
    "predict_modes",
    "rate",
    "spectrum",
    "tuned_parameters",
]
