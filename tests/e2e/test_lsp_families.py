"""pytest-lsp end to end: ghost text from a gpt_bigcode (StarCoder-family) bundle, in the
middle of a document, so the prompt is fill-in-the-middle with StarCoder's tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER, expected
from family_models import make_family
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from jpilot.model.engine import Engine
from jpilot.model.export import export_bundle

pytestmark = pytest.mark.asyncio

BEFORE = "def area(w, h):\n    return "
AFTER = "\n\nprint(area(2, 3))\n"
TEXT = BEFORE + AFTER
CURSOR = types.Position(1, len("    return "))


@pytest.fixture(scope="module")
def starcoder_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random gpt_bigcode (multi-query) exported to an fp32 bundle."""
    root = tmp_path_factory.mktemp("starcoder")
    return export_bundle(make_family(root / "ckpt", "gpt_bigcode"), root / "bundle")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, starcoder_bundle: Path):
    """Neovim's capabilities, `jpilot serve` on the gpt_bigcode bundle."""
    params = types.InitializeParams(
        capabilities=client_capabilities("neovim"),
        initialization_options={"model": {"path": str(starcoder_bundle)}},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def test_ghost_text_from_a_fim_prompt(client: LanguageClient, starcoder_bundle: Path):
    # plaintext: random weights write no Python that the parse check would keep
    uri = "file:///area.txt"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "plaintext", 1, TEXT))
    )
    engine = Engine(str(starcoder_bundle))
    want = expected(engine, uri, TEXT, len(BEFORE))
    fim = engine.tokenizer.fim
    assert fim is not None and want.prompt is not None and want.prompt.fim
    assert want.prompt.suffix_tokens > 0  # the text after the cursor is in the prompt
    assert want.prompt.ids[0] == engine.tokenizer.token_to_id("<fim_prefix>")
    assert want.prompt.ids[-1] == engine.tokenizer.token_to_id("<fim_middle>")  # PSM
    assert want.suggestion is not None and want.suggestion.text.strip()
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Invoked),
            text_document=types.TextDocumentIdentifier(uri),
            position=CURSOR,
        )
    )
    assert isinstance(result, types.InlineCompletionList)
    assert [item.insert_text for item in result.items] == [want.suggestion.text]
    assert result.items[0].range == types.Range(CURSOR, CURSOR)
