"""pytest-lsp end to end: `jpilot model pull bigcode/tiny_starcoder_py` (offline, from a
hub cache holding a small random gpt_bigcode under that name), then ghost text from the
bundle in the middle of a document: the prompt is fill-in-the-middle, StarCoder's tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from conftest import SERVER, expected
from family_models import make_family
from hub_cache import add_repo
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from jpilot.model.engine import Engine

pytestmark = pytest.mark.asyncio

BEFORE = "def area(w, h):\n    return "
AFTER = "\n\nprint(area(2, 3))\n"
TEXT = BEFORE + AFTER
CURSOR = types.Position(1, len("    return "))


REPO = "bigcode/tiny_starcoder_py"


@pytest.fixture(scope="module")
def starcoder_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random gpt_bigcode (multi-query) pulled by the CLI with HF_HUB_OFFLINE=1."""
    root = tmp_path_factory.mktemp("starcoder")
    add_repo(root / "hub", REPO, make_family(root / "ckpt", "gpt_bigcode"), "5" * 40)
    env = {**os.environ, "HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1",
           "JPILOT_MODELS_DIR": str(root / "models"), "HF_HUB_DISABLE_TELEMETRY": "1"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "jpilot.lsp.cli", "model", "pull", REPO, "--dtype", "fp32",
         "--out", str(root / "bundle")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return root / "bundle"


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
