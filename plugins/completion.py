"""The `completion` plugin: plan a generation and turn the suggestion into LSP items.

- textDocument/inlineCompletion: one ghost-text item whose range is exactly the text it
  replaces (an empty range at the cursor for a pure insertion).
- textDocument/completion: one item whose textEdit replaces the word before the cursor
  with that word plus the suggestion, for clients without inline completion.
- Multi-line where the context calls for it: at the end of a line that is blank or opens
  a block; single-line elsewhere, or whenever the adaptive latency budget says so.
"""

from __future__ import annotations

import re

from lsprotocol import types

from jpilot.plugins.api import (
    CompletionRequest,
    GenerationPlan,
    Suggestion,
    hookimpl,
    word_before,
)

_OPENS_BLOCK = re.compile(r"[:{(\[]\s*$|=>\s*$|\bthen\s*$|\bdo\s*$")


def wants_multiline(request: CompletionRequest) -> bool:
    """Return True where a multi-line suggestion fits: nothing after the cursor on its
    line, and the line so far is blank or opens a block."""
    mode = request.settings.completion.multiline
    if request.single_line or mode == "never":
        return False
    if mode == "always":
        return True
    if request.line_suffix.strip():
        return False
    before = request.line_prefix
    return not before.strip() or bool(_OPENS_BLOCK.search(before))


@hookimpl
def jpilot_generation_plan(request: CompletionRequest) -> GenerationPlan:
    """Plan from the settings, capped by the adaptive budget."""
    cfg = request.settings.completion
    multiline = wants_multiline(request)
    max_tokens = cfg.max_tokens if request.max_tokens is None else request.max_tokens
    return GenerationPlan(
        max_tokens=max(1, max_tokens),
        multiline=multiline,
        stop=["\n\n\n"] if multiline else ["\n"],
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        branches=cfg.branches if request.branching else 1,
    )


@hookimpl
def jpilot_inline_items(
    request: CompletionRequest, suggestion: Suggestion, range: types.Range
) -> list[types.InlineCompletionItem]:
    """Return the suggestion as one ghost-text item."""
    return [types.InlineCompletionItem(insert_text=suggestion.text, range=range)]


@hookimpl
def jpilot_completion_items(
    request: CompletionRequest, suggestion: Suggestion, range: types.Range
) -> list[types.CompletionItem]:
    """Return the suggestion as one completion item that replaces the word being typed."""
    new_text = word_before(request.line_prefix) + suggestion.text
    label = new_text.split("\n", 1)[0].strip() or new_text.strip()
    return [
        types.CompletionItem(
            label=label[:80],
            kind=types.CompletionItemKind.Text,
            detail="jpilot",
            documentation=new_text if "\n" in new_text else None,
            filter_text=new_text,
            sort_text="0",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=range, new_text=new_text),
        )
    ]
