"""The CLI's answers to bad input: one line on stderr, a documented exit status, no traceback."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from jpilot.lsp import cli
from jpilot.lsp.commands import why_none
from jpilot.model.bundle import HOW_TO_GET_ONE as HINT


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run the CLI in-process; return its status, stdout and stderr."""
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "a.py"
    path.write_text("def f(x):\n    return x\n", encoding="utf-8")
    return path


def test_settings_that_are_not_json(source: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["complete", str(source), "--line", "1", "--col", "1", "--settings", "{bad json"]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: --settings is not valid JSON (") and err.count("\n") == 1


@pytest.mark.parametrize("col", ["0", "-5", "999"])
def test_a_column_outside_the_line(source: Path, col: str, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(["complete", str(source), "--line", "2", "--col", col], capsys)
    assert code == 2 and out == ""
    assert err == f"error: {source}: --col {col} is outside line 2 (columns 1 to 13)\n"


def test_no_suggestion_says_why_and_exits_1(
    source: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    settings = '{"plugins": {"completion": {"enabled": false}}}'
    argv = ["complete", str(source), "--line", "2", "--col", "13", "--bundle", str(tiny_bundle)]
    code, out, err = run([*argv, "--settings", settings], capsys)
    assert (code, out) == (1, "")
    why = "no plugin planned a completion here (is the completion plugin disabled?)"
    assert err == f"no suggestion: {why}\n"


def test_why_none_names_the_post_processor_in_words() -> None:
    parse = SimpleNamespace(status="empty", stats={"dropped_by": "parse"})
    assert why_none(parse) == "dropped by the parse check (it would make the file unparseable)"
    plain = SimpleNamespace(status="empty", stats={})
    assert why_none(plain) == "the model suggested nothing here"


def test_a_bundle_that_is_a_file(source: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["complete", str(source), "--line", "1", "--col", "1", "--bundle", str(source)]
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    assert err == f"error: model bundle {source} is a file, not a bundle folder; {HINT}\n"


def test_generate_with_an_empty_prompt(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(["model", "generate", ""], capsys)
    assert code == 1 and out == ""
    assert (
        err == "error: the prompt is empty; give the code to continue, e.g. 'def add(a, b):\\n'\n"
    )
