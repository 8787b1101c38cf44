"""Token surprisal from a real (tiny) engine: offsets, lines and expected tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jpilot.model.engine import Engine, variant_context_begin
from jpilot.plugins.debug.surprisal import slip_scores, slip_sites, token_scores
from jpilot.plugins.text import line_starts

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


@pytest.mark.parametrize("bundle", ["tiny_bundle", "tiny_bundle_static"])
def test_what_if_scores_equal_scoring_each_variant_in_full(
    bundle: str, request: pytest.FixtureRequest
) -> None:
    """score_variants shares one prefill per context; it must equal plain scoring."""
    engine = Engine(request.getfixturevalue(bundle))
    text = "def f(x, y):\n    if x > 1 and y < 2:\n        return x + 1\n    return y\n" * 12
    ids = engine.tokenizer.encode(text)
    assert len(ids) > 2 * engine.n_positions  # cuts in several different contexts
    rng = np.random.default_rng(0)
    cuts = [(1, [[5], [6, 7]])]
    for cut in sorted(rng.choice(np.arange(2, len(ids)), 12, replace=False)):
        variants = [ids[cut : cut + 3], list(rng.integers(10, 200, int(rng.integers(1, 20))))]
        cuts.append((int(cut), [v for v in variants if v]))
    got = engine.score_variants(ids, cuts)
    longest = max(len(v) for _c, vs in cuts for v in vs)
    for (cut, variants), logps in zip(cuts, got, strict=True):
        begin = variant_context_begin(cut, engine.n_positions, longest)
        for variant, logp in zip(variants, logps, strict=True):
            full = engine.score(ids[begin:cut] + variant)  # logp of each token after the first
            assert logp == pytest.approx(float(full[cut - begin - 1 :].sum()), abs=1e-3)


def test_slip_scores_point_at_the_site_and_name_a_variant(tiny_bundle: Path) -> None:
    engine = Engine(tiny_bundle)
    text = "def f(x):\n    if x > 1:\n        return x\n    return 0\n"
    slips = slip_scores(engine, text)
    sites = {(a, b): variants for a, b, _line, variants in slip_sites(text, line_starts(text))}
    for slip in slips:  # the random model prefers some variants, each on its site
        assert slip.bits > 0 and slip.expected in sites[(slip.start, slip.end)]
        assert text[slip.start : slip.end] == slip.actual
        assert slip.line == text.count("\n", 0, slip.start)
