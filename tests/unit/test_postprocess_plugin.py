"""Post-processing steps, one by one and through the hook."""

from __future__ import annotations

from jpilot.plugins import postprocess as pp
from jpilot.plugins.api import CompletionRequest, Suggestion
from jpilot.plugins.settings import Settings


def run(text: str, offset: int, suggestion: str, language: str = "python") -> Suggestion:
    r = CompletionRequest("file:///a.py", language, text, offset, 1, Settings())
    s = Suggestion(suggestion, offset)
    pp.jpilot_postprocess(r, s)
    return s


def test_block_end_by_indentation():
    suggestion = "return y\n\ndef g():\n    pass"
    assert pp.stop_at_block_end("    ", suggestion) == "return y"


def test_block_opened_at_cursor_keeps_its_body_only():
    suggestion = "\n    if x:\n        return 1\n    return 2\nprint(f(1))"
    assert pp.stop_at_block_end("def f(x):", suggestion) == (
        "\n    if x:\n        return 1\n    return 2"
    )


def test_block_end_by_brackets():
    suggestion = "1,\n    2,\n)\nz = 3"
    assert pp.stop_at_block_end("x = f(", suggestion) == "1,\n    2,\n)"


def test_single_line_is_untouched_by_block_end():
    assert pp.stop_at_block_end("    ", "return y  ") == "return y  "


def test_repeated_lines_are_dropped():
    assert pp.drop_repeated_lines("", "a = 1\nb = 2\nb = 2\nb = 2") == "a = 1\nb = 2"
    assert pp.drop_repeated_lines("", "x\ny\nx\ny\nx") == "x\ny"
    assert pp.drop_repeated_lines("    ", "pass\n    pass") == "pass"
    assert pp.drop_repeated_lines("", "a\nb\nc") == "a\nb\nc"


def test_overlap_with_the_rest_of_the_line_is_trimmed():
    assert pp.trim_overlap("a, b)", ")\n") == "a, b"
    assert pp.trim_overlap("a, b):", "):\n    pass") == "a, b"
    assert pp.trim_overlap("x", "") == "x"


def test_overlap_with_following_lines_is_trimmed():
    suffix = "\n    return total\n"
    assert pp.trim_overlap("total += 1\n    return total", suffix) == "total += 1"


def test_python_parse_check_drops_breaking_suggestion():
    text = "def f(x):\n    return \n"
    offset = text.index("return ") + len("return ")
    assert run(text, offset, "x + 1").text == "x + 1"
    dropped = run(text, offset, "x + (")
    assert dropped.text == "" and dropped.dropped_by == "parse"


def test_parse_check_falls_back_to_the_first_line():
    text = "a = 1\n\nb = 2\n"
    assert run(text, 6, "c = 3\n  )(").text == "c = 3"


def test_parse_check_is_skipped_when_the_buffer_is_already_broken():
    text = "def f(:\n    "
    assert run(text, len(text), "return ((").text == "return (("


def test_other_languages_are_not_parsed():
    assert run("x = ", 4, "{{{", language="javascript").text == "{{{"
