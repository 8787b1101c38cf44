"""Find lines and offsets in plain strings, for the plugins.

Offsets and columns are Python string indices (code points), and lines are 0-based. A line
ends at "\\n" only: the "\\r" of a CRLF stays part of its line's text, so CRLF text has the
same line starts as under LSP, but a lone "\\r" is not a line break here. LSP's own line
breaks and its UTF-16 `character`s are converted in jpilot.lsp.positions, never here.
"""

from __future__ import annotations

import re

import numpy as np

_NEWLINE = re.compile("\n")
_BIG = 1 << 16  # characters from which an ASCII text's newlines are found with numpy


def line_starts(text: str) -> list[int]:
    """Return the offset where each line starts: 0, then one past each "\\n"."""
    if len(text) > _BIG and text.isascii():
        data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)  # (len(text),) bytes
        return [0, *(np.flatnonzero(data == 10) + 1).tolist()]
    return [0, *(m.end() for m in _NEWLINE.finditer(text))]


def line_col(text: str, offset: int) -> tuple[int, int]:
    """Return the line and column of an offset."""
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def line_start(text: str, line: int) -> int:
    """Return the offset where a line starts; raise ValueError for a line past the end."""
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return offset


def line_span(text: str, line: int) -> tuple[int, int]:
    """Return a line's (start, end) offsets, the end at its "\\n" or the end of the text."""
    start = line_start(text, line)
    end = text.find("\n", start)
    return start, len(text) if end < 0 else end
