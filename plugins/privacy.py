"""What of a document a model may see: nothing of an ignored file, and no secret of any other.

Every model path of the built-in plugins (completions in `context`, hints, the syntax
fix and the regenerate action in `debug`, hover summaries, docstrings and explain in
`docs`) takes its text from `model_text`, never from `request.text`:

- An ignored file (`.gitignore`, `.jpilotignore`, a secrets file: `ignore.is_ignored`,
  which fails closed) gives None: the feature does no model work for it. The server also
  hands the plugins no engine at all for a file its `jpilot_ignore_document` hooks ignore
  (`PluginHost.ignored`, which fails closed too), so this is the second of two locks.
- Any other file gives its text with every secret masked (`secrets.mask`): same length,
  lines and columns, so an offset the model's answer is placed at is valid on the
  buffer. `hides` says whether a span holds masked characters; a feature never shows a
  finding or rewrites a line there, since the model could not see what is in it.

Prompts cut windows out of a document; `redact` hides a secret the cut goes through (a
window that starts inside a private-key block) by searching a margin around the window.
"""

from __future__ import annotations

from jpilot.plugins import ignore
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.lru import LRU
from jpilot.plugins.secrets import REDACTED, mask, scrub, spans

MARGIN = 16 * 1024  # context around a prompt's window searched for secrets it cuts through
MAX_CACHED = 8  # masked texts kept, keyed by (uri, version): hovers on one big file
_cache: LRU[tuple[str, int], tuple[str, str]] = LRU(MAX_CACHED)


def ignored(request: CompletionRequest) -> bool:
    """Return whether the request's file is ignored (any error counts as ignored)."""
    return request.path is not None and ignore.is_ignored(request.path, request.workspace_roots)


def model_text(request: CompletionRequest) -> str | None:
    """Return the buffer as a model may see it: None if ignored, else secrets masked."""
    if ignored(request):
        return None
    return masked(request.text, request.uri, request.version)


def masked(text: str, uri: str = "", version: int | None = None) -> str:
    """Return `text` with its secrets masked, cached per document version."""
    if version is None:
        return mask(text)
    key = (uri, version)
    hit = _cache.get(key)
    if hit is not None and hit[0] == text:
        return hit[1]
    out = mask(text)
    _cache.put(key, (text, out))
    return out


def hides(text: str, model: str, start: int, end: int) -> bool:
    """Return whether `text[start:end]` holds characters masked in `model`."""
    return text[start:end] != model[start:end]


def redact(text: str, start: int, end: int, found: list[tuple[int, int]]) -> tuple[str, int]:
    """Return `text[start:end]` with each secret of `found` (spans found in a larger view
    of `text`, so a cut through a secret still hides all of it) and each secret the
    slice shows by itself replaced by REDACTED; and how many were replaced."""
    parts, last, n = [], start, 0
    for a, b in found:
        if b <= start or a >= end:
            continue
        parts += [text[last : max(a, start)], REDACTED]
        last, n = min(b, end), n + 1
    parts.append(text[last:end])
    out, more = scrub("".join(parts))
    return out, n + more


def region_spans(text: str, start: int, end: int, margin: int = MARGIN) -> list[tuple[int, int]]:
    """Return the secrets of `text[start:end]`, found with `margin` characters of context
    on each side, as spans into `text`."""
    lo, hi = max(0, start - margin), min(len(text), end + margin)
    return [(a + lo, b + lo) for a, b in spans(text[lo:hi])]
