"""The README's two quick-start commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_exactly_two_quick_start_commands():
    cmds = _quick_start_commands()
    assert cmds == [
        "python -m pip install -e . && beyondsgd compare",
        'python -m pip install -e ".[test]" && python -m pytest',
    ]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _quick_start_commands()[1] in ci.splitlines()
