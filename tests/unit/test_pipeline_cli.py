"""The completion pipeline on the tiny model, and `jpilot complete` giving the same answer."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from jpilot.lsp import cli
from jpilot.lsp.pipeline import complete, postprocess
from jpilot.lsp.plugins import PluginHost, default_host
from jpilot.model.engine import Engine
from jpilot.plugins.api import CompletionRequest, Suggestion
from jpilot.plugins.settings import parse_settings


@pytest.fixture(scope="module")
def engine(tiny_bundle: Path) -> Engine:
    return Engine(str(tiny_bundle))


def req(text: str, uri: str = "file:///w/a.txt", language: str = "plaintext", **kw):
    settings, _ = parse_settings(kw.pop("settings", None))
    return CompletionRequest(uri, language, text, len(text), 1, settings, **kw)


def test_cancelled_before_start_never_runs_the_model(engine: Engine):
    cancel = threading.Event()
    cancel.set()
    outcome = complete(engine, default_host(), req("hello"), cancel)
    assert outcome.status == "cancelled" and outcome.result is None


def test_ignored_document_never_reaches_the_model(engine: Engine, tmp_path: Path):
    (tmp_path / ".gitignore").write_text("*.txt\n")
    path = tmp_path / "a.txt"
    r = req("hello", uri=path.as_uri(), path=path, workspace_roots=[tmp_path])
    outcome = complete(engine, default_host(), r, threading.Event())
    assert outcome.status == "ignored" and outcome.prompt is None


def test_typing_reuses_the_prefix_cache(engine: Engine):
    base = "".join(f"line {i} of the notes\n" for i in range(30))
    host = default_host()
    complete(engine, host, req(base + "wor", uri="file:///w/reuse.txt"), threading.Event())
    outcome = complete(
        engine, host, req(base + "word", uri="file:///w/reuse.txt"), threading.Event()
    )
    assert outcome.result is not None
    assert outcome.result.reused_tokens >= outcome.result.prompt_tokens - 8


def test_suggestion_follows_the_buffers_line_endings():
    s = Suggestion("a\nb", 0)
    postprocess(PluginHost(), req("x\r\ny"), s)
    assert s.text == "a\r\nb"


def test_cli_complete_matches_the_pipeline(
    engine: Engine, tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = tmp_path / "notes.txt"
    path.write_text("first line\nsecond li\nthird\n")
    code = cli.main(
        [
            "complete",
            str(path),
            "--line",
            "2",
            "--col",
            "10",
            "--json",
            "--bundle",
            str(tiny_bundle),
        ]
    )
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    text = path.read_text()
    r = req(text, uri=path.resolve().as_uri(), path=path.resolve(), workspace_roots=[Path.cwd()])
    r.offset = len("first line\nsecond li")
    want = complete(engine, default_host(), r, threading.Event())
    assert want.suggestion is not None and want.suggestion.text
    assert answer["text"] == want.suggestion.text
    assert answer["range"] == {
        "start": {"line": 1, "character": 9},
        "end": {"line": 1, "character": 9},
    }


def test_cli_complete_without_a_model_says_how_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    code = cli.main(
        ["complete", str(path), "--line", "1", "--col", "3", "--bundle", str(tmp_path / "none")]
    )
    assert code == 1
    assert "jpilot model export" in capsys.readouterr().err
