"""Convert between LSP positions (in the client's code units) and string offsets.

LSP lines end at "\\n", "\\r\\n" or "\\r" only, and `character` counts UTF-16 units unless
another encoding was negotiated, so `character` is never used as a Python index. A
character past the end of its line clamps to the line end; a line past the end of the
document clamps to the end of the document.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import Workspace
from pygls.workspace.position_codec import PositionCodec

from jpilot.plugins.text import line_starts as plain_line_starts

_BREAK = re.compile(r"\r\n|\r|\n")


_last: tuple[str, list[int]] = ("", [0])  # the last text's line starts, reused by identity
_lock = threading.Lock()


def line_starts(text: str) -> list[int]:
    """Return the offset where each line begins (cached for the last text seen)."""
    global _last
    with _lock:
        if _last[0] is text:
            return _last[1]
    if "\r" in text:
        starts = [0, *(m.end() for m in _BREAK.finditer(text))]
    else:  # "\n" is the only line break: the plugins' line starts are LSP's
        starts = plain_line_starts(text)
    with _lock:
        _last = (text, starts)
    return starts


def units(text: str, codec: PositionCodec) -> int:
    """Return the length of `text` in the codec's code units (C speed, no Python loop)."""
    encoding = getattr(codec.encoding, "value", codec.encoding) or "utf-16"
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _line_end(text: str, starts: list[int], line: int) -> int:
    """Return the offset of the end of `line`'s content (before its line break)."""
    if line + 1 < len(starts):
        end = starts[line + 1]
        return end - (2 if text[end - 2 : end] == "\r\n" else 1)
    return len(text)


def offset_at(text: str, position: types.Position, codec: PositionCodec) -> int:
    """Return the string offset of an LSP position, clamping past-the-end values."""
    starts = line_starts(text)
    if position.line >= len(starts):
        return len(text)
    start = starts[position.line]
    end = _line_end(text, starts, position.line)
    if units(text[start:end], codec) == end - start:  # one unit per character
        return start + min(position.character, end - start)
    count = 0
    for i in range(start, end):
        if count >= position.character:
            return i
        count += codec.client_num_units(text[i])
    return end


def position_at(
    text: str, offset: int, codec: PositionCodec, first_line: int = 0, first_units: int = 0
) -> types.Position:
    """Return the LSP position of a string offset. `text` may be a window of a document
    that starts on its line `first_line`, after `first_units` code units of that line."""
    offset = max(0, min(offset, len(text)))
    starts = line_starts(text)
    lo, hi = 0, len(starts) - 1
    while lo < hi:  # last line start <= offset
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    character = units(text[starts[lo] : offset], codec) + (first_units if lo == 0 else 0)
    return types.Position(line=lo + first_line, character=character)


def window(text: str, offset: int, before: int, after: int, step: int) -> tuple[int, int]:
    """Return [start, end) of a window of `text` around `offset`: from a line start at
    most `before` characters back (a grid of `step` keeps it still while the user types;
    inside a longer line it starts mid-line), to the end of the line `after` characters on.
    """
    lo = max(0, offset - before) // step * step
    line = max(text.rfind("\n", 0, lo), text.rfind("\r", 0, lo)) + 1 if lo else 0
    start = line if lo - line <= step else lo
    if 0 < start < len(text) and text[start - 1] == "\r" and text[start] == "\n":
        start += 1  # never between the two characters of a CRLF
    end = text.find("\n", min(len(text), offset + after))
    return start, len(text) if end < 0 else end + 1


def apply_change(
    workspace: Workspace,
    document: types.VersionedTextDocumentIdentifier,
    change: types.TextDocumentContentChangeEvent,
) -> None:
    """Apply one didChange edit to an open document; ignore documents never opened."""
    doc = workspace.text_documents.get(unquote(document.uri))
    if doc is None:
        return
    source = doc.source
    if isinstance(change, types.TextDocumentContentChangePartial):
        start = offset_at(source, change.range.start, doc.position_codec)
        end = max(start, offset_at(source, change.range.end, doc.position_codec))
        doc._source = source[:start] + change.text + source[end:]
    else:
        doc._source = change.text
    doc.version = document.version
