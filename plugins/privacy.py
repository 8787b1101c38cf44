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
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from jpilot.plugins import ignore
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.secrets import mask

MAX_CACHED = 8  # masked texts kept, keyed by (uri, version): hovers on one big file
_cache: OrderedDict[tuple[str, int], tuple[str, str]] = OrderedDict()
_lock = threading.Lock()


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
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == text:
        return hit[1]
    out = mask(text)
    with _lock:
        _cache[key] = (text, out)
        _cache.move_to_end(key)
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return out


def hides(text: str, model: str, start: int, end: int) -> bool:
    """Return whether `text[start:end]` holds characters masked in `model`."""
    return text[start:end] != model[start:end]
