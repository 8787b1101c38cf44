"""completion.minConfidence end to end: a suggestion the model is less sure of is not shown."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER, expected
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from jpilot.model.engine import Engine

pytestmark = pytest.mark.asyncio

URI = "file:///tmp/jpilot-e2e/gate.txt"
TEXT = "hello world\ns = 'a' + ba"  # plain text: the tiny random model's output is no Python


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, tiny_bundle: Path):
    params = types.InitializeParams(
        capabilities=client_capabilities("neovim"),
        initialization_options={"model": {"path": str(tiny_bundle)}},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def ghost_text(client: LanguageClient, gate: float) -> list[str]:
    """Set completion.minConfidence, then ask for ghost text at the end of TEXT."""
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"jpilot": {"completion": {"minConfidence": gate}}}
        )
    )
    lines = TEXT.split("\n")
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Invoked),
            text_document=types.TextDocumentIdentifier(URI),
            position=types.Position(len(lines) - 1, len(lines[-1])),
        )
    )
    return [item.insert_text for item in result.items] if result else []  # type: ignore[union-attr]


async def test_min_confidence_hides_exactly_the_less_sure_suggestions(
    client: LanguageClient, tiny_engine: Engine
):
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(URI, "plaintext", 1, TEXT))
    )
    want = expected(tiny_engine, URI, TEXT, len(TEXT))
    assert want.suggestion is not None and want.suggestion.text
    sure = want.suggestion.confidence
    assert sure is not None and 0 < sure < 1 and math.isfinite(sure)
    assert await ghost_text(client, min(1.0, sure * 1.01)) == []  # just above: hidden
    assert await ghost_text(client, sure * 0.99) == [want.suggestion.text]  # just below: shown
