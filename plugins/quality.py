"""Tell degenerate model text from text worth showing, whatever the model.

A small model under greedy decoding falls into loops: the same line again and again
(`# -----` fourteen times), a phrase repeated ("of all of all of all"), a run of one
character, or a copy of the code it was given. None of that is ever shown; the docs
plugin says why instead, the completion postprocess drops it, and `jpilot model eval`
counts it (`repetition_rate`, `degenerate`). Pure functions of strings: no model here.
"""

from __future__ import annotations

import re

MIN_RUN = 8  # a run of one character this long (outside indentation) is degenerate
MAX_LINE_REPEATS = 2  # a non-blank line seen more than this often is degenerate
MIN_LOOPS = 3  # a phrase of 1 to 6 words said this many times back to back is a loop
MAX_NGRAM_SHARE = 0.5  # most words that may belong to repeated 3-grams
MAX_PROMPT_SHARE = 0.6  # most words that may be 4-grams copied from the prompt
RULE = re.compile(r"^[\s#*=\-_~+.]*$")  # lines of decoration only: `# -----`, `=====`
WORD = re.compile(r"\w+|[^\w\s]+")


def words(text: str) -> list[str]:
    """Split text into words and runs of punctuation, lowercased."""
    return [w.lower() for w in WORD.findall(text)]


def repetition_rate(text: str, n: int = 3) -> float:
    """Return the share of word n-grams that repeat an earlier n-gram of the text (0..1)."""
    toks = words(text)
    grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def _copied_share(text: str, prompt: str, n: int = 4) -> float:
    """Return the share of the text's word n-grams that also occur in the prompt."""
    toks = words(text)
    grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    if not grams:
        return 0.0
    ptoks = words(prompt)
    seen = {tuple(ptoks[i : i + n]) for i in range(len(ptoks) - n + 1)}
    return sum(g in seen for g in grams) / len(grams)


def looped(toks: list[str], times: int = MIN_LOOPS, longest: int = 6) -> bool:
    """Return whether some run of 1..`longest` words occurs `times` times back to back."""
    for size in range(1, longest + 1):
        for i in range(len(toks) - size * times + 1):
            unit = toks[i : i + size]
            if all(toks[i + k * size : i + (k + 1) * size] == unit for k in range(1, times)):
                return True
    return False


def degenerate(text: str, prompt: str = "") -> str | None:
    """Return why text is degenerate (a phrase for the user), or None if it may be shown."""
    body = text.strip()
    if not body:
        return "it was empty"
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    counts: dict[str, int] = {}
    for ln in lines:
        counts[ln] = counts.get(ln, 0) + 1
    if max(counts.values()) > MAX_LINE_REPEATS:
        return "it repeated a line"
    if "\ufffd" in body:  # bytes that decode to no character: a byte-level model adrift
        return "it held broken characters"
    prose = [ln for ln in lines if not RULE.match(ln)]
    if not prose:
        return "it was only decoration"
    if any(re.search(rf"(\S)\1{{{MIN_RUN - 1},}}", ln) for ln in prose):
        return "it was a run of one character"  # a `# ----` divider alone on its line is fine
    toks = words(body)
    if looped(toks) or repetition_rate(body) > MAX_NGRAM_SHARE:
        return "it repeated a phrase"
    if prompt and _copied_share(body, prompt) > MAX_PROMPT_SHARE:
        return "it mostly repeated the code it was given"
    return None
