"""Surprisal hints: token-to-line attribution, robust outlier selection, bug injection."""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

from jpilot.model.engine import variant_context_begin
from jpilot.plugins.debug.surprisal import (
    SLIP_WEIGHT,
    Slip,
    TokenScore,
    code_kinds,
    find_hints,
    rank_lines,
    slip_sites,
)
from jpilot.plugins.text import line_starts

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bug_hints import candidate_sites, inject  # noqa: E402

TEXT = "a = 1\nb = 2\nc = 3\nd = 4\ne = a > b\n"


def tokens_with(gaps: dict[int, float]) -> list[TokenScore]:
    """One token per line (its first non-space span), with the given gap per line."""
    out = []
    for line, start in enumerate(line_starts(TEXT)[:-1]):
        end = TEXT.index("\n", start)
        out.append(TokenScore(start, end, line, gaps.get(line, 1.0), "x"))
    return out


def test_an_outlier_line_becomes_the_only_hint() -> None:
    tokens = tokens_with({0: 1.0, 1: 1.2, 2: 0.9, 3: 1.1, 4: 17.0})  # z ~ 16 > 13 (default)
    hints = find_hints(TEXT, tokens)
    assert [h.line for h in hints] == [4]
    hint = hints[0]
    assert TEXT[hint.start : hint.end] == "e = a > b" and hint.gap_bits == 17.0
    assert rank_lines(tokens, TEXT)[0] == 4


def test_no_hints_on_uniform_or_tiny_files() -> None:
    assert find_hints(TEXT, tokens_with({})) == []
    assert find_hints(TEXT, tokens_with({4: 9.0})[:3]) == []  # too few lines to compare
    # an outlier that is still below min_bits is not worth a hint
    low = tokens_with({0: 0.1, 1: 0.12, 2: 0.09, 3: 0.11, 4: 2.0})
    assert find_hints(TEXT, low) == []


def test_hints_are_capped_and_sorted() -> None:
    tokens = tokens_with({0: 0.5, 1: 0.6, 2: 20.0, 3: 0.55, 4: 16.0})
    assert [h.line for h in find_hints(TEXT, tokens)] == [2, 4]
    assert [h.line for h in find_hints(TEXT, tokens, max_hints=1)] == [2]


def test_injected_bugs_parse_and_change_one_line() -> None:
    source = (
        "def clamp(value, low, high):\n"
        "    if value < low and low <= high:\n"
        "        return low\n"
        "    return min(value, high) + 0\n"
    )
    assert {kind for kind, _ in candidate_sites(source)} == {
        "comparison", "boolean", "off-by-one", "variable"
    }  # fmt: skip
    rng = random.Random(3)
    seen = set()
    for _ in range(40):
        result = inject(source, rng)
        assert result is not None
        buggy, bug = result
        ast.parse(buggy)
        changed = [i for i, (a, b) in enumerate(zip(source.splitlines(), buggy.splitlines(),
                                                    strict=True)) if a != b]  # fmt: skip
        assert changed == [bug.line] and bug.before != bug.after
        seen.add(bug.kind)
    assert seen == {"comparison", "boolean", "off-by-one", "variable"}


def test_code_kinds_tell_names_operators_numbers_and_prose_apart() -> None:
    text = 'x = obj.size + 1  # note\nif x and y:\n    s = "text"\n'
    kind_at = code_kinds(text, line_starts(text))
    at = {word: kind_at(text.index(word)) for word in ("x", "obj", "size", "+", "1", "# note",
                                                       "if", "and", '"text"')}  # fmt: skip
    assert at == {"x": "name", "obj": "name", "size": "attr", "+": "op", "1": "number",
                  "# note": "prose", "if": "keyword", "and": "keyword",
                  '"text"': "prose"}  # fmt: skip
    broken = "def f(:\n    return 'unterminated\n"  # a half-typed file never raises
    assert kind_at(0) == "name" and code_kinds(broken, line_starts(broken))(0) in (
        "keyword",
        "code",
    )


def _scored(text: str, gaps: dict[str, float]) -> list[TokenScore]:
    """TokenScores for the given words of `text` (first occurrence), kinds from the text."""
    kind_at = code_kinds(text, line_starts(text))
    starts = line_starts(text)
    out = []
    for word, gap in gaps.items():
        a = text.index(word)
        line = max(i for i, s in enumerate(starts) if s <= a)
        out.append(TokenScore(a, a + len(word), line, gap, "?", kind_at(a)))
    return out


def test_each_token_is_judged_against_its_own_kind_and_prose_never_hints() -> None:
    text = (
        "alpha = beta + gamma\n"
        "delta = alpha - epsilon\n"
        "zeta = delta * eta\n"
        "theta = zeta / iota\n"
        "kappa = theta < lam\n"
        '"""A docstring that surprises the model a lot."""\n'
    )
    # names are often surprising (fresh identifiers); operators almost never
    gaps = {"alpha": 6.0, "beta": 2.0, "gamma": 9.0, "delta": 1.0, "epsilon": 4.0,
            "zeta": 3.0, "eta": 8.0, "theta": 5.0, "iota": 7.0, "kappa": 2.5, "lam": 6.5,
            "+": 0.1, "-": 0.2, "*": 0.1, "/": 0.15, "<": 5.0, '"""A': 30.0}  # fmt: skip
    tokens = _scored(text, gaps)
    # by raw bits the docstring, then `gamma` (9 bits) would lead; against its kind the
    # operator `<` (5 bits where operators cost ~0.1) is the outlier
    assert rank_lines(tokens, text)[0] == 4
    hints = find_hints(text, tokens, threshold=3.0, min_bits=4.0)
    assert [h.line for h in hints] == [4] and hints[0].actual == "<"
    assert 5 not in rank_lines(tokens, text)  # prose is not ranked at all


def test_later_pieces_of_an_identifier_count_half() -> None:
    text = "alpha = bravo\ncharlie = delta\necho = foxtrot\ngolf = hotel\n"
    words = ("alpha", "bravo", "charlie", "delta", "echo", "fox", "golf", "hotel")
    tokens = _scored(text, dict.fromkeys(words, 1.0))
    # `delta` is a name the model did not expect at all; in `foxtrot` only the second
    # piece `trot` surprised it, a bit more: the name was chosen where `fox` came
    tokens[3].gap_bits = 9.0
    trot = text.index("trot")
    tokens.append(TokenScore(trot, trot + 4, 2, 10.0, "?", "name", piece=True))
    assert rank_lines(tokens, text)[0] == 1
    tokens[-1].piece = False  # the same bits on a token that begins a name would lead
    assert rank_lines(tokens, text)[0] == 2


def test_slip_sites_offer_the_typical_slips_of_each_token() -> None:
    text = "if a < b and c == 0:\n    d = [1, 2]\nx = 'y < z' or 1.5\n"
    sites = {
        text[a:b]: (line, variants) for a, b, line, variants in slip_sites(text, line_starts(text))
    }
    assert sites == {
        "<": (0, [">", "<=", ">="]),
        "and": (0, ["or"]),
        "==": (0, ["!="]),
        "0": (0, ["1"]),  # no -1 for 0
        "1": (1, ["2", "0"]),
        "2": (1, ["3", "1"]),
        "or": (2, ["and"]),
    }  # nothing inside the string, and no float
    half = "x = (a <\n"  # a half-typed file: the sites before the error, no crash
    assert slip_sites(half, line_starts(half)) == [(7, 8, 0, [">", "<=", ">="])]


def test_a_slip_becomes_a_hint_that_says_what_to_write() -> None:
    tokens = tokens_with({})  # nothing surprising one-sidedly
    gt = TEXT.index(">")
    slip = Slip(4, gt, gt + 1, 14.0 / SLIP_WEIGHT, ">", "<", "op")
    (hint,) = find_hints(TEXT, tokens, slips=[slip])
    assert (hint.line, hint.start, hint.end, hint.actual, hint.expected) == (
        4,
        gt,
        gt + 1,
        ">",
        "<",
    )
    assert hint.slip and hint.score == 14.0 and hint.gap_bits == slip.bits
    assert rank_lines(tokens, TEXT, [slip])[0] == 4
    slip.bits = 12.0 / SLIP_WEIGHT  # below the threshold of 13: ranked first, not published
    assert find_hints(TEXT, tokens, slips=[slip]) == []
    assert rank_lines(tokens, TEXT, [slip])[0] == 4
    # on a line that is also surprising, the higher score of the two is the hint
    surprising = tokens_with({0: 1.0, 1: 1.2, 2: 0.9, 3: 1.1, 4: 17.0})
    (hint,) = find_hints(TEXT, surprising, slips=[slip])
    assert not hint.slip and hint.actual == "e = a > b"


def test_variant_contexts_fit_the_window_and_keep_most_of_it() -> None:
    for n_positions, longest in ((512, 48), (256, 20), (64, 31)):
        room = n_positions - longest - 1
        for cut in range(1, 3 * n_positions):
            begin = variant_context_begin(cut, n_positions, longest)
            assert 0 <= begin <= cut - 1  # ids[cut - 1] is in the context
            assert (cut - 1 - begin) + 1 + longest <= n_positions  # and so is the variant
            assert begin == 0 or cut - begin >= room - room // 4
