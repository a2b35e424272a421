"""DSGD's spectral norms from the float64 Gram matrix: the same numbers, layer and step as full SVDs."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from beyondsgd.models import create_model
from beyondsgd.optim import DSGD, layer_groups, layer_norms
from beyondsgd.optim.layer_norms import BASE_NORMS, BaseNorm, layer_op_norms, singular_values


class _SVDSpectral(BaseNorm):
    """The previous implementation: svdvals / matrix_norm / svd in the input's dtype."""

    name = "spectral"

    def norm(self, mat):
        return torch.linalg.matrix_norm(mat, ord=2)

    def dual_norm(self, mat):
        return torch.linalg.svdvals(mat).sum()

    def dual_map(self, mat, cut_dtype=None):
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        keep = (s > s.amax() * max(mat.shape) * torch.finfo(cut_dtype or mat.dtype).eps).to(mat.dtype)
        return s.sum() * (u @ (keep[:, None] * vh))


def _low_rank(rows, cols, rank, seed, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(rows, rank, generator=gen, dtype=torch.float64)
    b = torch.randn(rank, cols, generator=gen, dtype=torch.float64)
    scale = torch.logspace(0, -3, rank, dtype=torch.float64)  # spread singular values
    return ((a * scale) @ b).to(dtype)


SHAPES = [(256, 785, 128), (256, 257, 256), (10, 257, 10), (300, 40, 40), (300, 40, 7), (1, 9, 1), (9, 1, 1)]


@pytest.mark.parametrize(("rows", "cols", "rank"), SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_cheap_singular_values_equal_exact_ones(rows, cols, rank, seed):
    G = _low_rank(rows, cols, rank, seed)
    exact = torch.linalg.svdvals(G.double())  # float64 SVD of the same float32 matrix
    cheap = singular_values(G)
    assert cheap.dtype == G.dtype and cheap.shape == exact.shape
    spectral = BASE_NORMS["spectral"]
    # Nuclear and spectral norms to float32 precision.
    assert float(spectral.dual_norm(G)) == pytest.approx(float(exact.sum()), rel=2e-6)
    assert float(spectral.norm(G)) == pytest.approx(float(exact[0]), rel=2e-6)
    # Every singular value to float32 rounding of the largest; the zero ones come out as zeros.
    assert torch.allclose(cheap.double(), exact, rtol=1e-5, atol=1e-6 * float(exact[0]))
    if rank < min(rows, cols):
        assert bool((cheap[rank:] == 0).all())


@pytest.mark.parametrize(("rows", "cols", "rank"), SHAPES)
def test_cheap_duality_map_equals_the_svd_map(rows, cols, rank):
    G = _low_rank(rows, cols, rank, seed=3)
    new = BASE_NORMS["spectral"].dual_map(G)
    assert new.dtype == G.dtype
    # Against the SVD in float64 of the same matrix, with the float32 rank cut (rounding noise is no rank) ...
    exact = _SVDSpectral().dual_map(G.double(), cut_dtype=torch.float32)
    assert torch.allclose(new.double(), exact, rtol=0, atol=1e-6 * float(exact.abs().max()))
    # ... and against the previous float32 SVD path, which carries the float32 SVD's own rounding.
    old = _SVDSpectral().dual_map(G)
    assert torch.allclose(new, old, rtol=0, atol=2e-3 * float(old.abs().max()))


def test_float64_keeps_the_svd_path():
    G = _low_rank(20, 30, 5, seed=4, dtype=torch.float64)
    assert torch.equal(singular_values(G), torch.linalg.svdvals(G))
    assert torch.equal(BASE_NORMS["spectral"].norm(G), torch.linalg.matrix_norm(G, ord=2))


def test_zero_matrix_has_zero_norms_and_map():
    G = torch.zeros(4, 6)
    assert float(BASE_NORMS["spectral"].dual_norm(G)) == 0.0
    assert torch.equal(BASE_NORMS["spectral"].dual_map(G), G)


def _run(mode, activation, steps, seed):
    torch.manual_seed(seed)
    X, y = torch.randn(64, 20), torch.randint(0, 5, (64,))
    net = create_model("mlp", (20,), 5, widths=(32, 24), activation=activation)
    opt = DSGD(layer_groups(net), mode=mode, norm="spectral", input_bound=float(X.norm(dim=1).max()))

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(net(X), y)
        loss.backward()
        return loss

    layers, scores = [], []
    for _ in range(steps):
        opt.step(closure)
        layers.append(opt.last_step["layer"])
        scores.append(opt.last_step["scores"])
    return layers, torch.tensor(scores), [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize(("mode", "activation"), [("adaptive", "relu"), ("bound", "tanh")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dsgd_chooses_the_same_layers_and_steps_as_with_full_svds(monkeypatch, mode, activation, seed):
    new = _run(mode, activation, steps=8, seed=seed)
    monkeypatch.setitem(layer_norms.BASE_NORMS, "spectral", _SVDSpectral())
    old = _run(mode, activation, steps=8, seed=seed)
    assert new[0] == old[0]  # the chosen layers
    assert torch.allclose(new[1], old[1], rtol=1e-4)  # every layer's score
    for a, b in zip(new[2], old[2]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_op_norms_of_a_layer_equal_the_svd_ones():
    w, b = _low_rank(40, 30, 12, seed=5), torch.randn(40)
    op_w, op_full = layer_op_norms([w, b])
    assert float(op_w) == pytest.approx(float(torch.linalg.matrix_norm(w.double(), ord=2)), rel=1e-6)
    full = torch.cat([w, b[:, None]], dim=1).double()
    assert float(op_full) == pytest.approx(float(torch.linalg.matrix_norm(full, ord=2)), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_map_is_the_map_of_the_matrix_as_given(dtype):
    """bfloat16 has no CPU SVD; the Gram path gives the map of the rounded matrix (float32's rank cut)."""
    G = _low_rank(64, 300, 20, seed=6, dtype=dtype)
    got = BASE_NORMS["spectral"].dual_map(G)
    assert got.dtype == dtype
    exact = _SVDSpectral().dual_map(G.double(), cut_dtype=torch.float32)
    assert float(exact.abs().max()) > 0
    torch.testing.assert_close(got.double(), exact, rtol=1e-2, atol=1e-2 * float(exact.abs().max()))
    nuc = torch.linalg.svdvals(G.double()).sum()
    assert float(BASE_NORMS["spectral"].dual_norm(G)) == pytest.approx(float(nuc), rel=1e-2)
