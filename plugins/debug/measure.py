"""Measure the debug plugin's hints on whole files with one injected bug: a cheap
bench/bug_hints.py (and `jpilot model eval-hints`, which has the per-kind table).

`jpilot model eval --abilities` finds this through the `jpilot.measures` entry point.
Each held-out file (20 to 200 lines, parsing) gets one injected single-span bug of a
random kind of jpilot.model.detector.rewrites that keeps it parsing (a swapped operator,
an off-by-one integer, `is`/`==`, a dropped or added `not`, True/False, a wrong variable
or attribute, swapped arguments). The plugin's own hints run with the server's default
settings (the bundle's detector if it has one, else surprisal and slips). Scores:
precision, the share of published hints that sit on the bug's line (a hint elsewhere in
a file with one known bug is counted as wrong, which is how a user who reads it would
find it); top-3, the share of files whose bug line is among the first 3 hints; repair,
the share of those whose hint's fix restores the original; and the hints per clean file
and per 1,000 clean lines (all false, by the same reading). Interval: 95% bootstrap of
precision over files, seeded.
"""

from __future__ import annotations

import ast
import random
from typing import Any

import numpy as np

from jpilot.model.detector.rewrites import apply, inject
from jpilot.plugins.debug.detected import detector_for
from jpilot.plugins.debug.surprisal import find_hints, slip_scores, token_scores
from jpilot.plugins.settings import HintsSettings

BOOTSTRAP_ROUNDS = 2000


def _hints(engine: Any, text: str, cfg: HintsSettings) -> list[tuple[int, str | None]]:
    """Return (line, the text with the hint's fix applied or None) of each hint the plugin
    would publish with the default settings: the bundle's detector's, else surprisal's."""
    detector = detector_for(engine)
    if detector is not None:
        return [(h.line, apply(text, h.start, h.end, h.new))
                for h in detector.find(text, engine, None, cfg.max_per_file)]  # fmt: skip
    return surprisal_hints(engine, text, cfg)


def surprisal_hints(engine: Any, text: str, cfg: HintsSettings) -> list[tuple[int, str | None]]:
    """The surprisal and slip hints the plugin publishes: (line, fixed text or None)."""
    scores = token_scores(engine, text)
    slips = slip_scores(engine, text) if cfg.slips else []
    found = find_hints(text, scores, cfg.threshold, cfg.max_per_file, cfg.min_bits, slips)
    return [(h.line, apply(text, h.start, h.end, h.expected) if h.slip else None) for h in found]


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
    top3, repaired, clean_lines = 0, 0, 0
    for _name, text in usable:
        if len(published) >= n:
            break
        made = inject(text, rng)
        if made is None:
            continue
        buggy, bug = made
        hints = _hints(engine, buggy, cfg)
        lines = [line for line, _fix in hints]
        right.append(sum(h == bug.line for h in lines))
        published.append(len(lines))
        top3 += bug.line in lines[:3]
        fix = next((f for line, f in hints if line == bug.line), None)
        repaired += fix == text
        clean.append(len(_hints(engine, text, cfg)))
        clean_lines += text.count("\n") + 1
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
        "hint_top3": round(100 * top3 / max(len(published), 1), 1),
        "hint_repair": round(100 * repaired / max(top3, 1), 1),
        "hint_false_per_kline": round(1000 * sum(clean) / max(clean_lines, 1), 2),
    }
