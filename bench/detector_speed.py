"""How long the bug detector takes on a whole file, against the surprisal hints it replaces.

Scores the first 500 lines of a stdlib file (or --file) with the bundle's detector (its
features: the GPT-J in windows; its head; the what-if of the repairs) and, in the same
process, with the surprisal hints (token_scores + slip_scores), several times each, and
prints the median, min and max seconds and their ratio. The target (issue 19) is 1 s for
500 lines on 2 cores with the embedded model.

Run: python bench/detector_speed.py BUNDLE [--file F] [--lines 500] [--repeat 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def timed(fn, repeat: int) -> list[float]:
    """Return the seconds of `repeat` calls of fn (after one warm-up call)."""
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    """Time both methods on the same file and print the table."""
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a bundle with a detector")
    parser.add_argument("--file", type=Path, help="default: the stdlib's argparse.py")
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from jpilot.model.bundle import load_bundle
    from jpilot.model.detector.detector import Detector
    from jpilot.model.engine import Engine, EngineConfig
    from jpilot.plugins.debug.surprisal import slip_scores, token_scores

    source = args.file or Path(os.path.dirname(argparse.__file__)) / "argparse.py"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)[: args.lines]
    text = "".join(lines)
    while True:  # cut back to a whole statement so that the file parses
        try:
            compile(text, "f", "exec")
            break
        except SyntaxError:
            lines.pop()
            text = "".join(lines)
    bundle = load_bundle(args.bundle)
    engine = Engine(bundle, EngineConfig(threads=args.threads))
    detector = Detector(bundle, args.threads)
    tokens = len(bundle.tokenizer.encode(text))
    rows = {
        "detector": timed(lambda: detector.find(text, engine), args.repeat),
        "surprisal": timed(
            lambda: (token_scores(engine, text), slip_scores(engine, text)), args.repeat
        ),  # fmt: skip
    }
    print(f"{source.name}: {len(lines)} lines, {tokens} tokens, {args.threads} threads")
    print(f"{'method':<10} {'median s':>9} {'min':>7} {'max':>7}")
    for name, seconds in rows.items():
        print(f"{name:<10} {statistics.median(seconds):9.2f} {min(seconds):7.2f} "
              f"{max(seconds):7.2f}")  # fmt: skip
    ratio = statistics.median(rows["detector"]) / statistics.median(rows["surprisal"])
    print(f"detector / surprisal: {ratio:.2f}")


if __name__ == "__main__":
    main()
