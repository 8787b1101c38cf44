"""A third-party plugin, installed through its entry point, against a real `jpilot serve`.

The plugin (tests/e2e/plugins/jpilot_example_thirdparty.py) implements every hook; a
second one misspells a hook and a third fails to import. Driven with the helpers an
outside author gets (jpilot.plugins.testing), each case checks that the server stays
up, the built-in features keep answering, and the user is told (window/showMessage).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import expected

from jpilot.model.engine import Engine
from jpilot.plugins import testing
from jpilot.plugins.testing_server import TestServer

PLUGINS = Path(__file__).resolve().parent / "plugins"
INSTALLED = {
    "example": PLUGINS / "jpilot_example_thirdparty.py",
    "misspelled": PLUGINS / "jpilot_example_misspelled.py",
    "broken": PLUGINS / "jpilot_example_broken.py",
}
PY_URI, TXT_URI, BAD_URI = "file:///t/calc.py", "file:///t/notes.txt", "file:///t/bad.py"
SOURCE = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n\n\ntotal = add(1, 2)\n'
TEXT = "hello world\ns = '\U0001f600' + ba"  # the tiny model suggests something here
BROKEN_SOURCE = "def f(:\n    pass\n"
HOOKS_CALLED = {
    "jpilot_settings", "jpilot_ignore_document", "jpilot_generation_plan",
    "jpilot_build_prompt", "jpilot_postprocess", "jpilot_inline_items",
    "jpilot_completion_items", "jpilot_hover", "jpilot_hover_sections",
    "jpilot_code_actions", "jpilot_resolve_action", "jpilot_diagnostics",
    "jpilot_execute_command", "jpilot_status",
}  # fmt: skip


def start(tiny_bundle: Path, mode: str) -> Iterator[TestServer]:
    """Serve with the three plugins installed and the example plugin in `mode`."""
    settings = {
        "model": {"path": str(tiny_bundle)},
        "plugins": {"example": {"mode": mode, "note": "hello from settings"}},
    }
    with testing.serve(INSTALLED, settings) as server:
        server.open(PY_URI, SOURCE, "python")
        server.open(TXT_URI, TEXT, "plaintext")
        yield server


@pytest.fixture(scope="module")
def good(tiny_bundle: Path) -> Iterator[TestServer]:
    yield from start(tiny_bundle, "good")


@pytest.fixture(scope="module")
def wrong(tiny_bundle: Path) -> Iterator[TestServer]:
    yield from start(tiny_bundle, "wrong-types")


def suggestion(tiny_engine: Engine) -> str:
    """Return what the built-ins alone suggest at the end of TEXT."""
    want = expected(tiny_engine, TXT_URI, TEXT, len(TEXT))
    assert want.suggestion is not None and want.suggestion.text  # a test that can fail
    return want.suggestion.text


def test_misspelled_and_broken_plugins_are_blocked_and_the_user_told(good: TestServer):
    plugins = good.status()["plugins"]
    assert "example" in plugins["loaded"] and "docs" in plugins["loaded"]
    assert "jpilot_diagnostic is not a jpilot hook" in plugins["failed"]["misspelled"]
    assert "did you mean jpilot_diagnostics?" in plugins["failed"]["misspelled"]
    assert "ImportError: jpilot_example_broken needs libexample" in plugins["failed"]["broken"]
    (notice,) = [m for m in good.messages("not loaded") if "not loaded" in m]
    assert "misspelled (jpilot_diagnostic is not a jpilot hook" in notice
    assert "broken (ImportError" in notice


def test_every_hook_of_a_good_plugin_runs_beside_the_builtins(
    good: TestServer, tiny_engine: Engine
):
    line = len("s = '\U0001f600' + ba".encode("utf-16-le")) // 2
    assert [i["insertText"] for i in good.inline(TXT_URI, 1, line)] == [suggestion(tiny_engine)]
    labels = [i["label"] for i in good.completion(TXT_URI, 1, line)]
    assert labels[0] == "example item" and len(labels) == 2  # theirs first, then the built-in
    hover = good.hover(PY_URI, 5, 9)
    assert hover is not None and hover.startswith("```python\ndef add(a, b)\n```")
    assert hover.endswith("\n\n---\n\n**example:** hello from settings")  # a section added
    good.open(BAD_URI, BROKEN_SOURCE, "python")
    found = good.diagnostics(BAD_URI)
    assert [d["code"] for d in found] == ["syntax-error", "example-first"]
    assert found[1]["range"] == {"start": {"line": 0, "character": 0},
                                 "end": {"line": 0, "character": 1}}  # fmt: skip
    actions = good.code_actions(PY_URI, (0, 0), (2, 0))
    mine = next(a for a in actions if a["title"] == "Example: add a marker")
    assert any(a["title"].startswith("Generate docstring") or "Explain" in a["title"]
               for a in actions)  # fmt: skip
    resolved = good.request("codeAction/resolve", mine)
    (change,) = resolved["edit"]["documentChanges"]
    assert change["edits"][0]["newText"] == "# example\n"
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}
    good.request("workspace/executeCommand", {"command": "jpilot.explain",
                                              "arguments": [PY_URI, selection]})  # fmt: skip
    status = good.status()
    assert HOOKS_CALLED <= set(status["plugins"]["facts"]["example"])
    assert not {k for k in status["plugins"]["errors"] if k.startswith("example.")}


def test_wrong_return_types_are_rejected_and_the_builtins_still_answer(
    wrong: TestServer, tiny_engine: Engine
):
    line = len("s = '\U0001f600' + ba".encode("utf-16-le")) // 2
    assert [i["insertText"] for i in wrong.inline(TXT_URI, 1, line)] == [suggestion(tiny_engine)]
    assert len(wrong.completion(TXT_URI, 1, line)) == 1  # the built-in item alone
    hover = wrong.hover(PY_URI, 5, 9)  # the plugin's list neither wins nor breaks the hover
    assert hover is not None and hover.startswith("```python\ndef add(a, b)\n```")
    assert "---" not in hover
    wrong.open(BAD_URI, BROKEN_SOURCE, "python")
    assert [d["code"] for d in wrong.diagnostics(BAD_URI)] == ["syntax-error"]
    titles = [a["title"] for a in wrong.code_actions(PY_URI, (0, 0), (2, 0))]
    assert "bad" not in titles and titles  # the built-ins' actions still come
    errors = wrong.status()["plugins"]["errors"]
    rejected = {
        "jpilot_ignore_document", "jpilot_generation_plan", "jpilot_build_prompt",
        "jpilot_postprocess", "jpilot_completion_items", "jpilot_hover",
        "jpilot_hover_sections", "jpilot_code_actions", "jpilot_diagnostics",
    }  # fmt: skip
    assert {f"example.{hook}" for hook in rejected} <= set(errors)
    last = wrong.status()["plugins"]["last_error"]
    assert "returned list" in last["example.jpilot_hover"]
    assert "at result[0]" in last["example.jpilot_diagnostics"]
    told = [m for m in wrong.messages("plugin example failed in") if "plugin example" in m]
    assert len(told) == 1 and "must return" in told[0]  # one popup a minute for all of them


def test_plugin_settings_are_checked_like_the_servers(good: TestServer):
    good.configure({"plugins": {"example": {"mode": "bogus", "maxFindings": 99, "colour": 1},
                                "exampel": {"enabled": False}}})  # fmt: skip
    (warning,) = [m for m in good.messages("jpilot settings") if m.startswith("jpilot settings")]
    assert "plugins.example.mode: expected one of 'good', 'wrong-types'" in warning
    assert "plugins.example.maxFindings: expected an integer from 0 to 10" in warning
    assert "unknown setting plugins.example.colour" in warning
    assert "unknown plugin 'exampel' in plugins (did you mean 'example'?)" in warning
    hover = good.hover(PY_URI, 5, 9)  # the valid values were kept, the server still serves
    assert hover is not None and hover.endswith("**example:** hello from settings")
