"""Documents over `context.largeFileKb` (docs/DESIGN.md, Reliability 11), through a raw client.

The limit is set low (16 KB) so that the documents stay small and the tests fast; a
20 MB document is bench/large_files.py's. A large document is completed from a window
around the cursor: the answer equals the whole-document pipeline's (the prompt only
reads near the cursor), at the exact position in the document, and no whole-file pass
(diagnostics: hints, the syntax check) runs on it, while a small document's do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import expected
from rawclient import RawClient

from jpilot.lsp.positions import window
from jpilot.lsp.server import WINDOW_AFTER, WINDOW_BEFORE, WINDOW_STEP
from jpilot.model.engine import Engine

OPTIONS = {"context": {"largeFileKb": 16}, "completion": {"branches": 1}}


@pytest.fixture
def client(tiny_bundle: Path) -> Iterator[RawClient]:
    """An initialized server on the tiny bundle with a 16 KB large-file limit."""
    c = RawClient()
    c.initialize({**OPTIONS, "model": {"path": str(tiny_bundle)}})
    for _ in range(400):
        if c.status()["model"]["state"] != "loading":
            break
        time.sleep(0.05)
    yield c
    c.close()


def utf16(text: str) -> int:
    """Return the length of `text` in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


SHAPES = {
    # 6000 CRLF lines with non-ASCII text; the cursor in the middle, after an astral char
    "lines": (
        "".join(f"line {i} says hello wörld\r\n" for i in range(3000)),
        "s = '😀' + hello wor",
        "".join(f"after {i} ünd more\r\n" for i in range(3000)),
    ),  # fmt: skip
    # one 200 KB line: the window starts inside the cursor's line
    "one long line": ("header\n", "x = '" + "abcdéfghi😀" * 20_000 + "' + hello wor", ""),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_large_document_is_completed_from_a_window_at_the_exact_position(
    client: RawClient, tiny_engine: Engine, shape: str
):
    before, cursor_line, after = SHAPES[shape]
    text = before + cursor_line + "\n" + after
    assert len(text.encode()) > 16 * 1024 * 4
    uri = f"file:///tmp/jpilot-large/{shape.replace(' ', '-')}.txt"
    client.open(uri, text)
    line = before.count("\n")
    character = utf16(cursor_line)
    reply = client.response(client.inline(uri, line, character))
    offset = len(before) + len(cursor_line)
    if shape == "lines":  # the prompt reads whole lines near the cursor: as if whole
        want = expected(tiny_engine, uri, text, offset, options=OPTIONS)
    else:  # a prompt cut out of one long line lies on a grid from the window's start
        lo, hi = window(text, offset, WINDOW_BEFORE, WINDOW_AFTER, WINDOW_STEP)
        assert len(before) < lo < offset  # inside the cursor line
        want = expected(tiny_engine, uri, text[lo:hi], offset - lo, options=OPTIONS)
    assert want.suggestion is not None and want.suggestion.text
    (item,) = reply["result"]["items"]
    assert item["insertText"] == want.suggestion.text
    where = {"line": line, "character": character}
    assert item["range"] == {"start": where, "end": where}
    assert client.status()["stats"]["windowed"] == 1


def test_no_whole_file_pass_on_a_large_document(client: RawClient):
    broken = "def f(:\n    return 1\n"
    large = "file:///tmp/jpilot-large/large.py"
    small = "file:///tmp/jpilot-large/small.py"
    client.open(large, "x = 1\n" * 5000 + broken, language="python")
    client.open(small, broken, language="python")  # scheduled after the large one
    end = time.monotonic() + 30
    published: list[str] = []
    while small not in published:
        assert time.monotonic() < end, "no diagnostics for the small document"
        client.status()  # collects notifications on the way
        published = [
            n["params"]["uri"]
            for n in client.notifications
            if n["method"] == "textDocument/publishDiagnostics"
        ]
    assert large not in published
    (diagnostics,) = [
        n["params"]["diagnostics"]
        for n in client.notifications
        if n["method"] == "textDocument/publishDiagnostics"
    ]
    assert [d["code"] for d in diagnostics] == ["syntax-error"]
    assert client.status()["stats"]["whole_file_skipped"] == 1
