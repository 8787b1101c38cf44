"""Measure the precision of the debug plugin's hints: a cheap bench/bug_hints.py.

`jpilot model eval --abilities` finds this through the `jpilot.measures` entry point.
Each held-out file (20 to 200 lines, parsing) gets one injected single-token bug that
keeps it parsing: a swapped comparison (`<`/`>`, `<=`/`>=`, `==`/`!=`), `and`/`or`, or an
off-by-one integer. The plugin's own hint finder runs with the server's default
settings; precision is the share of published hints that sit on the bug's line
(a hint elsewhere in a file with one known bug is counted as wrong, which is how a user
who reads it would find it). The hints per clean file (all false, by the same reading)
are reported too. Interval: 95% bootstrap over files, seeded.
"""

from __future__ import annotations

import ast
import io
import random
import tokenize
from typing import Any

import numpy as np

from jpilot.plugins.debug.surprisal import find_hints, slip_scores, token_scores
from jpilot.plugins.settings import HintsSettings

SWAPS = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "!=", "!=": "==", "and": "or",
         "or": "and"}  # fmt: skip
BOOTSTRAP_ROUNDS = 2000


def inject(text: str, rng: random.Random) -> tuple[str, int] | None:
    """Return a copy of `text` with one parsing single-token bug, and the bug's 0-based line."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    sites = [t for t in tokens if t.string in SWAPS or (t.type == tokenize.NUMBER
             and t.string.isdigit())]  # fmt: skip
    lines = text.splitlines(keepends=True)
    for t in rng.sample(sites, min(len(sites), 20)):
        if t.string in SWAPS:
            new = SWAPS[t.string]
        else:
            n = int(t.string)
            new = str(n + 1 if n == 0 or rng.random() < 0.5 else n - 1)
        (row, col), (_, end) = t.start, t.end
        changed = list(lines)
        changed[row - 1] = lines[row - 1][:col] + new + lines[row - 1][end:]
        buggy = "".join(changed)
        try:
            ast.parse(buggy)
        except SyntaxError:
            continue
        return buggy, row - 1
    return None


def _hints(engine: Any, text: str, cfg: HintsSettings) -> list[int]:
    """Return the lines the plugin would publish hints on, with the default settings."""
    scores = token_scores(engine, text)
    slips = slip_scores(engine, text) if cfg.slips else []
    found = find_hints(text, scores, cfg.threshold, cfg.max_per_file, cfg.min_bits, slips)
    return [h.line for h in found]


def measure(engine: Any, files: list[tuple[str, str]], n: int, seed: int) -> dict[str, float]:
    """Inject a bug in up to `n` held-out files; return hint precision and clean-file hints."""
    cfg, rng = HintsSettings(), random.Random(seed)
    usable = []
    for name, text in files:
        try:
            ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        if 20 <= text.count("\n") <= 200:
            usable.append((name, text))
    rng.shuffle(usable)
    right: list[int] = []
    published: list[int] = []
    clean: list[int] = []
    for _name, text in usable:
        if len(published) >= n:
            break
        bug = inject(text, rng)
        if bug is None:
            continue
        buggy, line = bug
        lines = _hints(engine, buggy, cfg)
        right.append(sum(h == line for h in lines))
        published.append(len(lines))
        clean.append(len(_hints(engine, text, cfg)))
    total = sum(published)
    precision = 100 * sum(right) / total if total else 0.0
    low = high = 0.0
    if published:
        r, p = np.array(right, dtype=float), np.array(published, dtype=float)  # (files,)
        draw = np.random.default_rng(seed).integers(0, len(r), size=(BOOTSTRAP_ROUNDS, len(r)))
        rates = 100 * r[draw].sum(axis=1) / np.maximum(p[draw].sum(axis=1), 1)  # (rounds,)
        low, high = (round(float(x), 1) for x in np.percentile(rates, [2.5, 97.5]))
    return {
        "hint_precision": round(precision, 1),
        "hint_precision_low": low,
        "hint_precision_high": high,
        "hint_files": float(len(published)),
        "hints_per_buggy_file": round(total / max(len(published), 1), 2),
        "hints_per_clean_file": round(sum(clean) / max(len(clean), 1), 2),
    }
