"""The completion plugin's plan and items, and the adaptive budget."""

from __future__ import annotations

import logging

import pytest
from lsprotocol import types

from jpilot.lsp.adaptive import AdaptiveBudget
from jpilot.plugins import completion
from jpilot.plugins.api import CompletionRequest, Suggestion
from jpilot.plugins.settings import parse_settings


def req(text: str, offset: int | None = None, settings=None, **kw) -> CompletionRequest:
    s, _ = parse_settings(settings)
    offset = len(text) if offset is None else offset
    return CompletionRequest("file:///a.py", "python", text, offset, 1, s, **kw)


@pytest.mark.parametrize(
    ("text", "offset", "multiline"),
    [
        ("def f(x):", None, True),  # opens a block
        ("    ", None, True),  # blank line
        ("x = foo", None, False),  # mid-statement
        ("x = foo()", 8, False),  # text after the cursor
        ("items = [", None, True),
    ],
)
def test_multiline_where_the_context_calls_for_it(text, offset, multiline):
    plan = completion.jpilot_generation_plan(req(text, offset))
    assert plan.multiline is multiline
    assert plan.stop == (["\n\n\n"] if multiline else ["\n"])


def test_settings_and_adaptive_limits_shape_the_plan():
    plan = completion.jpilot_generation_plan(
        req("def f():", settings={"completion": {"multiline": "never", "maxTokens": 20}})
    )
    assert (plan.multiline, plan.max_tokens) == (False, 20)
    plan = completion.jpilot_generation_plan(req("def f():", single_line=True, max_tokens=6))
    assert (plan.multiline, plan.max_tokens) == (False, 6)
    assert completion.jpilot_generation_plan(req("x = f")).branches == 3  # the default
    plan = completion.jpilot_generation_plan(req("x = f", settings={"completion": {"branches": 5}}))
    assert plan.branches == 5
    assert completion.jpilot_generation_plan(req("x = f", branching=False)).branches == 1


def test_items_carry_the_exact_ranges():
    r = req("x = fo")
    s = Suggestion("o(1)", 6)
    at = types.Range(types.Position(0, 6), types.Position(0, 6))
    (inline,) = completion.jpilot_inline_items(r, s, at)
    assert inline.insert_text == "o(1)" and inline.range == at
    word = types.Range(types.Position(0, 4), types.Position(0, 6))
    (item,) = completion.jpilot_completion_items(r, s, word)
    assert item.text_edit == types.TextEdit(range=word, new_text="foo(1)")
    assert item.label == "foo(1)" and item.filter_text == "foo(1)"


def test_adaptive_budget_shortens_then_recovers(caplog: pytest.LogCaptureFixture):
    budget = AdaptiveBudget()
    assert budget.limits(48) == (False, None, True)
    with caplog.at_level(logging.WARNING):
        for _ in range(4):
            budget.record(400, 150, 48)
    assert budget.level == 1 and budget.limits(48) == (False, None, False)  # no branching
    assert "latency p50 400 ms is over the 150 ms budget" in caplog.text
    assert "no first-token branching" in caplog.text
    for _ in range(4):
        budget.record(400, 150, 48)
    assert budget.limits(48) == (False, 24, False)  # then fewer tokens
    for _ in range(4):
        budget.record(400, 150, 48)
    assert budget.limits(48) == (True, 24, False)  # then single-line too
    for _ in range(8):
        budget.record(20, 150, 48)
    assert budget.level == 2
    assert "well under" in caplog.text


@pytest.mark.parametrize(
    ("text", "offset", "before", "after"),
    [("ab\r\ncd", 5, "c", "d"), ("ab\r\ncd", 1, "a", "b"), ("x\ry", 2, "", "y"), ("", 0, "", "")],
)
def test_cursor_line_around_the_cursor(text, offset, before, after):
    r = req(text, offset)
    assert (r.line_prefix, r.line_suffix) == (before, after)


def test_word_before_the_cursor():
    from jpilot.plugins.api import word_before

    assert word_before("    return self.val") == "val"
    assert word_before("x = $el_1") == "$el_1"
    assert word_before("f(") == ""
