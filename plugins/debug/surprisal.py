"""Score a document with the model and find the lines it finds unusually surprising.

"On the naturalness of buggy code" (Ray et al., ICSE 2016) found that lines a language
model finds surprising are disproportionately buggy. Each token gets a surprisal, the
bits by which the model preferred its own top choice over the token that is there
(log p(top) - log p(actual), so tokens the model is merely unsure about, such as fresh
identifiers, cost little). A line's score is its worst token's, compared with the rest
of the file as a robust z-score (median and MAD); lines above the threshold become hints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LOG2 = math.log(2)


@dataclass
class TokenScore:
    """One token of the document, where it is, and what the model thought of it."""

    start: int  # character offset of the token's first non-newline character
    end: int  # character offset after the token
    line: int  # 0-based line the token belongs to
    gap_bits: float  # log2 p(model's top choice) - log2 p(actual token), >= 0
    expected: str  # the model's top choice, decoded


@dataclass
class Hint:
    """One unusual line: where, how unusual, and what the model expected instead."""

    line: int  # 0-based line number
    start: int  # character offset (into the document) where the worst span starts
    end: int  # character offset where it ends
    score: float  # robust z-score of the line against the rest of the file
    gap_bits: float  # bits of the worst token
    actual: str  # the worst token as written (stripped)
    expected: str  # what the model expected there (stripped)


def line_starts(text: str) -> list[int]:
    """Return the character offset where each line starts."""
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def token_scores(engine, text: str, cancel=None) -> list[TokenScore]:
    """Score every token of `text` after the first; see the module docstring."""
    tok = engine.tokenizer
    ids, offsets = tok.encode_offsets(text)
    if len(ids) < 2:
        return []
    scored = engine.score_detail(ids, cancel)
    gaps = (scored.top_logp - scored.logp) / LOG2
    starts = line_starts(text)
    out = []
    for i in range(1, len(ids)):
        a, b = offsets[i]
        piece = text[a:b]
        a += piece.rfind("\n") + 1  # indentation tokens belong to the line they indent
        line = int(np.searchsorted(starts, a, side="right")) - 1
        out.append(TokenScore(a, b, line, float(gaps[i - 1]), tok.decode([int(scored.top[i - 1])])))
    return out


def find_hints(
    text: str,
    tokens: list[TokenScore],
    threshold: float = 3.5,
    max_hints: int = 5,
    min_bits: float = 4.0,
) -> list[Hint]:
    """Return the most surprising lines, most surprising first (see module docstring)."""
    worst: dict[int, TokenScore] = {}
    for t in tokens:
        if not text[t.start : t.end].strip():
            continue  # whitespace-only tokens: blank lines and trailing spaces
        if t.line not in worst or t.gap_bits > worst[t.line].gap_bits:
            worst[t.line] = t
    if len(worst) < 4:
        return []
    scores = np.array([t.gap_bits for t in worst.values()])
    median = float(np.median(scores))
    mad = float(np.median(np.abs(scores - median))) * 1.4826 or 1.0  # ~std for normal data
    hints = []
    for line, t in worst.items():
        z = (t.gap_bits - median) / mad
        if z >= threshold and t.gap_bits >= min_bits:
            actual = text[t.start : t.end]
            lead = len(actual) - len(actual.lstrip())
            hints.append(
                Hint(line, t.start + lead, t.end, z, t.gap_bits, actual.strip(), t.expected.strip())
            )
    hints.sort(key=lambda h: -h.score)
    return hints[:max_hints]


def rank_lines(tokens: list[TokenScore], text: str) -> list[int]:
    """Return line numbers ordered from most to least surprising (for evaluation)."""
    worst: dict[int, float] = {}
    for t in tokens:
        if text[t.start : t.end].strip():
            worst[t.line] = max(worst.get(t.line, 0.0), t.gap_bits)
    return sorted(worst, key=lambda line: -worst[line])
