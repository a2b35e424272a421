import json
import math

import pytest

from beyondsgd.bench.io import read_csv, write_atomic, write_csv, write_json


def test_json_nan_becomes_null(tmp_path):
    write_json(tmp_path / "a.json", {"x": math.nan, "y": (1, 2), "z": 0.5})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": None, "y": [1, 2], "z": 0.5}


def test_csv_round_trip(tmp_path):
    write_csv(tmp_path / "r.csv", [{"a": 1, "b": "x", "extra": 3}, {"a": math.nan, "b": None}], ["a", "b"])
    rows = read_csv(tmp_path / "r.csv")
    assert rows[0] == {"a": 1.0, "b": "x"} and math.isnan(rows[1]["a"]) and math.isnan(rows[1]["b"])


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.txt"
    write_atomic(path, "old")

    def interrupted(fd):
        raise KeyboardInterrupt  # Ctrl-C after the bytes went out, before the rename

    monkeypatch.setattr("os.fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new " * 1000)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]  # no temp file left behind
