"""Plain-string line helpers (jpilot.plugins.text): "\\n" breaks, CRLF, lone CR, the ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jpilot.plugins.text import line_col, line_span, line_start, line_starts

TEXTS = st.lists(st.sampled_from(["a", " ", "é", "\U0001f600", "\n", "\r\n", "\r"])).map("".join)


def test_line_starts() -> None:
    assert line_starts("ab\ncd\n") == [0, 3, 6]
    assert line_starts("ab\ncd") == [0, 3]
    assert line_starts("") == [0]
    assert line_starts("\n\n") == [0, 1, 2]


def test_crlf_starts_as_under_lsp_and_a_lone_cr_is_no_break() -> None:
    assert line_starts("ab\r\ncd\r\n") == [0, 4, 8]
    assert line_starts("ab\rcd\n") == [0, 6]
    assert line_span("ab\r\ncd", 0) == (0, 3)  # the CR stays in the line's text
    assert line_span("ab\rcd\nx", 0) == (0, 5)
    assert line_col("ab\rcd", 4) == (0, 4)


def test_big_ascii_text_takes_the_fast_path_with_the_same_answer() -> None:
    text = "x = 1\n" * 20_000 + "tail"
    assert len(text) > 1 << 16
    assert line_starts(text) == [0, *range(6, 6 * 20_001, 6)]
    wide = "é\n" * 40_000  # not ASCII: the slow path, same shape
    assert line_starts(wide) == [0, *range(2, 2 * 40_001, 2)]


def test_line_col() -> None:
    text = "ab\ncd\n"
    assert line_col(text, 0) == (0, 0)
    assert line_col(text, 2) == (0, 2)  # on the line break: still its line
    assert line_col(text, 3) == (1, 0)
    assert line_col(text, 6) == (2, 0)  # after the last "\n": the empty last line
    assert line_col(text, 9) == (2, 3)  # past the end: columns count on, unclamped
    assert line_col("", 0) == (0, 0)


def test_line_start_and_span() -> None:
    text = "ab\ncd\n"
    assert [line_start(text, n) for n in range(3)] == [0, 3, 6]
    assert [line_span(text, n) for n in range(3)] == [(0, 2), (3, 5), (6, 6)]
    assert line_span("ab", 0) == (0, 2)
    assert line_span("", 0) == (0, 0)


def test_a_line_past_the_end_raises() -> None:
    with pytest.raises(ValueError):
        line_start("ab\ncd", 2)
    with pytest.raises(ValueError):
        line_span("", 1)


@given(TEXTS)
def test_the_helpers_agree(text: str) -> None:
    starts = line_starts(text)
    assert starts == [0, *(i + 1 for i, ch in enumerate(text) if ch == "\n")]
    for line, start in enumerate(starts):
        assert line_start(text, line) == start
        begin, end = line_span(text, line)
        assert begin == start and "\n" not in text[begin:end]
        assert end == len(text) or text[end] == "\n"
    for offset in range(len(text) + 1):
        line, col = line_col(text, offset)
        assert starts[line] + col == offset and starts[line] <= offset
        assert line + 1 == len(starts) or starts[line + 1] > offset
