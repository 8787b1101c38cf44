"""Benchmark completion latency on real held-out code with a real bundle.

Completes held-out lines the way `jpilot model eval --branches 1` does (FIM, token
healing, plain greedy, so the drafts are all that differs) twice per case: with
prompt-lookup drafts off and on. Checks that both give the same text, and prints
per-completion latency (median, p95) for one-line completions (stop at the newline) and
for multi-line completions (up to 64 tokens), with the speed-up.

Run: python bench/completion.py [--bundle DIR] [-n 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    """Run both settings over the same cases and print the table."""
    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine
    from jpilot.model.evaluate import held_out_files, predict, sample_cases

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--corpus", nargs="*")
    parser.add_argument("-n", type=int, default=100)
    args = parser.parse_args()
    engine = Engine(args.bundle or default_bundle_path())
    cases = sample_cases(held_out_files(args.corpus), args.n, seed=0)
    print(f"{len(cases)} held-out completions, {engine.bundle.path}")
    print(f"{'mode':<12} {'drafts':>6} {'median ms':>10} {'p95 ms':>8} {'speed-up':>9} {'same':>6}")
    for mode, stop in (("one line", ["\n"]), ("multi-line", [])):
        times: dict[int, list[float]] = {0: [], 6: []}
        outputs: dict[int, list[str]] = {0: [], 6: []}
        for case in cases:
            for draft in (0, 6):
                engine.cache.clear()  # each case cold, so both settings do the same prefill
                opts = argparse.Namespace(context=768, suffix_tokens=128, no_fim=False,
                                          no_heal=False, draft_tokens=draft, max_tokens=64,
                                          stop=stop, branches=1)  # fmt: skip
                t0 = time.perf_counter()
                outputs[draft].append(predict(engine, case, opts))
                times[draft].append(time.perf_counter() - t0)
        same = sum(a == b for a, b in zip(outputs[0], outputs[6], strict=True))
        base = statistics.median(times[0])
        for draft in (0, 6):
            t = sorted(times[draft])
            med, p95 = statistics.median(t), t[int(0.95 * (len(t) - 1))]
            print(f"{mode:<12} {draft:>6} {med * 1000:10.1f} {p95 * 1000:8.1f} "
                  f"{base / med:8.2f}x {same:>3}/{len(cases)}")  # fmt: skip


if __name__ == "__main__":
    main()
