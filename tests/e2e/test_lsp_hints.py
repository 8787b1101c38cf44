"""pytest-lsp end to end, with the embedded default model: a debugging hint appears on a
bug injected into a real fixture file, its quick fix repairs it, and the hint goes away.

The default model is the one users get, so these assertions hold for the committed
bundle (model/default); a retrained default that misses the bug fails here, on purpose.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.asyncio

CLEAN = (Path(__file__).parent / "fixtures" / "helpers.py").read_text()
WRITTEN, SLIP = "            count += 1\n", "            count += 2\n"  # an off-by-one slip
BUGGY = CLEAN.replace(WRITTEN, SLIP)
URI = "file:///tmp/jpilot-e2e/helpers.py"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=["neovim"])
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest):
    """An editor with no model configured (so: the default model) and default hint settings."""
    params = types.InitializeParams(
        capabilities=client_capabilities(request.param),
        # hints on explicitly: the embedded model does not pass their threshold ("auto")
        initialization_options={"hints": {"debounceMs": 0, "surprisal": True}},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def published(client: LanguageClient, version: int) -> list[types.Diagnostic]:
    """Wait for the diagnostics of URI at `version` and return the hints among them."""
    for _ in range(100):
        params = await asyncio.wait_for(
            client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 60
        )
        if params.uri == URI and params.version == version:
            return [d for d in params.diagnostics if d.code == "surprising-line"]
    raise AssertionError(f"no diagnostics for version {version}")


async def test_a_hint_on_an_injected_bug_is_fixed_by_its_quick_fix_and_goes_away(
    client: LanguageClient,
):
    assert BUGGY != CLEAN
    waiting = asyncio.ensure_future(published(client, 1))
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(URI, "python", 1, BUGGY))
    )
    hints = await waiting
    line = BUGGY.splitlines().index(SLIP.rstrip("\n"))
    col = SLIP.index("2")
    where = types.Range(types.Position(line, col), types.Position(line, col + 1))
    assert [(h.range, h.data["expected"]) for h in hints] == [(where, "1")]  # type: ignore[index]
    (hint,) = hints
    assert hint.message.startswith("Possible slip: did you mean `1`? Given the code before and")
    assert hint.severity == types.DiagnosticSeverity.Hint and hint.source == "jpilot"

    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            types.TextDocumentIdentifier(URI), hint.range, types.CodeActionContext([hint])
        )
    )
    fixes = [a for a in actions if isinstance(a, types.CodeAction) and a.kind == "quickfix"]
    assert [a.title for a in fixes] == [
        "Replace `2` with `1`",
        "Replace with the model's suggestion",
    ]
    fix = fixes[0]
    assert fix.is_preferred and fix.edit is not None
    (change,) = fix.edit.document_changes  # type: ignore[misc]
    assert isinstance(change, types.TextDocumentEdit) and change.text_document.version == 1
    assert list(change.edits) == [types.TextEdit(where, "1")]

    # the editor applies the fix and saves: the hint goes away
    fixed = BUGGY.splitlines(keepends=True)
    fixed[line] = fixed[line][:col] + "1" + fixed[line][col + 1 :]
    assert "".join(fixed) == CLEAN
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=URI),
            [types.TextDocumentContentChangeWholeDocument(CLEAN)],
        )
    )
    waiting = asyncio.ensure_future(published(client, 2))
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(URI))
    )
    assert await waiting == []
