"""pytest-lsp end to end, with the embedded default model and default settings: none of the
model-written features it was measured too weak for reaches the user.

The committed bundle (model/default) records its measured abilities, which pass no
threshold (docs/BENCHMARKS.md, "Measured ability"): hover shows the signature and the real
docstring only, the Explain and Generate-docstring actions are not offered, the explain
command answers one line saying what the model lacks, only syntax errors are published as
diagnostics, and jpilot.status says which features are on.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from conftest import SERVER
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from jpilot.model.abilities import PULL_HINT

pytestmark = pytest.mark.asyncio

SOURCE = '''import math


def area(radius: float) -> float:
    total = math.pi * radius**2
    return total


def perimeter(radius):
    """Length of the circle."""
    if radius < 0:
        return 0
    return 2 * math.pi * radius
'''
URI = "file:///tmp/jpilot-e2e/gated.py"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), params=["neovim"])
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest):
    """An editor with no model configured (the embedded default) and default settings."""
    params = types.InitializeParams(
        capabilities=client_capabilities(request.param),
        initialization_options={"hints": {"debounceMs": 0}},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def ready(client: LanguageClient) -> dict:
    """Wait until the model is loaded; return the status."""
    for _ in range(600):
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="jpilot.status")
        )
        if status["model"]["state"] != "loading":
            assert status["model"]["state"] == "ready"
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the model did not load")


async def test_the_embedded_model_shows_no_model_written_text(client: LanguageClient):
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(URI, "python", 1, SOURCE))
    )
    status = await ready(client)
    assert status["model"]["features"] == {"summary": False, "docstring": False,
                                           "explain": False, "hints": False}  # fmt: skip
    doc = types.TextDocumentIdentifier(URI)
    hover = await client.text_document_hover_async(types.HoverParams(doc, types.Position(3, 6)))
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.value == "```python\ndef area(radius: float) -> float\n```"
    documented = await client.text_document_hover_async(
        types.HoverParams(doc, types.Position(8, 6))
    )
    assert documented is not None and isinstance(documented.contents, types.MarkupContent)
    assert (
        documented.contents.value
        == "```python\ndef perimeter(radius)\n```\n\nLength of the circle."
    )
    selection = types.Range(types.Position(4, 0), types.Position(6, 0))
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(doc, selection, types.CodeActionContext(diagnostics=[]))
    )
    assert not actions  # no "Generate docstring for area", no "Explain selection"
    explained = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="jpilot.explain",
            arguments=[URI, {"start": {"line": 4, "character": 0},
                             "end": {"line": 6, "character": 0}}],
        )
    )  # fmt: skip
    assert explained["comment"] == ""
    assert "\n" not in explained["explanation"] and PULL_HINT in explained["explanation"]
    assert "too weak at explaining code" in explained["explanation"]
    for _ in range(600):  # diagnostics of a clean file: published, and empty (no hints)
        if URI in client.diagnostics:
            break
        await asyncio.sleep(0.05)
    assert list(client.diagnostics.get(URI, [None])) == []
