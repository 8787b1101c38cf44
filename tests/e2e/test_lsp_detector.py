"""pytest-lsp end to end, with a bundle that has a trained bug detector (a tiny one, trained
for seconds on a fixture, tests/tiny_detector.py): its hint appears on the bug's line and
says what it would write instead, its quick fix applies that repair, the hint then goes
away, and a clean file gets no hint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from tiny_detector import BUG_LINE, BUGGY, CLEAN

pytestmark = pytest.mark.asyncio
URI = "file:///tmp/jpilot-e2e/totals.py"
CLEAN_URI = "file:///tmp/jpilot-e2e/clean_totals.py"


@pytest.fixture
def detector_bundle(tiny_detector_bundle: Path) -> Path:
    return tiny_detector_bundle


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=["neovim"])
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest, detector_bundle: Path):
    """An editor using the detector bundle, default hint settings but no debounce."""
    params = types.InitializeParams(
        capabilities=client_capabilities(request.param),
        initialization_options={"model": {"path": str(detector_bundle)},
                                "hints": {"debounceMs": 0}},
    )  # fmt: skip
    await lsp_client.initialize_session(params)
    for _ in range(600):  # diagnostics made before the model is loaded have no hints
        status = await lsp_client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="jpilot.status")
        )
        if status["model"]["state"] != "loading":
            assert status["model"]["state"] == "ready" and status["model"]["features"]["hints"]
            break
        await asyncio.sleep(0.05)
    yield
    await lsp_client.shutdown_session()


async def published(client: LanguageClient, uri: str, version: int) -> list[types.Diagnostic]:
    """Wait for the diagnostics of `uri` at `version`; return all of them."""
    for _ in range(100):
        params = await asyncio.wait_for(
            client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 60
        )
        if params.uri == uri and params.version == version:
            return list(params.diagnostics)
    raise AssertionError(f"no diagnostics for version {version}")


async def test_the_detector_hint_is_on_the_bug_its_fix_repairs_it_and_it_goes_away(
    client: LanguageClient,
):
    waiting = asyncio.ensure_future(published(client, URI, 1))
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(URI, "python", 1, BUGGY))
    )
    hints = await waiting
    col = BUGGY.splitlines()[BUG_LINE].index(" or ") + 1
    where = types.Range(types.Position(BUG_LINE, col), types.Position(BUG_LINE, col + 2))
    assert [(h.range, h.code, h.source) for h in hints] == [(where, "likely-bug", "jpilot")]
    (hint,) = hints
    assert hint.message.startswith(
        "Possible bug: `or` here looks wrong; jpilot's bug detector would write `and` ("
    )
    assert hint.data["fix"]["text"] == "and" and hint.data["kind"] == "boolean"  # type: ignore[index]

    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            types.TextDocumentIdentifier(URI), hint.range, types.CodeActionContext([hint])
        )
    )
    fixes = [a for a in actions if isinstance(a, types.CodeAction) and a.kind == "quickfix"]
    assert [a.title for a in fixes] == ["Replace `or` with `and`"]
    assert fixes[0].is_preferred and fixes[0].edit is not None
    (change,) = fixes[0].edit.document_changes  # type: ignore[misc]
    assert isinstance(change, types.TextDocumentEdit) and change.text_document.version == 1
    assert list(change.edits) == [types.TextEdit(where, "and")]

    # the editor applies the fix and saves: the file is the clean one, and the hint goes away
    lines = BUGGY.splitlines(keepends=True)
    lines[BUG_LINE] = lines[BUG_LINE][:col] + "and" + lines[BUG_LINE][col + 2 :]
    assert "".join(lines) == CLEAN
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=URI),
            [types.TextDocumentContentChangeWholeDocument(CLEAN)],
        )
    )
    waiting = asyncio.ensure_future(published(client, URI, 2))
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(URI))
    )
    assert await waiting == []


async def test_a_clean_file_gets_no_hint(client: LanguageClient):
    waiting = asyncio.ensure_future(published(client, CLEAN_URI, 1))
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(CLEAN_URI, "python", 1, CLEAN))
    )
    assert await waiting == []
