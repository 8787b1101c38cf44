"""The `postprocess` plugin: make a raw model suggestion fit the buffer.

In order: drop a suggestion the model was unsure of (`completion.minConfidence`), stop at
the end of the block (indentation and brackets), drop repeated lines, trim overlap with
the text after the cursor, and (Python) drop a suggestion that would make a parseable
buffer unparseable. Each step is a pure function.
"""

from __future__ import annotations

import ast
import re
import warnings

from jpilot.model.abilities import GATE as GATE_ABILITY  # the bundle's calibrated gate
from jpilot.plugins.api import CompletionRequest, Suggestion, hookimpl

MAX_PARSE_CHARS = 1_000_000  # larger buffers skip the parse check (it would be too slow)
OPENERS, CLOSERS = "([{", ")]}"
_BLOCK_OPENER = re.compile(r"[:{(\[]\s*(#.*)?$")


@hookimpl
def jpilot_postprocess(request: CompletionRequest, suggestion: Suggestion) -> None:
    """Apply every step in order; a step that empties the text names itself."""
    steps = [
        ("confidence", lambda t: t if confident(request, suggestion) else ""),
        ("block_end", lambda t: stop_at_block_end(request.line_prefix, t)),
        ("repetition", lambda t: drop_repeated_lines(request.line_prefix, t)),
        ("overlap", lambda t: trim_overlap(t, request.suffix)),
        ("parse", lambda t: parse_check(request, t)),
    ]
    for name, step in steps:
        new = step(suggestion.text)
        if new != suggestion.text and not new.strip():
            suggestion.text, suggestion.dropped_by = "", name
            return
        suggestion.text = new


def confident(request: CompletionRequest, suggestion: Suggestion) -> bool:
    """Return whether the model was sure enough of the suggestion's first line to show it
    (a suggestion whose engine gives no confidence, a pool's, is always shown)."""
    floor = request.settings.completion.min_confidence
    if floor == "auto":  # the bundle's calibrated gate, if `eval --repo --record` wrote one
        floor = (request.abilities or {}).get(GATE_ABILITY, 0.0)
    return suggestion.confidence is None or suggestion.confidence >= float(floor)


def indent_of(line: str) -> int:
    """Return the width of a line's leading whitespace (a tab counts as 4)."""
    stripped = line.lstrip(" \t")
    return len(line[: len(line) - len(stripped)].expandtabs(4))


def stop_at_block_end(line_prefix: str, text: str) -> str:
    """Cut a multi-line suggestion where it leaves the block the cursor is in.

    The block is the cursor line's indentation (or one level deeper, when the cursor line
    opens a block). A later non-blank line indented less ends the suggestion, unless it
    is inside brackets the suggestion itself opened. A line that closes more brackets
    than were opened since the cursor ends it too, after that line.
    """
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = line_prefix + lines[0]
    base = indent_of(first)
    opens_block = bool(_BLOCK_OPENER.search(first.rstrip()))
    depth = _depth_change(lines[0])
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip():
            ind = indent_of(line)
            outside = ind <= base if opens_block and len(kept) == 1 else ind < base
            if depth <= 0 and outside and not (line.strip()[0] in CLOSERS and ind == base):
                break
            if depth <= 0 and ind <= base and len(kept) > 1 and opens_block:
                break  # the opened block is over
        depth += _depth_change(line)
        kept.append(line)
        if depth < 0:  # closed a bracket opened before the cursor: the statement ended
            break
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def _depth_change(line: str) -> int:
    """Return opened minus closed brackets on a line, ignoring simple string literals."""
    line = re.sub(r"'[^'\n]*'|\"[^\"\n]*\"", "", line)
    return sum(line.count(c) for c in OPENERS) - sum(line.count(c) for c in CLOSERS)


def drop_repeated_lines(line_prefix: str, text: str) -> str:
    """Cut the suggestion where it starts repeating a line, or a pair of lines (loops)."""
    lines = text.split("\n")
    full = [(line_prefix + lines[0]).strip(), *(line.strip() for line in lines[1:])]
    for i in range(1, len(full)):
        if full[i] and full[i] == full[i - 1]:
            return "\n".join(lines[:i]).rstrip()
        if i >= 3 and full[i - 1 : i + 1] == full[i - 3 : i - 1] and full[i]:
            return "\n".join(lines[: i - 1]).rstrip()
    return text


def trim_overlap(text: str, suffix: str) -> str:
    """Drop the end of the suggestion that repeats the text right after the cursor."""
    rest = suffix.split("\n", 1)[0].rstrip("\r")
    if rest.strip() and text.rstrip().endswith(rest.strip()):
        return text.rstrip()[: len(text.rstrip()) - len(rest.strip())]
    # whole lines of the suggestion that are the next lines of the suffix
    lines = text.split("\n")
    following = [line for line in suffix.split("\n")[1:] if line.strip()][: len(lines)]
    for n in range(min(len(lines) - 1, len(following)), 0, -1):
        if [x.strip() for x in lines[-n:]] == [x.strip() for x in following[:n]]:
            return "\n".join(lines[:-n]).rstrip()
    return text


def parse_check(request: CompletionRequest, text: str) -> str:
    """For Python: keep the suggestion only if a parseable buffer stays parseable.

    A multi-line suggestion that breaks the parse is cut to its first line first.
    """
    if request.language_id != "python" or not text or not request.whole:
        return text  # a window of a large document (context.largeFileKb) does not parse
    if len(request.text) > MAX_PARSE_CHARS:
        return text
    if not _parses(request.text):
        return text  # already broken while typing: no signal
    for candidate in (text, text.split("\n", 1)[0]):
        if _parses(request.prefix + candidate + request.suffix):
            return candidate
    return ""


def _parses(source: str) -> bool:
    """Return True if `source` is valid Python."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
