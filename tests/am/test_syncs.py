"""Host synchronizations per outer iteration (what a GPU run waits for), counted on CPU."""

import pytest
import torch
import torch.nn.functional as F

from beyondsgd.am import TIAM, PlainAM, blocks, losses
from beyondsgd.am import trainer as am_trainer


@pytest.fixture
def count_syncs(monkeypatch):
    """Count tensor -> host conversions (float(), bool(), int(), .item(), .tolist())."""
    counter = {"n": 0}
    for name in ("__float__", "__bool__", "__int__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def wrapped(self, *args, _original=original, **kwargs):
            counter["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapped)
    return counter


@pytest.fixture
def count_decisions(monkeypatch):
    """Backtracking trials and cross-entropy prox stopping tests: the decisions that must sync."""
    counter = {"trials": 0, "prox_checks": 0}
    step = blocks.backtracking_step

    def counted_step(*args, **kwargs):
        res = step(*args, **kwargs)
        counter["trials"] += res.doublings + 1
        return res

    check = losses.CrossEntropy._converged

    def counted_check(self, *args):
        counter["prox_checks"] += 1
        return check(self, *args)

    monkeypatch.setattr(am_trainer, "backtracking_step", counted_step)
    monkeypatch.setattr(losses.CrossEntropy, "_converged", counted_check)
    return counter


def test_plain_am_syncs_only_for_backtracking_decisions(small_problem, count_syncs, count_decisions):
    model, X, y = small_problem()
    # prox_stopping="bound": what "auto" does on an accelerator (on CPU, where a sync costs no wait,
    # "auto" tests convergence instead: fewer iterations).
    tr = PlainAM(model, X, y, F.cross_entropy, prox_stopping="bound")
    tr.train_step(None)  # warm-up: the first iteration also computes the starting products
    count_syncs["n"], count_decisions["trials"], count_decisions["prox_checks"] = 0, 0, 0
    tr.train_step(None)
    assert count_decisions["trials"] > 0
    # At the default rho the prox runs its proven iteration count: no stopping test.
    assert count_decisions["prox_checks"] == 0
    # Nothing else: the logged terms stay on the device until end_epoch reads them.
    assert count_syncs["n"] == count_decisions["trials"]


def test_prox_beyond_its_bound_syncs_once_per_stopping_test(small_problem, count_syncs, count_decisions):
    model, X, y = small_problem()
    tr = PlainAM(model, X, y, F.cross_entropy, rho=1e-3, prox_stopping="bound")  # the bound needs > 500 here
    assert tr.out_loss.iterations_bound(1e-3) is None
    tr.train_step(None)
    count_syncs["n"], count_decisions["trials"], count_decisions["prox_checks"] = 0, 0, 0
    tr.train_step(None)
    assert count_decisions["prox_checks"] > 0
    assert count_syncs["n"] == count_decisions["trials"] + count_decisions["prox_checks"]


@pytest.mark.parametrize("cls", [PlainAM, TIAM])
def test_logged_terms_cost_one_sync_at_the_end_of_the_epoch(small_problem, count_syncs, cls):
    model, X, y = small_problem()
    tr = cls(model, X, y, F.cross_entropy)
    tr.train_step(None)
    count_syncs["n"] = 0
    log = tr.end_epoch(0)
    # loss, penalty, reg and every hidden layer's gap in one transfer.
    assert count_syncs["n"] == 1
    terms = tr.objective_terms()  # the same terms, recomputed from the state (several syncs)
    assert log["am_loss"] == pytest.approx(terms.loss, rel=1e-5)
    assert log["am_penalty"] == pytest.approx(terms.penalty, rel=1e-4, abs=1e-9)
    assert log["am_reg"] == pytest.approx(terms.reg, rel=1e-6)
    assert log["am_activation_gap"] == terms.activation_gap


@pytest.mark.parametrize("stopping", ["bound", "test"])
def test_tiam_adds_one_sync_per_safeguard_check(small_problem, count_syncs, count_decisions, stopping):
    model, X, y = small_problem()
    tr = TIAM(model, X, y, F.cross_entropy, prox_stopping=stopping)
    tr.train_step(None)
    count_syncs["n"], count_decisions["trials"], count_decisions["prox_checks"] = 0, 0, 0
    tr.train_step(None)
    blocks_per_iteration = 4 * (tr.num_layers - 1) + 3
    assert (count_decisions["prox_checks"] == 0) == (stopping == "bound")
    decisions = count_decisions["trials"] + count_decisions["prox_checks"]
    # Each safeguard check is one decision (1 sync); redone blocks add their own trials.
    assert count_syncs["n"] == decisions + blocks_per_iteration


def test_prox_stopping_auto_tests_on_cpu_and_is_validated(small_problem):
    model, X, y = small_problem()
    tr = PlainAM(model, X, y, F.cross_entropy)
    tr.train_step(None)
    assert tr.out_loss.stopping == "auto" and tr.out_loss.last_iters % 10 == 0  # tested (CPU)
    with pytest.raises(ValueError, match="prox_stopping"):
        PlainAM(model, X, y, F.cross_entropy, prox_stopping="never")
