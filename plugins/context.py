"""The `context` plugin: build a token-budgeted prompt from the buffer and open documents.

- Prefix window: it starts on a line boundary, and the start is kept while it still
  fits; a new start leaves a quarter of the budget free. So consecutive prompts share
  their beginning and the engine's prefix reuse hits while the user types.
- FIM: with FIM tokens in the bundle the prompt holds the prefix P and suffix S in the
  order the model learned (`Tokenizer.fim_prompt`: PSM `<fim_prefix> P <fim_suffix> S
  <fim_middle>` or SPM `<fim_prefix> <fim_suffix> S <fim_middle> P`), with a bounded share
  of the budget for the suffix.
- Snippets: the windows of other open documents of the same language (and, with
  `context.workspaceSnippets`, of the workspace's files) most similar to the code before
  the cursor (`retrieval.py`); ignored files are skipped.
- Every piece is scrubbed of secrets before tokenization, and ignored files (by
  `.gitignore` / `.jpilotignore`) never reach a prompt. Secrets are found around each
  window, not just inside it (`privacy.redact`), so a window that starts or ends inside
  a secret (a private-key block) hides all of it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from jpilot.plugins import ignore
from jpilot.plugins.api import CompletionRequest, Prompt, hookimpl
from jpilot.plugins.privacy import redact, region_spans
from jpilot.plugins.retrieval import snippets
from jpilot.plugins.secrets import scrub

if TYPE_CHECKING:
    from jpilot.model.tokenizer import Tokenizer

SLACK = 0.75  # a new window fills this share of the budget, leaving room to type
MAX_CHARS_PER_TOKEN = 16  # text longer than budget * this never fits; not even tokenized
SNIPPET_CHARS_PER_TOKEN = 4  # snippets are chosen by characters, about this many a token

_windows: dict[str, int] = {}  # uri -> last window start, kept while it still fits
MAX_WINDOWS = 256  # documents whose window start is remembered
_lock = threading.Lock()


@hookimpl
def jpilot_ignore_document(request: CompletionRequest) -> bool | None:
    """Ignore files matched by .gitignore/.jpilotignore, and secrets files."""
    if request.path is not None and ignore.is_ignored(request.path, request.workspace_roots):
        return True
    return None


@hookimpl
def jpilot_build_prompt(
    request: CompletionRequest, tokenizer: Tokenizer, budget: int
) -> Prompt | None:
    """Build the FIM (or prefix-only) prompt within `budget` tokens."""
    return build_prompt(request, tokenizer, budget)


def build_prompt(request: CompletionRequest, tokenizer: Tokenizer, budget: int) -> Prompt:
    """Return the prompt for `request`: snippets, prefix window and (FIM) suffix."""
    cfg = request.settings.context
    fim = tokenizer.fim
    budget = max(1, budget - (3 if fim else 0))
    scrubbed = 0
    suffix_ids: list[int] = []
    if fim is not None and cfg.suffix_tokens > 0:
        suffix_budget = min(cfg.suffix_tokens, budget // 4)
        end = request.offset + len(_head_lines(request.suffix, suffix_budget * MAX_CHARS_PER_TOKEN))
        found = region_spans(request.text, request.offset, end)
        text, n = redact(request.text, request.offset, end, found)
        suffix_ids, scrubbed = tokenizer.encode(text)[:suffix_budget], scrubbed + n
    snippet_ids: list[int] = []
    if cfg.snippets and cfg.snippet_tokens > 0:
        snippet_budget = min(cfg.snippet_tokens, budget // 4)
        text, n = scrub(snippets(request, snippet_budget * SNIPPET_CHARS_PER_TOKEN))
        # the best snippet is last, next to the code: cut from the front
        snippet_ids = tokenizer.encode(text)[-snippet_budget:] if text else []
        scrubbed += n
    prefix_budget = max(1, budget - len(suffix_ids) - len(snippet_ids))
    start, prefix_ids, n = prefix_window(request, tokenizer, prefix_budget)
    scrubbed += n
    prefix_ids, heal = tokenizer.healer.split(prefix_ids)  # let the completion start mid-token
    if fim is not None:
        ids = tokenizer.fim_prompt([*snippet_ids, *prefix_ids], suffix_ids)
    else:
        ids = [*snippet_ids, *prefix_ids]
        if not ids and tokenizer.eos_id is not None:
            ids = [tokenizer.eos_id]  # an empty buffer: start from "beginning of text"
    debug = ""
    if request.settings.debug.log_prompts:
        debug = tokenizer.decode(ids)
    return Prompt(
        ids=ids,
        fim=fim is not None,
        prefix_tokens=len(prefix_ids),
        suffix_tokens=len(suffix_ids),
        snippet_tokens=len(snippet_ids),
        window_start=start,
        scrubbed=scrubbed,
        debug_text=debug,
        heal=heal,
    )


def prefix_window(
    request: CompletionRequest, tokenizer: Tokenizer, budget: int
) -> tuple[int, list[int], int]:
    """Return the window start offset, the prefix tokens from there, and secrets scrubbed.

    The start of the last window for this document is kept while the prefix from there
    still fits. When it no longer does, the window jumps to the earliest line start whose
    text fills at most SLACK of the budget, leaving room to type before the next jump.
    """
    prefix = request.prefix
    floor = len(prefix) - budget * MAX_CHARS_PER_TOKEN
    found = region_spans(request.text, max(0, floor), len(prefix))  # secrets a cut goes through
    with _lock:
        last = _windows.get(request.uri)
    chosen = None
    if last is not None and max(0, floor) <= last <= len(prefix):
        chosen = _fit(prefix, last, tokenizer, budget, found)
    if chosen is None and floor <= 0:
        chosen = _fit(prefix, 0, tokenizer, budget, found)  # the whole prefix fits
    if chosen is None:
        starts = _starts(prefix, floor, max(8, budget // 8))
        chosen = _search(prefix, tokenizer, budget, int(budget * SLACK), starts, found)
    with _lock:
        _windows.pop(request.uri, None)
    if chosen is None:  # nothing fits (denser than 4 tokens a character): the last tokens
        text, n = redact(prefix, max(0, floor), len(prefix), found)
        return len(prefix), tokenizer.encode(text)[-budget:] if budget else [], n
    with _lock:
        _windows[request.uri] = chosen[0]  # most recent last
        while len(_windows) > MAX_WINDOWS:
            del _windows[next(iter(_windows))]
    return chosen


def _fit(
    prefix: str, start: int, tokenizer: Tokenizer, budget: int, found: list[tuple[int, int]]
) -> tuple[int, list[int], int] | None:
    """Return (start, tokens, scrubbed) if the prefix from `start` fits the budget."""
    text, n = redact(prefix, start, len(prefix), found)
    ids = tokenizer.encode(text)
    return (start, ids, n) if len(ids) <= budget else None


def _search(
    prefix: str,
    tokenizer: Tokenizer,
    budget: int,
    target: int,
    starts: list[int],
    found: list[tuple[int, int]],
) -> tuple[int, list[int], int] | None:
    """Binary-search the earliest start whose window holds at most `target` tokens."""
    lo, hi, best = 0, len(starts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        fits = _fit(prefix, starts[mid], tokenizer, target, found)
        if fits is not None:
            best, hi = fits, mid - 1
        else:
            lo = mid + 1
    return best


def _starts(prefix: str, floor: int, step: int) -> list[int]:
    """Return candidate window starts at or after `floor`: line starts, then a grid of
    `step` characters inside a very long cursor line."""
    floor = max(0, floor)
    pos = prefix.rfind("\n", 0, floor) + 1  # start of the line holding `floor`
    starts: list[int] = []
    while True:
        if pos >= floor:
            starts.append(pos)
        nl = prefix.find("\n", pos)
        if nl < 0:
            break
        pos = nl + 1
    first = pos + step * max(1, -(-(floor - pos) // step))  # on the grid, >= floor
    starts += range(first, len(prefix), step)
    return starts


def _head_lines(text: str, max_chars: int) -> str:
    """Return the first lines of `text` that fit in max_chars (at least part of one)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars)
    return text[: cut + 1] if cut > 0 else text[:max_chars]
