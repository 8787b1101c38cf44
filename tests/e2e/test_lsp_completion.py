"""pytest-lsp end to end: exact ghost text and ranges, with Neovim and VS Code capabilities."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER, expected
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from jpilot.model.engine import Engine

pytestmark = pytest.mark.asyncio

# An astral-plane character before the cursor: 2 UTF-16 units, 4 UTF-8 units, 1 UTF-32.
TEXT = "hello world\ns = '\U0001f600' + ba"
LINE = 1
UNITS = {"utf-8": 4, "utf-16": 2, "utf-32": 1}


def end_col(client: LanguageClient) -> int:
    """Return the cursor column at the end of TEXT in the negotiated position encoding."""
    return len("s = '") + UNITS[client.encoding] + len("' + ba")  # type: ignore[attr-defined]


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER), params=["neovim", "visual-studio-code"]
)
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest, tiny_bundle: Path):
    """A client with a real editor's capabilities, talking to `jpilot serve`."""
    params = types.InitializeParams(
        capabilities=client_capabilities(request.param),
        initialization_options={"model": {"path": str(tiny_bundle)}},
    )
    result = await lsp_client.initialize_session(params)
    lsp_client.encoding = result.capabilities.position_encoding or "utf-16"  # type: ignore
    yield
    await lsp_client.shutdown_session()


def open_doc(client: LanguageClient, uri: str, text: str, language: str = "plaintext") -> None:
    """Send didOpen."""
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, language, 1, text))
    )


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    """Build inlineCompletion params for an automatic trigger."""
    return types.InlineCompletionParams(
        context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
        text_document=types.TextDocumentIdentifier(uri),
        position=types.Position(line, character),
    )


async def test_capabilities_advertise_inline_completion(client: LanguageClient):
    """The server says it does inline completion, completion and the status command."""
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="jpilot.status")
    )
    assert result["model"]["state"] in ("loading", "ready")
    assert result["plugins"]["loaded"] == ["completion", "context", "debug", "docs", "postprocess"]


async def test_inline_completion_exact_text_and_range(client: LanguageClient, tiny_engine: Engine):
    """Ghost text equals the pipeline's answer, inserted at the cursor (UTF-16 range)."""
    uri = "file:///tmp/jpilot-e2e/notes.txt"
    open_doc(client, uri, TEXT)
    want = expected(tiny_engine, uri, TEXT, len(TEXT))
    assert want.suggestion is not None and want.suggestion.text  # a test that can fail
    result = await client.text_document_inline_completion_async(
        inline_params(uri, LINE, end_col(client))
    )
    assert isinstance(result, types.InlineCompletionList)
    assert [item.insert_text for item in result.items] == [want.suggestion.text]
    cursor = types.Position(LINE, end_col(client))
    assert result.items[0].range == types.Range(cursor, cursor)


async def test_completion_item_text_edit_range(client: LanguageClient, tiny_engine: Engine):
    """A completion item replaces the word before the cursor with word + suggestion."""
    uri = "file:///tmp/jpilot-e2e/items.txt"
    open_doc(client, uri, TEXT)
    want = expected(tiny_engine, uri, TEXT, len(TEXT))
    assert want.suggestion is not None and want.suggestion.text
    result = await client.text_document_completion_async(
        types.CompletionParams(
            types.TextDocumentIdentifier(uri), types.Position(LINE, end_col(client))
        )
    )
    assert isinstance(result, types.CompletionList)
    (item,) = result.items
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.new_text == "ba" + want.suggestion.text
    assert item.text_edit.range == types.Range(
        types.Position(LINE, end_col(client) - 2), types.Position(LINE, end_col(client))
    )


async def test_completion_after_incremental_edits(client: LanguageClient, tiny_engine: Engine):
    """Typing with incremental didChange: the answer is for the buffer as edited."""
    uri = "file:///tmp/jpilot-e2e/typed.txt"
    open_doc(client, uri, "x = 1\n")
    text = "x = 1\n"
    for version, ch in enumerate("y = x", start=2):
        at = types.Position(1, len(text.split("\n")[1]))
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [types.TextDocumentContentChangePartial(types.Range(at, at), ch)],
            )
        )
        text += ch
    want = expected(tiny_engine, uri, text, len(text))
    assert want.suggestion is not None and want.suggestion.text
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 5))
    assert [i.insert_text for i in result.items] == [want.suggestion.text]
    assert result.items[0].range == types.Range(types.Position(1, 5), types.Position(1, 5))


def units(client: LanguageClient, text: str) -> int:
    """Return the length of `text` in the negotiated position encoding."""
    encoding = client.encoding  # type: ignore[attr-defined]
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-8" if encoding == "utf-8" else "utf-16-le")) // (
        1 if encoding == "utf-8" else 2
    )


def insert(client: LanguageClient, uri: str, version: int, at: types.Position, text: str) -> None:
    """Send an incremental didChange that inserts `text` at `at`."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangePartial(types.Range(at, at), text)],
        )
    )


async def test_typing_the_suggestion_keeps_showing_its_rest(
    client: LanguageClient, tiny_engine: Engine
):
    """Typed-through characters of the ghost text leave its rest, with no model run."""
    uri = "file:///tmp/jpilot-e2e/through.txt"
    open_doc(client, uri, TEXT)
    cursor = types.Position(LINE, end_col(client))
    first = (
        await client.text_document_inline_completion_async(
            inline_params(uri, cursor.line, cursor.character)
        )
    ).items
    shown = first[0].insert_text
    assert isinstance(shown, str) and len(shown) >= 3
    insert(client, uri, 2, cursor, shown[:2])  # the user types the first two characters
    after = types.Position(LINE, cursor.character + units(client, shown[:2]))
    second = await client.text_document_inline_completion_async(
        inline_params(uri, after.line, after.character)
    )
    assert [i.insert_text for i in second.items] == [shown[2:]]
    assert second.items[0].range == types.Range(after, after)
    status = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="jpilot.status")
    )
    assert status["stats"]["typed_through"] == 1 and status["stats"]["generated"] == 1

    other = "Q" if shown[2] != "Q" else "Z"  # a character the suggestion does not have next
    insert(client, uri, 3, after, other)
    text = TEXT + shown[:2] + other
    want = expected(tiny_engine, uri, text, len(text))
    assert want.suggestion is not None
    moved = types.Position(LINE, after.character + 1)
    third = await client.text_document_inline_completion_async(
        inline_params(uri, moved.line, moved.character)
    )
    assert [i.insert_text for i in third.items] == [want.suggestion.text]  # the model again


async def test_never_opened_uri_is_empty_and_reads_nothing(client: LanguageClient, tmp_path: Path):
    """A URI the client never opened gets no suggestion, even if the file exists."""
    path = tmp_path / "on_disk.txt"
    path.write_text("def f():\n    return 1\n")
    result = await client.text_document_inline_completion_async(inline_params(path.as_uri(), 1, 4))
    assert len(result.items) == 0


async def test_edit_during_computation_never_uses_old_text(
    client: LanguageClient, tiny_engine: Engine
):
    """An edit right behind the request: -32801, or an answer for the new text."""
    uri = "file:///tmp/jpilot-e2e/race.txt"
    open_doc(client, uri, TEXT)
    task = asyncio.ensure_future(
        client.text_document_inline_completion_async(inline_params(uri, LINE, end_col(client)))
    )
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            [types.TextDocumentContentChangeWholeDocument("zzz")],
        )
    )
    try:
        result = await task
    except Exception as exc:  # pygls raises the error response as an exception
        assert getattr(exc, "code", None) == -32801, exc
        print("race: ContentModified")
        return
    print("race: answered on the new text")
    # Answered on the new text "zzz": the cursor clamps to (0, 3) and so must the range.
    want = expected(tiny_engine, uri, "zzz", 3)
    texts = [i.insert_text for i in result.items]
    assert texts == ([want.suggestion.text] if want.suggestion else [])
    for item in result.items:
        assert item.range == types.Range(types.Position(0, 3), types.Position(0, 3))


async def test_model_load_is_reported_with_progress(client: LanguageClient):
    """$/progress: begin "loading the model", then end "model ready"."""
    for _ in range(200):
        reports = [r for token, rs in client.progress_reports.items() for r in rs]
        if any(isinstance(r, types.WorkDoneProgressEnd) for r in reports):
            break
        await asyncio.sleep(0.05)
    assert [type(r).__name__ for r in reports] == ["WorkDoneProgressBegin", "WorkDoneProgressEnd"]
    assert reports[0].title == "jpilot: loading the model"
    assert reports[1].message == "model ready"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def configured(lsp_client: LanguageClient, tiny_bundle: Path):
    """A client whose workspace/configuration says maxTokens 3 (initializationOptions: 48)."""
    lsp_client.set_configuration({"completion": {"maxTokens": 3}}, section="jpilot")
    params = types.InitializeParams(
        capabilities=client_capabilities("neovim"),
        initialization_options={"model": {"path": str(tiny_bundle)}},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def test_workspace_configuration_overrides_initialization_options(
    configured: LanguageClient, tiny_engine: Engine
):
    uri = "file:///tmp/jpilot-e2e/configured.txt"
    open_doc(configured, uri, "hello wor")
    want = expected(tiny_engine, uri, "hello wor", 9, options={"completion": {"maxTokens": 3}})
    assert want.suggestion is not None and want.result is not None
    assert len(want.result.tokens) == 3
    for _ in range(100):  # the configuration arrives just after initialized
        result = await configured.text_document_inline_completion_async(inline_params(uri, 0, 9))
        if [i.insert_text for i in result.items] == [want.suggestion.text]:
            break
        await asyncio.sleep(0.05)
    assert [i.insert_text for i in result.items] == [want.suggestion.text]
