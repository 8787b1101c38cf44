"""Token surprisal from a real (tiny) engine: offsets, lines and expected tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jpilot.model.engine import Engine
from jpilot.plugins.debug.surprisal import token_scores

SOURCE = "def f(x):\n    if x > 1:\n        return x\n    return 0\n"


def test_token_scores_cover_the_text(tiny_bundle: Path) -> None:
    engine = Engine(tiny_bundle)
    scores = token_scores(engine, SOURCE)
    ids = engine.tokenizer.encode(SOURCE)
    assert len(scores) == len(ids) - 1
    assert all(s.gap_bits >= -1e-9 for s in scores)
    scored = engine.score_detail(ids)
    gaps = (scored.top_logp - scored.logp) / np.log(2)
    np.testing.assert_allclose([s.gap_bits for s in scores], gaps, atol=1e-9)
    for s in scores:
        line = SOURCE.count("\n", 0, s.start)
        assert s.line == line  # indentation tokens count for the line they indent
    # every line's first code character is inside a token attributed to that line
    for line, text in enumerate(SOURCE.splitlines()):
        first = sum(len(x) + 1 for x in SOURCE.splitlines()[:line]) + len(text) - len(text.lstrip())
        assert any(s.start <= first < s.end and s.line == line for s in scores) or first == 0


def test_pieces_are_the_tokens_inside_an_identifier(tiny_bundle: Path) -> None:
    engine = Engine(tiny_bundle)
    text = "configuration_value = other_configuration_value + 1\n"
    scores = token_scores(engine, text)

    def word(ch: str) -> bool:
        return ch.isalnum() or ch == "_"

    for s in scores:
        first = s.start + len(text[s.start : s.end]) - len(text[s.start : s.end].lstrip())
        assert s.piece == (first < s.end and word(text[first]) and word(text[first - 1])), s
    assert any(s.piece for s in scores)  # the tiny tokenizer splits these long names
    assert not any(s.piece for s in scores if text[s.start : s.end].strip() in ("=", "+", "1"))
