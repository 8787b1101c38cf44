"""Every model path sees no secret and nothing of an ignored file (plugins/privacy.py).

A recording wrapper around the tiny real engine keeps every text handed to its tokenizer
and every id sequence it runs (decoded): hints, the syntax fix, the regenerate action,
the hover summary, the docstring and explain actions and the explain command must give
it no canary, and for an ignored file nothing at all.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from canaries import CANARIES, SOURCE, leaked

from jpilot.lsp.plugins import PluginHost
from jpilot.lsp.server import JpilotServer
from jpilot.model.engine import Engine
from jpilot.plugins import privacy
from jpilot.plugins.api import CompletionRequest, hookimpl
from jpilot.plugins.debug import plugin as debug
from jpilot.plugins.debug.surprisal import Hint
from jpilot.plugins.docs import plugin as docs
from jpilot.plugins.settings import parse_settings
from jpilot.plugins.text import line_col


class RecordingTokenizer:
    """A tokenizer that records every text it is given."""

    def __init__(self, inner: Any, texts: list[str]) -> None:
        self._inner, self._texts = inner, texts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def encode(self, text: str) -> list[int]:
        self._texts.append(text)
        return self._inner.encode(text)

    def encode_offsets(self, text: str) -> Any:
        self._texts.append(text)
        return self._inner.encode_offsets(text)

    def infill_prompt(self, prefix: str, suffix: str, budget: int) -> list[int]:
        self._texts += [prefix, suffix]
        return self._inner.infill_prompt(prefix, suffix, budget)


class Recorder:
    """An engine that records what reaches the model, then runs the real one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.texts: list[str] = []
        self.tokenizer = RecordingTokenizer(engine.tokenizer, self.texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def _ids(self, ids: Any) -> None:
        self.texts.append(self._engine.tokenizer.decode([int(i) for i in ids]))

    def generate(self, prompt: Any, config: Any, cancel: Any = None) -> Any:
        self._ids(prompt)
        return self._engine.generate(prompt, config, cancel=cancel)

    def score_detail(self, ids: Any, cancel: Any = None) -> Any:
        self._ids(ids)
        return self._engine.score_detail(ids, cancel)

    def score_variants(self, ids: Any, cuts: Any, cancel: Any = None) -> Any:
        self._ids(ids)
        for _cut, variants in cuts:
            for variant in variants:
                self._ids(variant)
        return self._engine.score_variants(ids, cuts, cancel)


@pytest.fixture(scope="module")
def engine(tiny_bundle: Path):
    """The tiny real engine."""
    eng = Engine(tiny_bundle)
    yield eng
    eng.close()


@pytest.fixture
def rec(engine: Engine) -> Recorder:
    """A fresh recorder around the tiny engine."""
    return Recorder(engine)


ALL_ON = {"docs": {"summary": True, "docstring": True, "explain": True},
          "hints": {"surprisal": True, "threshold": 0.0, "min_bits": 0.0}}  # fmt: skip


def make_request(path: Path, root: Path, text: str = SOURCE, at: str = "def connect") -> Any:
    """A request on `text` at file `path` in workspace `root`, every model feature on."""
    settings, errors = parse_settings(ALL_ON)
    assert errors == []
    offset = text.index(at) + 5 if at in text else 0
    return CompletionRequest(path.as_uri(), "python", text, offset, 7, settings, path=path,
                             workspace_roots=[root])  # fmt: skip


def line_of(text: str, needle: str) -> int:
    """Return the 0-based line holding `needle`."""
    return line_col(text, text.index(needle))[0]


def run_every_feature(request: CompletionRequest, rec: Recorder) -> dict[str, Any]:
    """Call every hook of the docs and debug plugins that can reach the model."""
    cancel = threading.Event()
    text = request.text
    return {
        "hints": debug.jpilot_diagnostics(request, rec, cancel),
        "hover": docs.jpilot_hover(request, rec, cancel),
        "actions": docs.jpilot_code_actions(request, 0, len(text), []),
        "docstring": docs.jpilot_resolve_action(
            request, {"action": "docstring", "line": line_of(text, "def connect")}, rec, cancel
        ),
        "explain": docs.jpilot_resolve_action(
            request, {"action": "explain", "first": 2, "last": 6}, rec, cancel
        ),
        "command": docs.jpilot_execute_command("jpilot.explain", request, [2, 6], rec, cancel),
        "regenerate": debug.jpilot_resolve_action(
            request, {"action": "regenerate", "line": line_of(text, "s = 0")}, rec, cancel
        ),
    }


def test_the_canaries_are_all_masked_and_the_masked_text_keeps_every_offset() -> None:
    masked = privacy.masked(SOURCE)
    assert len(masked) == len(SOURCE) and masked.count("\n") == SOURCE.count("\n")
    assert leaked([masked]) == []
    assert privacy.hides(SOURCE, masked, *map(SOURCE.index, ("GITHUB", "DB_PASSWORD")))
    assert not privacy.hides(SOURCE, masked, SOURCE.index("def total"), len(SOURCE))


@pytest.mark.parametrize(
    "feature", ["hints", "hover", "docstring", "explain", "command", "regenerate"]
)
def test_no_feature_gives_the_model_a_secret(rec: Recorder, tmp_path: Path, feature: str) -> None:
    request = make_request(tmp_path / "app.py", tmp_path)
    cancel = threading.Event()
    calls = {
        "hints": lambda: debug.jpilot_diagnostics(request, rec, cancel),
        "hover": lambda: docs.jpilot_hover(request, rec, cancel),
        "docstring": lambda: docs.jpilot_resolve_action(
            request, {"action": "docstring", "line": line_of(SOURCE, "def connect")}, rec, cancel
        ),
        "explain": lambda: docs.jpilot_resolve_action(
            request, {"action": "explain", "first": 2, "last": 6}, rec, cancel
        ),
        "command": lambda: docs.jpilot_execute_command(
            "jpilot.explain", request, [2, 6], rec, cancel
        ),
        "regenerate": lambda: debug.jpilot_resolve_action(
            request, {"action": "regenerate", "line": line_of(SOURCE, "s = 0")}, rec, cancel
        ),
    }
    calls[feature]()
    assert rec.texts, f"{feature} never reached the model: the test proves nothing"
    assert any("GITHUB_TOKEN = " in t for t in rec.texts)  # the secrets' lines, masked
    assert leaked(rec.texts) == []


def test_the_syntax_fix_sees_no_secret_and_never_rewrites_a_secret_line(
    rec: Recorder, tmp_path: Path
) -> None:
    broken = SOURCE + "\n\ndef broken(:\n    pass\n"
    request = make_request(tmp_path / "app.py", tmp_path, broken)
    debug.jpilot_diagnostics(request, rec, threading.Event())
    assert rec.texts and leaked(rec.texts) == []
    # the error is on a line holding a secret (and so is the line before): no model call
    on_secret = SOURCE.replace(f'"{CANARIES["password"]}"', f'"{CANARIES["password"]}" )')
    request = make_request(tmp_path / "app.py", tmp_path, on_secret)
    fresh = Recorder(rec._engine)
    found = debug.syntax_finding(on_secret, fresh, 1.0, None, privacy.model_text(request))
    assert found is not None and "fix" not in found.data and fresh.texts == []


def test_no_hint_is_published_on_a_line_holding_a_secret(
    rec: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_line, clean_line = line_of(SOURCE, "GITHUB_TOKEN"), line_of(SOURCE, "if v < 0")
    hints = []
    for line, needle in ((secret_line, "GITHUB_TOKEN"), (clean_line, "<")):
        start = SOURCE.index(needle, SOURCE.index(needle.split()[0]))
        hints.append(Hint(line, start, start + len(needle), 99.0, 9.0, needle, "x"))
    monkeypatch.setattr(debug, "find_hints", lambda *args, **kwargs: hints)
    request = make_request(tmp_path / "app.py", tmp_path)
    found = debug.jpilot_diagnostics(request, rec, threading.Event())
    assert [f.data.get("line") for f in found] == [clean_line]
    # nor is a line holding a secret regenerated
    fresh = Recorder(rec._engine)
    data = {"action": "regenerate", "line": secret_line}
    assert debug.jpilot_resolve_action(request, data, fresh, threading.Event()) == []
    assert fresh.texts == []


@pytest.mark.parametrize("name", ["build/generated.py", ".env", "keys/id_ed25519"])
def test_an_ignored_file_reaches_no_model_at_all(rec: Recorder, tmp_path: Path, name: str) -> None:
    (tmp_path / ".gitignore").write_text("build/\n")
    path = tmp_path / name
    answers = run_every_feature(make_request(path, tmp_path), rec)
    broken = make_request(path, tmp_path, SOURCE + "\ndef broken(:\n")
    syntax = debug.jpilot_diagnostics(broken, rec, threading.Event())
    assert rec.texts == []
    assert answers["hints"] == []
    assert [f.code for f in syntax] == [debug.SYNTAX] and "fix" not in syntax[0].data
    assert answers["hover"] is not None and docs.GENERATED not in answers["hover"]
    assert not answers["actions"]
    assert answers["docstring"] == [] and answers["explain"] == [] and answers["regenerate"] == []
    assert answers["command"]["comment"] == ""


def test_a_failing_ignore_hook_means_ignored_and_no_engine_for_any_model(tmp_path: Path) -> None:
    class Raises:
        @hookimpl
        def jpilot_ignore_document(self, request):
            raise RuntimeError("boom")

    class WrongType:
        @hookimpl
        def jpilot_ignore_document(self, request):
            return "no"

    class Keeps:
        @hookimpl
        def jpilot_ignore_document(self, request):
            return None

    request = make_request(tmp_path / "app.py", tmp_path)
    for plugin, ignored in ((Keeps(), False), (Raises(), True), (WrongType(), False)):
        host = PluginHost()
        assert host.register(plugin, "p")
        assert host.ignored(request) is ignored
        server = JpilotServer(host)
        local = object()  # a local engine: no `remote` attribute
        assert server.model_for(request, local) is (None if ignored else local)
    host = PluginHost()
    host.load_entry_points()  # the built-ins: context ignores .env
    server = JpilotServer(host)
    env = make_request(tmp_path / ".env", tmp_path)
    assert host.ignored(env) and server.model_for(env, object()) is None


@pytest.mark.parametrize("budget", range(60, 400, 20))
def test_a_prompt_window_that_starts_inside_a_secret_hides_all_of_it(
    engine: Engine, tmp_path: Path, budget: int
) -> None:
    """The window before the cursor starts on some line of a private-key block: a scrub
    of the window alone sees no BEGIN line and would let the body through."""
    from jpilot.plugins.context import build_prompt

    body = "".join(f"{CANARIES['private_key'][:-2]}{i:02d}\n" for i in range(30))
    text = (
        "".join(f"setting_{i} = {i}\n" for i in range(100))
        + 'KEY = """-----BEGIN RSA PRIVATE KEY-----\n'
        + body
        + '-----END RSA PRIVATE KEY-----"""\n'
        + "a = 1\nb = 2\n"
    )
    request = make_request(tmp_path / f"keys{budget}.py", tmp_path, text, at="no such text")
    request.offset = len(text)
    prompt = build_prompt(request, engine.tokenizer, budget)
    sent = engine.tokenizer.decode(prompt.ids)
    assert "b = 2" in sent and leaked([sent]) == []
