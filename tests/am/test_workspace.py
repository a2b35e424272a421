"""The AM scratch workspace: one buffer per name, views handed out again while their buffer is current."""

import torch

from beyondsgd.am.objective import Workspace


def test_a_view_is_reused_while_its_buffer_is_current_and_dropped_when_it_grows():
    ws = Workspace()
    like = torch.zeros(1)
    a = ws.get("r", (4, 3), like)
    assert ws.get("r", (4, 3), like) is a  # the same view: no new tensor ops
    b = ws.get("r", (2, 3), like)  # a smaller shape shares the buffer
    assert b.data_ptr() == a.data_ptr() and b.shape == (2, 3)
    big = ws.get("r", (10, 3), like)  # grows: a new buffer, the old views forgotten
    assert big.shape == (10, 3) and big.untyped_storage().nbytes() >= 30 * 4
    assert ws.get("r", (4, 3), like).data_ptr() == big.data_ptr()
    assert all(v[0] is ws._buffers["r"] for k, v in ws._views.items() if k[0] == "r")


def test_a_resized_view_or_another_dtype_is_not_handed_out():
    ws = Workspace()
    v = ws.get("r", (4, 3), torch.zeros(1))
    v.resize_(2, 2)  # what an ``out=`` of the wrong shape does to its argument
    again = ws.get("r", (4, 3), torch.zeros(1))
    assert again.shape == (4, 3)
    d = ws.get("r", (4, 3), torch.zeros(1, dtype=torch.float64))
    assert d.dtype == torch.float64 and d.shape == (4, 3)
