"""The context plugin: FIM layout, budgets, stable window start, snippets, scrubbing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jpilot.model.bundle import load_bundle
from jpilot.model.tokenizer import Tokenizer
from jpilot.plugins import context
from jpilot.plugins.api import CompletionRequest, OpenDocument
from jpilot.plugins.settings import parse_settings


@pytest.fixture(scope="module")
def tok(tiny_bundle: Path) -> Tokenizer:
    return load_bundle(tiny_bundle).tokenizer


def req(
    text: str, offset: int | None = None, uri: str = "file:///w/a.py", **kw
) -> CompletionRequest:
    settings, _ = parse_settings(kw.pop("settings", None))
    offset = len(text) if offset is None else offset
    return CompletionRequest(uri, "python", text, offset, 1, settings, **kw)


def test_fim_layout_prefix_then_suffix(tok: Tokenizer):
    r = req("def f(x):\n    return x\n", offset=len("def f(x):\n    ret"))
    prompt = context.build_prompt(r, tok, 200)
    fim = tok.fim
    assert fim is not None and prompt.fim
    assert prompt.ids[0] == fim.prefix and prompt.ids[-1] == fim.middle
    split = prompt.ids.index(fim.suffix)
    # token healing moved the prefix's last token out of the ids and into `heal`
    assert prompt.heal and tok.decode(prompt.ids[1:split]) + prompt.heal.decode() == (
        "def f(x):\n    ret"
    )
    assert tok.decode(prompt.ids[split + 1 : -1]) == "urn x\n"


def test_spm_layout_suffix_then_prefix(tok: Tokenizer):
    assert tok.fim is not None
    spm = Tokenizer(tok.path, tok.eos_id, dataclasses.replace(tok.fim, order="spm"))
    r = req("def f(x):\n    return x\n", offset=len("def f(x):\n    ret"))
    prompt = context.build_prompt(r, spm, 200)
    fim = spm.fim
    assert fim is not None and prompt.fim
    assert prompt.ids[:2] == [fim.prefix, fim.suffix]
    split = prompt.ids.index(fim.middle)
    assert spm.decode(prompt.ids[2:split]) == "urn x\n"
    # the prompt ends with the (healed) prefix: the completion continues it directly
    assert spm.decode(prompt.ids[split + 1 :]) + prompt.heal.decode() == "def f(x):\n    ret"


def test_budget_is_respected_and_the_end_of_the_prefix_kept(tok: Tokenizer):
    text = "".join(f"value_{i} = compute({i})\n" for i in range(400))
    prompt = context.build_prompt(req(text, uri="file:///w/big.py"), tok, 120)
    assert len(prompt.ids) <= 120
    fim = tok.fim
    assert fim is not None
    body = tok.decode(prompt.ids[1 : prompt.ids.index(fim.suffix)]) + prompt.heal.decode()
    assert text.endswith(body) and body.endswith("value_399 = compute(399)\n")
    assert prompt.window_start > 0 and text[prompt.window_start - 1] == "\n"


def test_window_start_is_stable_while_typing(tok: Tokenizer):
    base = "".join(f"item_{i} = [{i}, {i + 1}]\n" for i in range(300))
    starts, prompts = set(), []
    for typed in ["r", "re", "res", "resu", "resul", "result", "result ="]:
        text = base + typed
        prompt = context.build_prompt(req(text, uri="file:///w/typing.py"), tok, 150)
        starts.add(prompt.window_start)
        prompts.append(prompt.ids)
    assert len(starts) == 1  # the same window start for every keystroke
    # consecutive prompts share all but their last few tokens (prefix reuse hits)
    fim = tok.fim
    assert fim is not None
    a, b = prompts[-2], prompts[-1]
    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    assert common >= a.index(fim.suffix) - 3


def test_one_huge_line_is_truncated_within_budget(tok: Tokenizer):
    text = "x = '" + "abcdefgh" * 200_000  # a single 1.6 MB line
    prompt = context.build_prompt(req(text, uri="file:///w/huge.py"), tok, 100)
    assert 0 < len(prompt.ids) <= 100
    assert prompt.window_start > len(text) - 100 * context.MAX_CHARS_PER_TOKEN


def test_snippets_from_open_documents_of_the_same_language(tok: Tokenizer, tmp_path: Path):
    (tmp_path / ".gitignore").write_text("hidden.py\n")
    others = [
        OpenDocument(
            "file:///w/util.py", "python", "def helper(path):\n    pass\n", Path("/w/util.py")
        ),
        OpenDocument("file:///w/notes.md", "markdown", "# never in a python prompt helper\n"),
        OpenDocument(
            (tmp_path / "hidden.py").as_uri(), "python", "helper = 1\n", tmp_path / "hidden.py"
        ),
    ]
    r = req(
        "import util\nx = util.helper(path)\n", open_documents=others, workspace_roots=[tmp_path]
    )
    text = context.snippets(r, 10_000)
    assert text == "# util.py\n# def helper(path):\n#     pass\n"
    prompt = context.build_prompt(r, tok, 200)
    assert prompt.snippet_tokens > 0
    assert "def helper" in tok.decode(prompt.ids)


def test_secrets_never_reach_the_prompt(tok: Tokenizer):
    secret = "ghp_" + "Z" * 36
    r = req(f"TOKEN = '{secret}'\nprint(TOKEN)\n", settings={"debug": {"logPrompts": True}})
    prompt = context.build_prompt(r, tok, 200)
    assert prompt.scrubbed == 1
    assert secret not in tok.decode(prompt.ids) and secret not in prompt.debug_text
    assert "<redacted>" in prompt.debug_text


def test_prompt_text_is_kept_only_when_debug_asks(tok: Tokenizer):
    assert context.build_prompt(req("x = 1\n"), tok, 50).debug_text == ""


def test_ignored_document_hook(tmp_path: Path):
    (tmp_path / ".jpilotignore").write_text("*.secret.py\n")
    path = tmp_path / "k.secret.py"
    r = req("x", uri=path.as_uri(), path=path, workspace_roots=[tmp_path])
    assert context.jpilot_ignore_document(r) is True
    ok = tmp_path / "k.py"
    assert context.jpilot_ignore_document(req("x", path=ok, workspace_roots=[tmp_path])) is None


def test_window_in_one_huge_line_is_stable_and_full(tok: Tokenizer):
    text = "x = '" + "abcdefghij" * 100_000
    starts, sizes = set(), []
    for typed in ["", "k", "kl", "klm"]:
        r = req(text + typed, uri="file:///w/huge-typing.py")
        prompt = context.build_prompt(r, tok, 200)
        starts.add(prompt.window_start)
        sizes.append(prompt.prefix_tokens)
    assert len(starts) == 1
    assert min(sizes) >= 100  # the window is filled, not emptied by the kept start
