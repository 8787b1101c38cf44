"""pytest-lsp end to end: hover, docstring and explain actions, diagnostics and quick fixes.

Expected answers come from running the same plugin functions in the test process on the
same text with the same tiny model (greedy, deterministic), so the tests assert the exact
Markdown, edits, ranges and messages the client receives.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from jpilot.model.engine import Engine
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.debug import plugin as debug
from jpilot.plugins.docs import generate
from jpilot.plugins.docs.plugin import jpilot_hover
from jpilot.plugins.docs.symbols import enclosing_definition
from jpilot.plugins.settings import parse_settings

pytestmark = pytest.mark.asyncio

SOURCE = '''import math


def area(radius: float) -> float:
    return math.pi * radius**2


def perimeter(radius):
    """Length of the circle."""
    return 2 * math.pi * radius
'''
BROKEN = "def f(x):\n    if x > 1\n        return x\n    return 0\n"
# The model-written features on explicitly: the server's answers are compared with the
# plugins' own on the same tiny model, whatever its recorded abilities.
OPTIONS = {
    "hints": {"debounceMs": 0, "threshold": 0.5, "minBits": 0.5, "surprisal": True},
    "docs": {"summary": True, "docstring": True, "explain": True},
}


def request_for(uri: str, text: str, offset: int = 0, options: dict | None = None):
    """Build the CompletionRequest the server would build for this buffer."""
    settings, errors = parse_settings(options or OPTIONS)
    assert not errors
    return CompletionRequest(uri, "python", text, offset, 1, settings)


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER), params=["neovim", "visual-studio-code"]
)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest, tiny_bundle: Path):
    """A client with a real editor's capabilities; hints scored at once, with low bars."""
    params = types.InitializeParams(
        capabilities=client_capabilities(request.param),
        initialization_options={"model": {"path": str(tiny_bundle)}, **OPTIONS},
    )
    await lsp_client.initialize_session(params)
    # wait for the model, so hovers include the generated summary deterministically
    await lsp_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="jpilot.status")
    )
    yield
    await lsp_client.shutdown_session()


async def open_python(client: LanguageClient, uri: str, text: str) -> list[types.Diagnostic]:
    """Open a Python document and return the diagnostics published for it."""
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text))
    )
    for _ in range(50):
        if uri in client.diagnostics:
            return list(client.diagnostics[uri])
        await asyncio.wait_for(
            client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 30
        )
    raise AssertionError(f"no diagnostics for {uri}")


async def ready(client: LanguageClient) -> None:
    """Wait until the server's model is loaded."""
    for _ in range(300):
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="jpilot.status")
        )
        if status["model"]["state"] != "loading":
            assert status["model"]["state"] == "ready"
            assert "debug" in status["plugins"]["loaded"] and "docs" in status["plugins"]["loaded"]
            return
        await asyncio.sleep(0.05)


async def test_hover_shows_signature_docstring_and_summary(
    client: LanguageClient, tiny_engine: Engine
):
    uri = "file:///tmp/jpilot-e2e/shapes.py"
    await open_python(client, uri, SOURCE)
    await ready(client)
    pos = types.Position(3, 6)  # on "area"
    hover = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), pos)
    )
    offset = SOURCE.index("area(")
    want = jpilot_hover(request_for(uri, SOURCE, offset + 2), tiny_engine, None)
    assert want is not None and want.startswith("```python\ndef area(radius: float) -> float\n```")
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.kind == types.MarkupKind.Markdown
    assert hover.contents.value == want
    documented = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(7, 6))
    )
    assert documented is not None and "Length of the circle." in documented.contents.value  # type: ignore[union-attr]
    nothing = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(1, 0))
    )
    assert nothing is None


async def test_generate_docstring_action_resolves_to_the_exact_insertion(
    client: LanguageClient, tiny_engine: Engine
):
    uri = "file:///tmp/jpilot-e2e/doc_action.py"
    await open_python(client, uri, SOURCE)
    await ready(client)
    here = types.Range(types.Position(4, 4), types.Position(4, 4))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            types.TextDocumentIdentifier(uri), here, types.CodeActionContext(diagnostics=[])
        )
    )
    titles = [a.title for a in actions if isinstance(a, types.CodeAction)]
    assert titles == ["Generate docstring for area"]  # no selection: no "Explain"
    (action,) = actions
    assert isinstance(action, types.CodeAction) and action.edit is None  # computed lazily
    resolved = await client.code_action_resolve_async(action)
    node = enclosing_definition(SOURCE, 4)
    want = generate.docstring(tiny_engine, SOURCE, node)  # type: ignore[arg-type]
    assert resolved.edit is not None and resolved.edit.document_changes
    change = resolved.edit.document_changes[0]
    assert isinstance(change, types.TextDocumentEdit) and change.text_document.version == 1
    at = types.Range(types.Position(4, 0), types.Position(4, 0))
    expected_edits = [types.TextEdit(at, want.text)] if want else []
    assert list(change.edits) == expected_edits


async def test_explain_command_returns_the_models_comment(
    client: LanguageClient, tiny_engine: Engine
):
    uri = "file:///tmp/jpilot-e2e/explain.py"
    await open_python(client, uri, SOURCE)
    await ready(client)
    selection = {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}}
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="jpilot.explain", arguments=[uri, selection])
    )
    want = generate.explain(tiny_engine, SOURCE, 3, 4)
    assert result["line"] == 3
    assert result["comment"] == (want.text if want else "")


async def test_syntax_error_and_surprisal_diagnostics(client: LanguageClient, tiny_engine: Engine):
    uri = "file:///tmp/jpilot-e2e/broken.py"
    got = await open_python(client, uri, BROKEN)
    want = debug.jpilot_diagnostics(request_for(uri, BROKEN), tiny_engine, threading.Event())
    want.sort(key=lambda f: -f.score)
    assert [d.message for d in got] == [f.message for f in want]
    syntax = got[0]
    assert (syntax.code, syntax.source) == ("syntax-error", "jpilot")
    assert syntax.severity == types.DiagnosticSeverity.Error
    assert syntax.range.start.line == 1 and syntax.message.startswith("SyntaxError:")
    for diag, finding in zip(got, want, strict=True):
        line = BROKEN.count("\n", 0, finding.start)
        assert diag.range.start == types.Position(line, finding.start - _line_start(line))
        assert diag.code == finding.code
    hints = [d for d in got if d.code == "surprising-line"]
    scores = [d.data["score"] for d in hints]  # type: ignore[index]
    assert scores == sorted(scores, reverse=True)  # most surprising first


async def test_quick_fix_regenerates_a_hinted_line(client: LanguageClient, tiny_engine: Engine):
    uri = "file:///tmp/jpilot-e2e/hinted.py"
    got = await open_python(client, uri, SOURCE)
    hints = [d for d in got if d.code == "surprising-line"]
    if not hints:
        pytest.skip("the tiny random model found no line surprising enough")
    hint = hints[0]
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            types.TextDocumentIdentifier(uri), hint.range, types.CodeActionContext([hint])
        )
    )
    fix = next(a for a in actions if a.title == "Replace with the model's suggestion")
    assert isinstance(fix, types.CodeAction) and fix.kind == types.CodeActionKind.QuickFix
    resolved = await client.code_action_resolve_async(fix)
    line = hint.data["line"]  # type: ignore[index]
    want = debug.regenerate_line(tiny_engine, SOURCE, line, 3.0, branches=3)  # the default
    change = resolved.edit.document_changes[0]  # type: ignore[union-attr,index]
    if want is None:
        assert list(change.edits) == []  # type: ignore[union-attr]
    else:
        (edit,) = change.edits  # type: ignore[union-attr]
        assert edit.new_text == want.text and edit.range.start.line == line


def _line_start(line: int) -> int:
    """Offset where a line of BROKEN starts."""
    return sum(len(x) + 1 for x in BROKEN.split("\n")[:line])
