"""The "TIAM on your own model" example of docs/tiam.md runs as written."""

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "tiam.md"


def test_tiam_on_your_own_model_example_runs_and_trains_the_users_net():
    text = DOC.read_text()
    section = text[text.index("## TIAM on your own model") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    code = code.replace("patience=5)", "patience=5, progress=False)")
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)
    assert scope["test_accuracy"] >= 0.85  # the user's own net, evaluated directly
    assert 1 <= scope["result"].best_epoch <= 20
