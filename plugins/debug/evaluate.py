"""`jpilot model eval-hints [BUNDLE]`: how right are the debug hints on whole files?

Each file (whole, as a user opens it) gets one injected bug (jpilot.model.detector.rewrites,
of the kinds asked for); the hints the plugin would publish with the default settings are
read as a user reads them. Per method, the bundle's detector and the surprisal hints (the
baseline: surprise z-scores and slips, plugins/debug/surprisal.py):
- top-1 / top-3: the bug's line is the first hint's, or among the first three hints';
- ranked top-3 (detector only): among the three likeliest sites, threshold ignored;
- repair: of the files with a hint on the bug's line, the share whose quick fix restores
  the original file exactly (surprisal hints that are not slips carry no fix);
- false hints per 1,000 lines of the same files unmodified (every hint there is false);
- seconds per file.
Then the same per rewrite kind, marking the kinds the detector was not trained on.
Intervals: Wilson 95% over files. Files: the corpus's held-out split by default,
`--corpus PATH ...` for folders or files, `--packages NAME ...` for installed
distributions (e.g. ones the training corpus leaves out).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jpilot.model.detector.rewrites import KINDS, apply, inject
from jpilot.plugins.debug.detected import detector_for
from jpilot.plugins.debug.measure import surprisal_hints
from jpilot.plugins.settings import HintsSettings


@dataclass
class Tally:
    """Counts of one method (or one method on one kind)."""

    files: int = 0
    top1: int = 0
    top3: int = 0
    ranked3: int = 0
    localized: int = 0  # a hint on the bug's line
    repaired: int = 0
    false_hints: int = 0
    clean_lines: int = 0
    seconds: float = 0.0
    kinds: dict[str, Tally] = field(default_factory=dict)
    # detector only: threshold -> [files with the bug among the first 3 sites at or above
    # it, sites at or above it on the clean files (at most 5 a file)]
    sweep: dict[float, list[int]] = field(default_factory=dict)

    def add(self, bug_line: int, hints: list[tuple[int, str | None]], text: str,
            ranked: list[int]) -> None:  # fmt: skip
        """Count one buggy file's hints: (line, fixed text or None), likeliest first."""
        lines = [line for line, _ in hints]
        self.files += 1
        self.top1 += lines[:1] == [bug_line]
        self.top3 += bug_line in lines[:3]
        self.ranked3 += bug_line in ranked[:3]
        fix = next((f for line, f in hints if line == bug_line), "")
        self.localized += bug_line in lines
        self.repaired += fix == text


def wilson(k: int, n: int) -> tuple[float, float]:
    """Return the 95% Wilson interval of k successes in n, in percent."""
    if n == 0:
        return 0.0, 0.0
    z, p = 1.96, k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(mid - half, 0), 100 * min(mid + half, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `jpilot model eval-hints`."""
    parser.add_argument("bundle", nargs="?", help="bundle folder (default: the embedded model)")
    parser.add_argument("--corpus", nargs="+", metavar="PATH", help="files or folders to use")
    parser.add_argument("--packages", nargs="+", metavar="NAME",
                        help="installed distributions whose files to use")  # fmt: skip
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("-n", type=int, default=60, help="files to use")
    parser.add_argument("--min-lines", type=int, default=20)
    parser.add_argument("--max-lines", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the surprisal row")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[0.05, 0.1, 0.2, 0.3],
                        help="detector thresholds to report the trade-off for")  # fmt: skip


def files_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Return (name, text) of the whole files to evaluate on."""
    if args.packages:
        from importlib import metadata

        from jpilot.model.train.corpus import package_files

        out = []
        for name in args.packages:
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                raise SystemExit(f"error: no installed distribution {name!r}") from None
            for rel, path in package_files(dist):
                out.append((f"{name}/{rel}", path.read_text(encoding="utf-8", errors="replace")))
        return out
    from jpilot.model.evaluate import held_out_files

    return held_out_files(args.corpus)


def usable(files: list[tuple[str, str]], lo: int, hi: int) -> list[tuple[str, str]]:
    """Keep the files that parse and have lo..hi lines."""
    out = []
    for name, text in files:
        try:
            ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        if lo <= text.count("\n") <= hi:
            out.append((name, text))
    return out


def detector_hints(detector: Any, engine: Any, text: str, cfg: HintsSettings):
    """The detector's published hints (line, fixed text), and its likeliest sites' (line,
    probability), at most hints.maxPerFile."""
    scored = detector.site_scores(text)
    _feats, by_token, probs = scored
    ranked = sorted(by_token, key=lambda i: -probs[i])[: cfg.max_per_file]
    lines = [(text.count("\n", 0, by_token[i][0].start), float(probs[i])) for i in ranked]
    found = detector.publish(text, engine, scored, None, cfg.max_per_file)
    return [(h.line, apply(text, h.start, h.end, h.new)) for h in found], lines


def evaluate(engine: Any, files: list[tuple[str, str]], kinds: tuple[str, ...], n: int,
             seed: int, baseline: bool = True,
             thresholds: tuple[float, ...] = ()) -> dict[str, Tally]:  # fmt: skip
    """Inject one bug per file into up to n files; return the tallies per method."""
    cfg, rng = HintsSettings(), random.Random(seed)
    files = list(files)
    rng.shuffle(files)
    detector = detector_for(engine)
    methods: dict[str, Any] = {}
    if detector is not None:
        methods["detector"] = lambda t: detector_hints(detector, engine, t, cfg)
    if baseline or detector is None:
        methods["surprisal"] = lambda t: (surprisal_hints(engine, t, cfg), [])
    tallies = {m: Tally() for m in methods}
    done = 0
    for _name, text in files:
        if done >= n:
            break
        made = inject(text, rng, kinds)
        if made is None:
            continue
        buggy, bug = made
        done += 1
        for method, run in methods.items():
            t0 = time.monotonic()
            hints, likeliest = run(buggy)
            clean, clean_likeliest = run(text)
            tally = tallies[method]
            tally.seconds += (time.monotonic() - t0) / 2
            ranked = [line for line, _p in likeliest]
            tally.add(bug.line, hints, text, ranked)
            tally.kinds.setdefault(bug.kind, Tally()).add(bug.line, hints, text, ranked)
            for t in thresholds if method == "detector" else ():
                row = tally.sweep.setdefault(t, [0, 0])
                row[0] += bug.line in [line for line, p in likeliest if p >= t][:3]
                row[1] += sum(p >= t for _line, p in clean_likeliest)
            tally.false_hints += len(clean)
            tally.clean_lines += text.count("\n") + 1
        print(f"\r{done}/{n} files", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return tallies


def report(tallies: dict[str, Tally], trained: list[str] | None) -> str:
    """Return the tables as Markdown."""
    rows = [
        "| method | files | top-1 | top-3 (95%) | ranked top-3 | repair | false hints "
        "per 1,000 clean lines | s per file |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, t in tallies.items():
        lo, hi = wilson(t.top3, t.files)
        ranked = f"{100 * t.ranked3 / max(t.files, 1):.0f}%" if method == "detector" else "-"
        rows.append(
            f"| {method} | {t.files} | {100 * t.top1 / max(t.files, 1):.0f}% | "
            f"{100 * t.top3 / max(t.files, 1):.0f}% ({lo:.0f}-{hi:.0f}) | {ranked} | "
            f"{100 * t.repaired / max(t.localized, 1):.0f}% of {t.localized} | "
            f"{1000 * t.false_hints / max(t.clean_lines, 1):.2f} | "
            f"{t.seconds / max(t.files, 1):.2f} |"
        )
    rows += ["", "| kind | files | " + " | ".join(f"{m} top-3 | {m} repair" for m in tallies)
             + " |", "|---|---|" + "---|---|" * len(tallies)]  # fmt: skip
    kinds = sorted({k for t in tallies.values() for k in t.kinds})
    for kind in kinds:
        held = " (held out)" if trained is not None and kind not in trained else ""
        cells = []
        count = 0
        for t in tallies.values():
            k = t.kinds.get(kind, Tally())
            count = k.files
            cells.append(f"{100 * k.top3 / max(k.files, 1):.0f}% | "
                         f"{100 * k.repaired / max(k.localized, 1):.0f}%")  # fmt: skip
        rows.append(f"| {kind}{held} | {count} | " + " | ".join(cells) + " |")
    sweep = tallies.get("detector", Tally()).sweep
    if sweep:
        t = tallies["detector"]
        rows += ["", "| detector threshold | bug among the first 3 sites | false per 1,000 "
                 "clean lines |", "|---|---|---|"]  # fmt: skip
        for bound, (hits, false) in sorted(sweep.items()):
            rows.append(f"| {bound:g} | {100 * hits / max(t.files, 1):.0f}% | "
                        f"{1000 * false / max(t.clean_lines, 1):.2f} |")  # fmt: skip
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """Evaluate the bundle's hints and print the tables."""
    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine

    engine = Engine(Path(args.bundle) if args.bundle else default_bundle_path())
    files = usable(files_of(args), args.min_lines, args.max_lines)
    if not files:
        raise SystemExit("error: no usable files (they must parse and have "
                         f"{args.min_lines}-{args.max_lines} lines)")  # fmt: skip
    tallies = evaluate(engine, files, tuple(args.kinds), args.n, args.seed, not args.no_baseline,
                       tuple(args.thresholds))  # fmt: skip
    trained = engine.bundle.manifest.detector.get("kinds")
    print(report(tallies, trained))
    if args.json:
        out = {m: {k: v for k, v in vars(t).items() if k != "kinds"} | {
            "kinds": {k: vars(x) | {"kinds": {}} for k, x in t.kinds.items()}}
            for m, t in tallies.items()}  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0
