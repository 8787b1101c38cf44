"""Evaluate surprisal debugging hints: do injected single-token bugs rank at the top?

For held-out real Python files it makes buggy copies (three by default), each with one
bug picked at random among:
a swapped comparison (< and >, <= and >=, == and !=), a swapped boolean operator
(and/or), an off-by-one integer constant, or a wrong variable (a name replaced by another
name used in the same file). The buggy file still parses. Then it reports how often the
buggy line ranks top-1 / top-3 among the file's lines by surprisal, how often it is among
the first three published hints, and how many hints the clean files get, for several
values of the `hints.threshold` setting. Several copies per file give more cases from the
few held-out files. Baselines in the same run: random line order, and longest-line-first.

Run: python bench/bug_hints.py [--bundle DIR] [--corpus PATH ...] [-n FILES]
"""

from __future__ import annotations

import argparse
import ast
import io
import keyword
import random
import statistics
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

SWAPS = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "!=", "!=": "==", "and": "or",
         "or": "and"}  # fmt: skip


@dataclass
class Bug:
    """One injected bug."""

    kind: str  # "comparison", "boolean", "off-by-one" or "variable"
    line: int  # 0-based line of the bug
    before: str  # the token as written
    after: str  # the token after injection


def candidate_sites(text: str) -> list[tuple[str, tokenize.TokenInfo]]:
    """Return (kind, token) for every token a bug could be injected into."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    sites = []
    for t in tokens:
        if t.type == tokenize.OP and t.string in SWAPS:
            sites.append(("comparison", t))
        elif t.type == tokenize.NAME and t.string in ("and", "or"):
            sites.append(("boolean", t))
        elif t.type == tokenize.NUMBER and t.string.isdigit():
            sites.append(("off-by-one", t))
        elif t.type == tokenize.NAME and not keyword.iskeyword(t.string):
            sites.append(("variable", t))
    return sites


def inject(text: str, rng: random.Random) -> tuple[str, Bug] | None:
    """Inject one bug that keeps the file parseable; None if no site works."""
    sites = candidate_sites(text)
    names = sorted({t.string for kind, t in sites if kind == "variable"})
    by_kind: dict[str, list[tokenize.TokenInfo]] = {}
    for kind, t in sites:
        by_kind.setdefault(kind, []).append(t)
    lines = text.splitlines(keepends=True)
    for _ in range(20):
        if not by_kind:
            return None
        kind = rng.choice(sorted(by_kind))
        t = rng.choice(by_kind[kind])
        if kind in ("comparison", "boolean"):
            new = SWAPS[t.string]
        elif kind == "off-by-one":
            n = int(t.string)
            new = str(n + 1 if n == 0 or rng.random() < 0.5 else n - 1)
        else:
            others = [n for n in names if n != t.string and len(n) > 1]
            if not others or len(t.string) < 2:
                continue
            new = rng.choice(others)
        (row, col), (end_row, end_col) = t.start, t.end
        if row != end_row:
            continue
        line = lines[row - 1]
        lines_new = list(lines)
        lines_new[row - 1] = line[:col] + new + line[end_col:]
        buggy = "".join(lines_new)
        try:
            ast.parse(buggy)
        except SyntaxError:
            continue
        return buggy, Bug(kind, row - 1, t.string, new)
    return None


def held_out(paths: list[str] | None, min_lines: int, max_lines: int) -> list[tuple[str, str]]:
    """Return held-out (name, text) files that parse and have a sensible length."""
    from jpilot.model.evaluate import held_out_files

    out = []
    for name, text in held_out_files(paths):
        n = text.count("\n")
        try:
            ast.parse(text)
        except SyntaxError:
            continue
        if min_lines <= n <= max_lines:
            out.append((name, text))
    return out


def code_lines(text: str) -> list[int]:
    """Return the 0-based numbers of lines with code (not only strings or comments) on them."""
    code = {tokenize.NAME, tokenize.OP, tokenize.NUMBER}
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return sorted({t.start[0] - 1 for t in tokens if t.type in code})


def rank_of(line: int, order: list[int]) -> int:
    """Return the 1-based rank of `line` in `order` (len + 1 if absent)."""
    return order.index(line) + 1 if line in order else len(order) + 1


def main() -> None:
    """Inject bugs, score clean and buggy files, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle (default: the embedded model)")
    parser.add_argument("--corpus", nargs="*", help="held-out files or folders")
    parser.add_argument("-n", type=int, default=60, help="files to use")
    parser.add_argument("--min-lines", type=int, default=20)
    parser.add_argument("--max-lines", type=int, default=200)
    parser.add_argument("--bugs-per-file", type=int, default=3, help="buggy copies per file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thresholds", type=float, nargs="*", default=[8, 10, 12, 14, 16],
                        help="hints.threshold values to report published hints for")  # fmt: skip
    args = parser.parse_args()

    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine
    from jpilot.plugins.debug.surprisal import find_hints, rank_lines, slip_scores, token_scores
    from jpilot.plugins.settings import HintsSettings

    engine = Engine(args.bundle or default_bundle_path())
    hints = HintsSettings()  # the server's defaults
    rng = random.Random(args.seed)
    files = held_out(args.corpus, args.min_lines, args.max_lines)
    rng.shuffle(files)
    ranks: dict[str, list[int]] = {"model": [], "surprise only": [], "random": [],
                                   "longest line": []}  # fmt: skip
    # per threshold: was the bug among the first 3 hints (per copy); hints per clean file
    thresholds = sorted({*args.thresholds, hints.threshold})  # the default is always shown
    in_hints: dict[float, list[bool]] = {t: [] for t in thresholds}
    clean_hints: dict[float, list[int]] = {t: [] for t in thresholds}
    lines_total, kinds = 0, dict[str, int]()
    t0 = time.monotonic()
    used = 0
    for _name, clean in files[: args.n]:
        bugs = [b for b in (inject(clean, rng) for _ in range(args.bugs_per_file)) if b]
        if not bugs:
            continue
        used += 1
        for buggy, bug in bugs:  # each bug in its own copy of the file
            kinds[bug.kind] = kinds.get(bug.kind, 0) + 1
            scores = token_scores(engine, buggy)
            slips = slip_scores(engine, buggy) if hints.slips else []
            ranks["model"].append(rank_of(bug.line, rank_lines(scores, buggy, slips)))
            ranks["surprise only"].append(rank_of(bug.line, rank_lines(scores, buggy)))
            lines = code_lines(buggy)
            ranks["random"].append(rank_of(bug.line, rng.sample(lines, len(lines))))
            by_length = sorted(lines, key=lambda i: -len(buggy.splitlines()[i].strip()))
            ranks["longest line"].append(rank_of(bug.line, by_length))
            for t in thresholds:
                found = find_hints(buggy, scores, t, hints.max_per_file, hints.min_bits, slips)
                hint_lines = [h.line for h in found]
                in_hints[t].append(bug.line in hint_lines[:3])
        clean_scores = token_scores(engine, clean)
        clean_slips = slip_scores(engine, clean) if hints.slips else []
        for t in thresholds:
            found = find_hints(
                clean, clean_scores, t, hints.max_per_file, hints.min_bits, clean_slips
            )
            clean_hints[t].append(len(found))
        lines_total += len(code_lines(clean))
        print(f"\r{used} files", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    n = len(ranks["model"])
    if not n:
        sys.exit("no held-out files qualified; pass --corpus or relax --min/--max-lines")
    print(f"\n{used} held-out files ({lines_total / used:.0f} code lines on average), {n} "
          f"buggy copies ({args.bugs_per_file} per file, one bug each): "
          f"{', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}; "
          f"{(time.monotonic() - t0) / (n + used):.2f} s per scored file")  # fmt: skip
    print(f"{'ranking':<14} {'top-1':>7} {'top-3':>7} {'median rank':>12}")
    for label, r in ranks.items():
        top1 = 100 * sum(x == 1 for x in r) / n
        top3 = 100 * sum(x <= 3 for x in r) / n
        print(f"{label:<14} {top1:6.1f}% {top3:6.1f}% {statistics.median(r):12.1f}")
    print(f"\npublished hints by hints.threshold (default {hints.threshold:g}):")
    print(f"{'threshold':>9} {'bug in first 3':>15} {'clean: per file':>16} {'per 100 lines':>14}")
    for t in thresholds:
        print(f"{t:9g} {100 * sum(in_hints[t]) / n:14.1f}% {statistics.mean(clean_hints[t]):16.2f} "
              f"{100 * sum(clean_hints[t]) / lines_total:14.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
