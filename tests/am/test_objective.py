import pytest
import torch

from beyondsgd.am.objective import Workspace, penalty_sum, times_wt


@pytest.mark.parametrize("out_features", [1, 10, 16, 50, 100])
@pytest.mark.parametrize("use_buffer", [False, True])
def test_times_wt_is_a_times_w_transposed_to_rounding(out_features, use_buffer):
    g = torch.Generator().manual_seed(0)
    a, W = torch.randn(300, 40, generator=g), torch.randn(out_features, 40, generator=g)
    ws = Workspace()
    out = ws.get("buf", (300, out_features), a) if use_buffer else None
    got = times_wt(a, W, out=out)
    assert got.shape == (300, out_features)
    torch.testing.assert_close(got, (a.double() @ W.double().T).float(), rtol=1e-5, atol=1e-5)
    if use_buffer:
        assert got.data_ptr() == out.data_ptr()  # a view of the buffer, no new tensor


def test_times_wt_transposes_only_narrow_outputs_on_cpu():
    a = torch.randn(300, 40)
    assert not times_wt(a, torch.randn(10, 40)).is_contiguous()  # (W a^T)^T: column-major
    assert times_wt(a, torch.randn(32, 40)).is_contiguous()  # a multiple of 16: a @ W.T
    assert times_wt(a, torch.randn(100, 40)).is_contiguous()  # wide: a @ W.T


def test_penalty_sum_without_a_product_uses_times_wt():
    g = torch.Generator().manual_seed(1)
    a, W, b, z = (torch.randn(*s, generator=g) for s in ((200, 30), (10, 30), (10,), (200, 10)))
    assert torch.equal(penalty_sum(a, W, b, z, 2.0), penalty_sum(a, W, b, z, 2.0, aw=times_wt(a, W)))
