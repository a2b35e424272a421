"""The TIAM reproduction's summary: one rule for the to-target columns, and its refresh from ``results.csv``."""

import csv
import math
import shutil
from pathlib import Path

import pytest

from beyondsgd.reproduce import tiam as repro

DOCS = Path(__file__).resolve().parents[2] / "docs"
REPORTS = sorted(DOCS.glob("tiam-*/summary.csv"))


def test_to_target_mean_needs_every_seed():
    assert repro._mean_if_all([2.0, 4.0]) == 3.0
    assert math.isnan(repro._mean_if_all([2.0, math.nan]))
    assert math.isnan(repro._mean_if_all([]))


@pytest.mark.parametrize("summary", REPORTS, ids=lambda p: p.parent.name)
def test_committed_reports_give_iterations_and_time_to_target_together(summary):
    """Both columns come from the same first log point that reaches the target, so they are both
    given or both missing (the old rule averaged the times of the seeds that reached it)."""
    rows = list(csv.DictReader(summary.open()))
    assert rows
    for r in rows:
        missing = [math.isnan(float(r[k])) for k in ("iterations_to_target", "time_to_target_s")]
        assert missing[0] == missing[1], (r["algorithm"], r["iterations_to_target"], r["time_to_target_s"])


def test_refresh_rebuilds_a_committed_summary_from_its_results(tmp_path):
    """Wipe the summary of a committed report (its CSV and the numbers of its tables); the refresh
    from ``results.csv`` and ``tuning.csv`` gives the committed files back byte for byte."""
    src = DOCS / "tiam-digits-leaky"
    out = shutil.copytree(src, tmp_path / "r")
    (out / "summary.csv").write_text("stale\n")
    md = (out / "report.md").read_text().splitlines()
    table_rows = [i for i, line in enumerate(md) if line.startswith("| ") and " | rho=" in line]
    assert table_rows
    for i in table_rows:
        md[i] = "| stale |"
    (out / "report.md").write_text("\n".join(md) + "\n")
    assert repro.refresh_summary(out) == out / "report.md"
    for name in ("summary.csv", "report.md", "report.html"):
        assert (out / name).read_bytes() == (src / name).read_bytes(), name


def test_refresh_refuses_a_folder_without_results(tmp_path):
    with pytest.raises(ValueError, match=r"missing .*results\.csv"):
        repro.refresh_summary(tmp_path)


def test_refresh_refuses_two_runs_under_one_name(tmp_path):
    """Several widths per problem write their runs under the same dataset name in ``results.csv``."""
    out = shutil.copytree(DOCS / "tiam-digits-leaky", tmp_path / "r")
    lines = (out / "results.csv").read_text().splitlines()
    (out / "results.csv").write_text("\n".join([*lines, *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="more than one tiam run of seed 0"):
        repro.refresh_summary(out)
