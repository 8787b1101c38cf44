"""How sure the model is of a suggestion's first line, and the gate that hides unsure ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from jpilot.lsp.commands import why_none
from jpilot.lsp.pipeline import Outcome
from jpilot.model.decode import line_confidence
from jpilot.model.engine import Engine, GenerationConfig
from jpilot.plugins import postprocess
from jpilot.plugins.api import Suggestion
from jpilot.plugins.settings import parse_settings
from jpilot.plugins.testing import request


def test_line_confidence_counts_the_tokens_of_the_first_line_with_code() -> None:
    text = "\n    return x\n    y"  # tokens: "\n", "    return", " x", "\n    y"
    ends = [1, 11, 13, len(text)]
    logprobs = [-0.1, -1.0, -2.0, -3.0]
    # the blank start is skipped, and so is the token that starts after the line's end
    assert line_confidence(text, ends, logprobs) == pytest.approx(math.exp(np.mean([-1, -2])))
    # a token that writes the line's end and goes on counts
    assert line_confidence("a\nb", [3], [-0.7]) == pytest.approx(math.exp(-0.7))
    assert line_confidence("x = 1", [5], [-0.5]) == pytest.approx(math.exp(-0.5))
    assert line_confidence("  \n", [3], [-0.5]) is None
    assert line_confidence("", [], []) is None


def test_engine_confidence_is_the_models_own_probability(tiny_bundle: Path) -> None:
    engine = Engine(tiny_bundle)
    try:
        prompt = engine.tokenizer.encode("def add(a, b):\n    return a")
        result = engine.generate(prompt, GenerationConfig(max_new_tokens=8, stop=["\n"]))
        assert result.tokens and result.confidence is not None
        scored = engine.score(prompt + result.tokens)[-len(result.tokens) :]  # teacher forcing
        assert result.confidence == pytest.approx(float(np.exp(np.mean(scored))), rel=1e-3)
    finally:
        engine.close()


@pytest.mark.parametrize(("confidence", "shown"), [(0.3, False), (0.5, True), (None, True)])
def test_the_gate_drops_what_is_below_min_confidence(confidence, shown) -> None:
    r = request("x = ", settings={"completion": {"minConfidence": 0.4}})
    s = Suggestion("compute()", r.offset, confidence=confidence)
    postprocess.jpilot_postprocess(r, s)
    assert (s.text, s.dropped_by) == (("compute()", "") if shown else ("", "confidence"))


def test_auto_takes_the_bundles_calibrated_gate_and_none_shows_all() -> None:
    for abilities, shown in ((None, True), ({}, True), ({postprocess.GATE_ABILITY: 0.5}, False)):
        r = request("x = ", abilities=abilities)
        assert r.settings.completion.min_confidence == "auto"  # the default
        s = Suggestion("compute()", r.offset, confidence=0.45)
        postprocess.jpilot_postprocess(r, s)
        assert bool(s.text) is shown, abilities
    r = request("x = ", abilities={postprocess.GATE_ABILITY: 0.5},
                settings={"completion": {"minConfidence": 0}})  # fmt: skip
    s = Suggestion("compute()", r.offset, confidence=0.45)
    postprocess.jpilot_postprocess(r, s)
    assert s.text == "compute()"  # a number overrides the bundle's gate


def test_bad_gate_settings_are_refused_in_one_line() -> None:
    for bad in (1.5, -0.1, "high", True):
        settings, errors = parse_settings({"completion": {"minConfidence": bad}})
        assert errors == [
            f'completion.minConfidence: expected "auto" or a number from 0 to 1, got {bad!r}; '
            "using 'auto'"
        ]
        assert settings.completion.min_confidence == "auto"


def test_the_cli_says_why_it_hid_one() -> None:
    hidden = Outcome(None, "empty", stats={"dropped_by": "confidence"})
    assert "completion.minConfidence" in why_none(hidden)
