"""`jpilot complete`'s --line/--col: editor (LSP) lines, one range rule for both."""

from __future__ import annotations

import pytest

from jpilot.lsp.commands import offset_of


def test_line_and_column_are_one_based() -> None:
    text = "first line\nsecond li\nthird\n"
    assert offset_of(text, 1, 1) == 0
    assert offset_of(text, 2, 10) == len("first line\nsecond li")  # after the last character
    assert offset_of(text, 4, 1) == len(text)  # the empty line after the last "\n"
    assert offset_of("ab\r\ncd", 1, 3) == 2  # before the line break, not inside it
    assert offset_of("", 1, 1) == 0


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("ab\ncd", 1, 0, "--col 0 is outside line 1 (columns 1 to 3)"),
        ("ab\ncd", 1, -5, "--col -5 is outside line 1 (columns 1 to 3)"),
        ("ab\r\ncd", 1, 4, "--col 4 is outside line 1 (columns 1 to 3)"),
        ("ab\ncd", 2, 999, "--col 999 is outside line 2 (columns 1 to 3)"),
        ("ab\ncd", 0, 1, "--line 0 is outside the file (lines 1 to 2)"),
        ("ab\ncd", 3, 1, "--line 3 is outside the file (lines 1 to 2)"),
        ("", 2, 1, "--line 2 is outside the file (lines 1 to 1)"),
    ],
)
def test_a_line_or_column_outside_is_an_error_that_gives_the_range(
    text: str, line: int, col: int, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        offset_of(text, line, col)
    assert str(info.value) == message


def test_lines_break_as_in_the_editor() -> None:
    text = "ab\r\ncd\ref\x0cgh"
    assert offset_of(text, 2, 2) == 5  # after CRLF
    assert offset_of(text, 3, 1) == 7  # a lone CR is a line break, as in LSP
    assert offset_of(text, 3, 6) == len(text)  # a form feed is not
    assert offset_of("ab\r", 2, 1) == 3
