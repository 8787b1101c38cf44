"""`jpilot complete`'s --line/--col: editor (LSP) lines, clamped columns, None past the end."""

from __future__ import annotations

from jpilot.lsp.commands import offset_of


def test_line_and_column_are_one_based() -> None:
    text = "first line\nsecond li\nthird\n"
    assert offset_of(text, 1, 1) == 0
    assert offset_of(text, 2, 10) == len("first line\nsecond li")
    assert offset_of(text, 4, 1) == len(text)  # the empty line after the last "\n"


def test_column_clamps_to_the_line_end_before_its_break() -> None:
    assert offset_of("ab\r\ncd", 1, 99) == 2
    assert offset_of("ab\ncd", 2, 99) == 5
    assert offset_of("ab\ncd", 1, 0) == 0
    assert offset_of("ab\ncd", 1, -4) == 0
    assert offset_of("ab", 1, 2**40) == 2


def test_lines_break_as_in_the_editor() -> None:
    text = "ab\r\ncd\ref\x0cgh"
    assert offset_of(text, 2, 2) == 5  # after CRLF
    assert offset_of(text, 3, 1) == 7  # a lone CR is a line break, as in LSP
    assert offset_of(text, 3, 99) == len(text)  # a form feed is not
    assert offset_of("ab\r", 2, 1) == 3


def test_a_line_outside_the_file_is_none() -> None:
    assert offset_of("ab\ncd", 3, 1) is None
    assert offset_of("ab\ncd", 0, 1) is None
    assert offset_of("", 1, 5) == 0
    assert offset_of("", 2, 1) is None
