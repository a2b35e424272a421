"""H_inf, the empirical NTK and spectra."""

import math

import numpy as np
import pytest
import torch

from beyondsgd.models import TwoLayerReLU
from beyondsgd.ntk import condition_number, empirical_ntk, gram_inf, lambda_min, spectrum
from beyondsgd.ntk.gram import _autograd_ntk


def _unit_rows(n, d, seed=0):
    X = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return X / X.norm(dim=1, keepdim=True)


def test_gram_inf_equals_the_formula_entrywise():
    X = _unit_rows(7, 4)
    H = gram_inf(X)
    assert H.dtype == torch.float64 and H.shape == (7, 7)
    for i in range(7):
        for j in range(7):
            if i == j:
                continue  # acos is ill-conditioned at cos ~ 1: checked below (exactly 1/2 for unit rows)
            c = float(X[i] @ X[j])
            expected = c * (math.pi - math.acos(max(-1.0, min(1.0, c)))) / (2 * math.pi)
            assert H[i, j].item() == pytest.approx(expected, abs=1e-14)
    torch.testing.assert_close(H.diagonal(), torch.full((7,), 0.5, dtype=torch.float64), rtol=0, atol=1e-15)


def test_gram_inf_clips_the_cosine_for_parallel_rows():
    X = _unit_rows(3, 5)
    X = torch.cat([X, X[:1] * (1 + 1e-16), -X[1:2]])  # duplicate and antipodal rows: |cos| rounds to ~1
    H = gram_inf(X)
    assert torch.isfinite(H).all()
    assert H[0, 3].item() == pytest.approx(0.5) and H[1, 4].item() == pytest.approx(0.0, abs=1e-12)


def test_gram_inf_is_the_large_width_limit_of_h0():
    """Monte-Carlo: H(0) of a width-m net concentrates on H_inf (entries have std <= 1/(2 sqrt m))."""
    X = _unit_rows(10, 6, seed=1)
    net = TwoLayerReLU((6,), width=200_000, generator=torch.Generator().manual_seed(2))
    H0 = empirical_ntk(net, X)
    err = (H0 - gram_inf(X)).abs().max().item()
    assert err < 6 * 0.5 / math.sqrt(200_000)
    small = TwoLayerReLU((6,), width=20, generator=torch.Generator().manual_seed(2))
    assert (empirical_ntk(small, X) - gram_inf(X)).abs().max().item() > err  # it is a limit, not an identity


def test_gram_inf_scale_invariance_of_the_angle():
    X = _unit_rows(6, 3, seed=3)
    scales = torch.tensor([0.5, 1.0, 2.0, 3.0, 1.5, 0.2], dtype=torch.float64)
    H = gram_inf(X * scales[:, None])
    torch.testing.assert_close(H, gram_inf(X) * torch.outer(scales, scales))


def test_gram_inf_rejects_bad_input():
    with pytest.raises(ValueError, match="zero row"):
        gram_inf(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        gram_inf(torch.tensor([[1.0, float("nan")]]))


def test_empirical_ntk_closed_form_equals_autograd_jacobian():
    X = _unit_rows(9, 5, seed=4).float()
    net = TwoLayerReLU((5,), width=64, generator=torch.Generator().manual_seed(5))
    closed = empirical_ntk(net, X)
    auto = _autograd_ntk(net, X).double()
    torch.testing.assert_close(closed, auto, rtol=1e-5, atol=1e-6)


def test_spectrum_and_condition_number():
    X = _unit_rows(8, 20, seed=6)
    H = gram_inf(X)
    sp = spectrum(H)
    ref = np.linalg.eigvalsh(H.numpy())
    np.testing.assert_allclose(sp.eigenvalues, ref, rtol=1e-10)
    np.testing.assert_allclose(sp.eigenvectors @ np.diag(sp.eigenvalues) @ sp.eigenvectors.T, H.numpy(), atol=1e-12)
    assert sp.lambda_min == pytest.approx(lambda_min(H)) and sp.lambda_min > 0
    assert condition_number(H) == pytest.approx(ref[-1] / ref[0]) == pytest.approx(sp.condition_number)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gram_inf_diagonal_is_exactly_half_the_squared_norm(dtype):
    X = torch.tensor([[0.1, 0.7, 0.3], [3.0, -1.0, 2.5], [1e-3, 2e-3, -5e-4]], dtype=torch.float64)
    H = gram_inf(X, dtype=dtype)
    G = X.to(dtype) @ X.to(dtype).T
    assert torch.equal(H.diagonal(), G.diagonal() / 2)
    assert H[0, 0].item() == pytest.approx(0.295, rel=1e-15 if dtype == torch.float64 else 1e-7)
    assert gram_inf([[0.1, 0.7, 0.3]])[0, 0].item() == 0.295  # exact in float64 (0.59 / 2)
