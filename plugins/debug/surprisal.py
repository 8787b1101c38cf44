"""Score a document with the model and find the lines it finds unusually surprising.

"On the naturalness of buggy code" (Ray et al., ICSE 2016) found that lines a language
model finds surprising are disproportionately buggy. Each token gets a surprisal, the
bits by which the model preferred its own top choice over the token that is there
(log p(top) - log p(actual), so tokens the model is merely unsure about, such as fresh
identifiers, cost little).

Each token is compared with the file's other tokens of the same kind (name, attribute,
keyword, operator, number) as a robust z-score (median and MAD): a number or an operator
is judged against numbers and operators, which the model predicts far better than names.
Strings and comments are prose, whose surprise says nothing about bugs, so they are left
out. A token that continues an identifier begun by the token before it (`conf` + `ig`) only
spells out a name the model has already been surprised by or not, so its z counts half
(PIECE_WEIGHT): which name is used is decided at the name's first token. A line's score is
its worst token's z; lines above the threshold become hints.

Slips. Surprise reads code left to right, so it cannot tell `<` from `>`: what decides
between them comes after. So every comparison operator, `and`/`or` and small integer is
also scored what-if: the rest of its line and the next line are scored as written and
with each typical slip undone (the other comparison operators, `==`/`!=`, `and`/`or`,
n +/- 1), with the code before as context (Engine.score_variants). When a variant is
likelier than the code as written, the site gets a score of SLIP_WEIGHT per bit of
preference, on the same scale as the z-scores, and its hint says what to write instead.
On bench/bug_hints.py's bugs this moved the bug into the top 3 lines for 9 to 16 more
buggy copies in 100 (six draws), with the hints on clean files unchanged.
"""

from __future__ import annotations

import io
import keyword
import math
import tokenize
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from jpilot.plugins.text import line_starts

LOG2 = math.log(2)
MIN_SPREAD_BITS = 1.0  # floor of a kind's spread, so a kind that never surprises stays sane
# Weight of an identifier's later pieces. Over four draws of bench/bug_hints.py's bugs
# (420 buggy copies of held-out files) it moved the bug to the top line in 2 to 6 more
# copies in 100, and into the top 3 in 0 to 5 more; weights from 0 to 0.5 did the same.
PIECE_WEIGHT = 0.5
# A slip's score per bit by which the model prefers the variant; 3 kept the hints on clean
# files at 1.9 per file on bench draws where 4 raised them to 2.3 and 6 to 2.5.
SLIP_WEIGHT = 3.0
SLIP_WINDOW = 48  # most tokens of code after a slip site that judge it
COMPARISONS = ("<", ">", "<=", ">=")


@dataclass
class TokenScore:
    """One token of the document, where it is, and what the model thought of it."""

    start: int  # character offset of the token's first non-newline character
    end: int  # character offset after the token
    line: int  # 0-based line the token belongs to
    gap_bits: float  # log2 p(model's top choice) - log2 p(actual token), >= 0
    expected: str  # the model's top choice, decoded
    kind: str = "code"  # name, attr, keyword, op, number, prose or code (see code_kinds)
    piece: bool = False  # continues an identifier that an earlier token began


@dataclass
class Hint:
    """One unusual line: where, how unusual, and what the model expected instead."""

    line: int  # 0-based line number
    start: int  # character offset (into the document) where the worst span starts
    end: int  # character offset where it ends
    score: float  # robust z-score of the line's worst token against its kind in the file
    gap_bits: float  # bits of the worst token
    actual: str  # the worst token as written (stripped)
    expected: str  # what the model expected there (stripped)
    kind: str = "code"  # the worst token's kind (see code_kinds)
    slip: bool = False  # a what-if slip (score from preference bits), not a surprise


@dataclass
class Slip:
    """A token that reads better written another way, given the code after it too."""

    line: int  # 0-based line number
    start: int  # character offset of the token
    end: int  # character offset after it
    bits: float  # log2 p(variant) - log2 p(as written), over the code after the site; > 0
    actual: str  # the token as written
    expected: str  # the likelier variant
    kind: str  # op, keyword or number


def token_scores(engine, text: str, cancel=None) -> list[TokenScore]:
    """Score every token of `text` after the first; see the module docstring."""
    tok = engine.tokenizer
    ids, offsets = tok.encode_offsets(text)
    if len(ids) < 2:
        return []
    scored = engine.score_detail(ids, cancel)
    gaps = (scored.top_logp - scored.logp) / LOG2
    starts = line_starts(text)
    kind_at = code_kinds(text, starts)
    out = []
    for i in range(1, len(ids)):
        a, b = offsets[i]
        piece = text[a:b]
        a += piece.rfind("\n") + 1  # indentation tokens belong to the line they indent
        line = int(np.searchsorted(starts, a, side="right")) - 1
        lead = len(text[a:b]) - len(text[a:b].lstrip())
        expected = tok.decode([int(scored.top[i - 1])])
        first = a + lead
        inside = 0 < first < b and _word_char(text[first]) and _word_char(text[first - 1])
        out.append(TokenScore(a, b, line, float(gaps[i - 1]), expected, kind_at(first), inside))
    return out


def _word_char(ch: str) -> bool:
    """Return whether `ch` can be part of a Python identifier."""
    return ch.isalnum() or ch == "_"


def code_kinds(text: str, starts: list[int]) -> Callable[[int], str]:
    """Return a function from a character offset to the kind of Python token there.

    Kinds: name, attr (a name after a dot), keyword, op, number, prose (strings and
    comments) and code (anything else, or everything when `text` does not tokenize).
    """
    spans: list[tuple[int, int, str]] = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = _KINDS.get(t.type)
            if kind is None:
                continue
            if t.type == tokenize.NAME and keyword.iskeyword(t.string):
                kind = "keyword"
            a = starts[t.start[0] - 1] + t.start[1]
            if kind == "name" and spans and spans[-1][2] == "op" and text[a - 1 : a] == ".":
                kind = "attr"
            spans.append((a, starts[t.end[0] - 1] + t.end[1], kind))
    except (tokenize.TokenError, SyntaxError, IndexError):
        pass  # a half-typed file: what tokenized so far keeps its kinds
    begins = [a for a, _b, _k in spans]

    def kind_at(offset: int) -> str:
        i = bisect_right(begins, offset) - 1
        return spans[i][2] if i >= 0 and offset < spans[i][1] else "code"

    return kind_at


_KINDS = {tokenize.NAME: "name", tokenize.OP: "op", tokenize.NUMBER: "number",
          tokenize.STRING: "prose", tokenize.COMMENT: "prose"}  # fmt: skip


def slip_variants(token: tokenize.TokenInfo) -> list[str]:
    """Return what a token would be if it were a typical slip's correction (see top)."""
    s = token.string
    if token.type == tokenize.OP and s in COMPARISONS:
        return [op for op in COMPARISONS if op != s]
    if token.type == tokenize.OP and s in ("==", "!="):
        return ["!=" if s == "==" else "=="]
    if token.type == tokenize.NAME and s in ("and", "or"):
        return ["or" if s == "and" else "and"]
    if token.type == tokenize.NUMBER and s.isdigit() and len(s) < 4:
        n = int(s)
        return [str(n + 1)] + ([str(n - 1)] if n > 0 else [])
    return []


def slip_sites(text: str, starts: list[int]) -> list[tuple[int, int, int, list[str]]]:
    """Return (start, end, line, variants) for each token that could be a slip."""
    sites = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(text).readline):
            variants = slip_variants(t)
            if variants and t.start[0] == t.end[0]:
                a = starts[t.start[0] - 1] + t.start[1]
                sites.append((a, a + len(t.string), t.start[0] - 1, variants))
    except (tokenize.TokenError, SyntaxError, IndexError):
        pass  # a half-typed file: the sites found so far
    return sites


def slip_scores(engine, text: str, cancel=None) -> list[Slip]:
    """Score each possible slip what-if; return those whose variant is likelier."""
    tok = engine.tokenizer
    ids, offsets = tok.encode_offsets(text)
    starts = line_starts(text)
    begins = [a for a, _b in offsets]
    cuts, found = [], []
    for a, b, line, variants in slip_sites(text, starts):
        cut = bisect_right(begins, a) - 1  # the token holding the site's first character
        if cut < 1:
            continue
        s = begins[cut]
        e = starts[line + 2] if line + 2 < len(starts) else len(text)  # to the next line's end
        written = tok.encode(text[s:e])
        if len(written) > SLIP_WINDOW:  # a long line: judge by its own line's rest only
            e = starts[line + 1] if line + 1 < len(starts) else len(text)
            written = tok.encode(text[s:e])
        options = [tok.encode(text[s:a] + v + text[b:e])[:SLIP_WINDOW] for v in variants]
        cuts.append((cut, [written[:SLIP_WINDOW], *options]))
        found.append((a, b, line, variants))
    slips = []
    for (a, b, line, variants), logps in zip(
        found, engine.score_variants(ids, cuts, cancel), strict=True
    ):
        best = int(np.argmax(logps[1:]))
        bits = (logps[1 + best] - logps[0]) / LOG2
        if bits > 0:
            kind = "number" if text[a].isdigit() else "keyword" if text[a].isalpha() else "op"
            slips.append(Slip(line, a, b, bits, text[a:b], variants[best], kind))
    return slips


def line_scores(text: str, tokens: list[TokenScore]) -> dict[int, tuple[float, TokenScore]]:
    """Return {line: (z, worst token)} for lines with code (see the module docstring)."""
    code = [t for t in tokens if t.kind != "prose" and text[t.start : t.end].strip()]
    by_kind: dict[str, list[float]] = {}
    for t in code:
        by_kind.setdefault(t.kind, []).append(t.gap_bits)
    spread = {}
    for kind, gaps in by_kind.items():
        values = np.array(gaps)
        median = float(np.median(values))
        mad = float(np.median(np.abs(values - median))) * 1.4826  # ~std for normal data
        spread[kind] = (median, max(mad, MIN_SPREAD_BITS))
    worst: dict[int, tuple[float, TokenScore]] = {}
    for t in code:
        median, mad = spread[t.kind]
        z = (t.gap_bits - median) / mad * (PIECE_WEIGHT if t.piece else 1.0)
        if t.line not in worst or z > worst[t.line][0]:
            worst[t.line] = (z, t)
    return worst


def find_hints(
    text: str,
    tokens: list[TokenScore],
    threshold: float = 13.0,
    max_hints: int = 5,
    min_bits: float = 4.0,
    slips: Sequence[Slip] = (),
) -> list[Hint]:
    """Return the most surprising lines, most surprising first (see module docstring)."""
    worst = line_scores(text, tokens)
    if len(worst) < 4:
        return []
    best: dict[int, Hint] = {}
    for line, (z, t) in worst.items():
        if z >= threshold and t.gap_bits >= min_bits:
            actual = text[t.start : t.end]
            lead = len(actual) - len(actual.lstrip())
            span = (t.start + lead, t.end)
            expected = t.expected.strip()
            best[line] = Hint(line, *span, z, t.gap_bits, actual.strip(), expected, t.kind)
    for slip in slips:
        score = SLIP_WEIGHT * slip.bits
        if score >= threshold and (slip.line not in best or score > best[slip.line].score):
            best[slip.line] = Hint(slip.line, slip.start, slip.end, score, slip.bits,
                                   slip.actual, slip.expected, slip.kind, slip=True)  # fmt: skip
    return sorted(best.values(), key=lambda h: -h.score)[:max_hints]


def rank_lines(tokens: list[TokenScore], text: str, slips: Sequence[Slip] = ()) -> list[int]:
    """Return line numbers ordered from most to least surprising (for evaluation)."""
    score = {line: z for line, (z, _t) in line_scores(text, tokens).items()}
    for slip in slips:
        score[slip.line] = max(score.get(slip.line, -math.inf), SLIP_WEIGHT * slip.bits)
    return sorted(score, key=lambda line: -score[line])
