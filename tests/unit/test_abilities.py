"""Measured ability gates the model-written features; degenerate text is never shown."""

from __future__ import annotations

import threading

import pytest
from fake_engine import FakeEngine

from jpilot.model.abilities import (
    FEATURES,
    PULL_HINT,
    THRESHOLDS,
    feature_on,
    lacking_message,
    passes,
    summary_lines,
    supported,
)
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.debug import plugin as debug
from jpilot.plugins.docs import generate
from jpilot.plugins.docs import plugin as docs
from jpilot.plugins.quality import degenerate, repetition_rate
from jpilot.plugins.settings import parse_settings

SOURCE = '''import math


def area(radius: float) -> float:
    total = math.pi * radius**2
    return total


def perimeter(radius):
    """Length of the circle."""
    return 2 * math.pi * radius
'''
PASSING = {t.score: (100.0 if t.higher_is_better else 0.0) for ts in THRESHOLDS.values()
           for t in ts}  # fmt: skip
FAILING = {t.score: (0.0 if t.higher_is_better else 100.0) for ts in THRESHOLDS.values()
           for t in ts}  # fmt: skip


def request(
    offset: int = 0, abilities: dict | None = None, options: dict | None = None
) -> CompletionRequest:
    settings, errors = parse_settings(options or {})
    assert errors == []
    return CompletionRequest("file:///a.py", "python", SOURCE, offset, 1, settings,
                             abilities=abilities)  # fmt: skip


# ------------------------------------------------------------------ degenerate text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "it was empty"),
        ("   \n ", "it was empty"),
        ("# -----\n" * 14, "it repeated a line"),
        ("-----\n=====", "it was only decoration"),
        ("Return aaaaaaaaaaaa.", "it was a run of one character"),
        ("7\ufffdur (c\ufffd\ufffdq'", "it held broken characters"),
        ("Return a list of all of all of all of the files.", "it repeated a phrase"),
        ("Tabs and Tabs, and Tabs, and Tabs, and Tabs", "it repeated a phrase"),
        ("total = math.pi * radius**2\nreturn total", "it mostly repeated the code it was given"),
    ],
)
def test_degenerate_kinds(text: str, why: str) -> None:
    assert degenerate(text, "total = math.pi * radius**2\n    return total\n") == why


@pytest.mark.parametrize(
    "text",
    ["Area of a circle.", "Return the sum of a and b.\n\n-----------\nMore here.", "x = 1\ny = 2"],
)
def test_sensible_text_is_not_degenerate(text: str) -> None:
    assert degenerate(text, SOURCE) is None


def test_repetition_rate() -> None:
    assert repetition_rate("one two three four") == 0.0
    assert repetition_rate("a b a b a b a b") > 0.5


# ------------------------------------------------------------------ thresholds and settings


def test_a_bundle_without_scores_passes_nothing() -> None:
    assert supported(None) == dict.fromkeys(FEATURES, False)
    assert supported({}) == dict.fromkeys(FEATURES, False)
    assert all("no recorded scores" in line for line in summary_lines({}))


def test_gating_by_score_and_by_explicit_setting() -> None:
    assert supported(PASSING) == dict.fromkeys(FEATURES, True)
    assert supported(FAILING) == dict.fromkeys(FEATURES, False)
    missing_one = dict(PASSING)
    del missing_one["summary_degenerate"]
    assert not passes(missing_one, "summary") and passes(missing_one, "docstring")
    for feature in FEATURES:
        assert feature_on("auto", PASSING, feature) and not feature_on("auto", FAILING, feature)
        assert feature_on(True, None, feature) and not feature_on(False, PASSING, feature)


def test_auto_settings_parse_and_invalid_values_keep_the_default() -> None:
    settings, errors = parse_settings(
        {"docs": {"summary": False, "docstring": True, "explain": "auto"},
         "hints": {"surprisal": "sometimes"}}
    )  # fmt: skip
    assert (settings.docs.summary, settings.docs.docstring, settings.docs.explain) == (
        False, True, "auto")  # fmt: skip
    assert settings.hints.surprisal == "auto"
    assert errors == ["hints.surprisal: expected \"auto\", true or false, got 'sometimes'; "
                      "using 'auto'"]  # fmt: skip
    default, _ = parse_settings({})
    assert (default.docs.summary, default.hints.surprisal) == ("auto", "auto")


def test_request_feature_on_reads_setting_then_scores() -> None:
    assert not request(abilities={}).feature_on("summary")
    assert request(abilities=PASSING).feature_on("summary")
    assert request(abilities={}, options={"docs": {"summary": True}}).feature_on("summary")
    assert not request(abilities=PASSING, options={"hints": {"surprisal": False}}).feature_on(
        "hints"
    )


# ------------------------------------------------------------------ the docs plugin, gated

AREA = SOURCE.index("def area") + 5


def test_hover_without_summary_when_the_model_is_not_measured_good_enough() -> None:
    engine = FakeEngine("Area of a circle.")
    for abilities in (None, {}, FAILING):
        hover = docs.jpilot_hover(request(AREA, abilities), engine, threading.Event())
        assert hover == "```python\ndef area(radius: float) -> float\n```"
    assert engine.prompts == []  # the model never ran
    documented = docs.jpilot_hover(
        request(SOURCE.index("def perimeter") + 5, FAILING), engine, None
    )
    assert documented == "```python\ndef perimeter(radius)\n```\n\nLength of the circle."
    on = docs.jpilot_hover(request(AREA, PASSING), engine, None)
    assert on is not None and on.endswith(f"{docs.GENERATED} Area of a circle.")
    explicit = docs.jpilot_hover(request(AREA, {}, {"docs": {"summary": True}}), engine, None)
    assert explicit == on


def test_hover_says_a_degenerate_summary_was_not_shown() -> None:
    engine = FakeEngine("Return a list of all of all of all of the files.")
    hover = docs.jpilot_hover(request(AREA, PASSING), engine, None)
    assert hover is not None and "all of all" not in hover
    assert hover.endswith("*jpilot: the model's summary was not shown (it repeated a phrase).*")


def _titles(req: CompletionRequest, start: int, end: int) -> list[str]:
    return [a.title for a in docs.jpilot_code_actions(req, start, end, []) or []]


def test_actions_are_not_offered_when_gated() -> None:
    body = SOURCE.index("total =")
    selection = (body, SOURCE.index("return total"))
    for abilities in (None, {}, FAILING):
        assert _titles(request(abilities=abilities), *selection) == []
    both = ["Generate docstring for area", "Explain selection (insert a comment)"]
    assert _titles(request(abilities=PASSING), *selection) == both
    only_explain = {"docs": {"explain": True}}
    assert _titles(request(abilities={}, options=only_explain), *selection) == both[1:]


def test_explain_command_says_in_one_line_what_the_model_lacks() -> None:
    engine = FakeEngine("Compute the area.")
    for abilities, why in (({}, "no recorded scores"), (FAILING, "too weak at explaining")):
        out = docs.jpilot_execute_command("jpilot.explain", request(0, abilities), [3, 5],
                                          engine, None)  # fmt: skip
        assert out is not None and out["comment"] == ""
        assert "\n" not in out["explanation"] and why in out["explanation"]
        assert PULL_HINT in out["explanation"]
    assert engine.prompts == []
    assert lacking_message("explain", {}) == out["explanation"].replace(
        "was measured too weak at explaining code", "has no recorded scores (run `jpilot model "
        "eval --abilities --record BUNDLE`)")  # fmt: skip
    ok = docs.jpilot_execute_command("jpilot.explain", request(0, PASSING), [3, 5], engine, None)
    assert ok is not None and ok["explanation"] == "Compute the area."


def test_explain_says_a_degenerate_explanation_was_not_shown() -> None:
    engine = FakeEngine("-----\n    # -----\n    # -----\n    # -----")
    out = docs.jpilot_execute_command("jpilot.explain", request(0, PASSING), [3, 5], engine, None)
    assert out is not None and out["comment"] == ""
    assert out["explanation"] == "the model's explanation was not shown (it repeated a line)"
    ins = generate.explain(engine, SOURCE, 3, 5)  # type: ignore[arg-type]
    assert ins is not None and (ins.text, ins.rejected) == ("", "it repeated a line")


def test_a_degenerate_docstring_is_not_inserted() -> None:
    node = generate.ast.parse(SOURCE).body[1]
    engine = FakeEngine("Return aaaaaaaaaaaaaaaaa")
    ins, raw, why = generate.docstring_result(engine, SOURCE, node)  # type: ignore[arg-type]
    assert ins is None and raw == "Return aaaaaaaaaaaaaaaaa"
    assert why == "it was a run of one character"


# ------------------------------------------------------------------ the debug plugin, gated


class NoScoring:
    """An engine whose scoring must not be reached."""

    def score_detail(self, *args, **kwargs):  # pragma: no cover - failing is the point
        raise AssertionError("the model scored a file while hints were gated off")


def test_surprisal_hints_are_gated_but_syntax_errors_are_not() -> None:
    broken = "def f(:\n    pass\n"
    for abilities in ({}, FAILING):
        assert debug.jpilot_diagnostics(request(0, abilities), NoScoring(), None) == []
    req = request(0, {})
    req.text = broken
    findings = debug.jpilot_diagnostics(req, None, None)
    assert [f.code for f in findings] == [debug.SYNTAX]
