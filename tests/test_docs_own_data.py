"""docs/own-data.md: every python and bash block runs, in order, in an empty folder."""

import re
import shlex
import sys
import types
from pathlib import Path

from beyondsgd import models
from beyondsgd.cli import main
from beyondsgd.data import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "own-data.md"


def blocks():
    return re.findall(r"```(python|bash|toml)\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_code_block_of_the_tutorial_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    kinds = [k for k, _ in blocks()]
    assert kinds.count("python") >= 5 and kinds.count("bash") >= 2
    # The blocks run as one module, as a script of yours would: the model class defined there can be
    # pickled by reference (run_sweep(model=...) checks that), as a class in your script can.
    module = types.ModuleType("own_data_doc")
    monkeypatch.setitem(sys.modules, "own_data_doc", module)
    namespace = module.__dict__
    reused = None
    try:
        for kind, code in blocks():
            if kind == "python":
                exec(compile(code, f"{DOC.name} python block", "exec"), namespace)
            elif kind == "bash":
                for line in code.strip().splitlines():
                    argv = shlex.split(line)
                    assert argv[0] == "beyondsgd", line
                    assert main(argv[1:]) == 0, capsys.readouterr().err
                    if argv[1] == "compare" and (tmp_path / "bc-results" / "compare.json").is_file():
                        reused = capsys.readouterr().out
    finally:
        for name in ("wine",):
            if name in registry._SPECS and registry._SPECS[name].origin != "built-in":
                registry.unregister_dataset(name)
        if "smallnet" in models.available_models():
            models.unregister_model("smallnet")
    # The second compare of the page reuses all 12 runs, as the text says.
    assert reused is not None and "reused 12 finished run(s)" in reused
    assert (tmp_path / "wine-named" / "report.md").is_file()
    assert len(list((tmp_path / "wine-sweep" / "data").glob("*.pt"))) == 1
