"""`jpilot model eval --repo N`: rest-of-line completion through the server's own pipeline,
with up to N sibling files of the same package open, and the confidence gate's trade-off.

`jpilot model eval` (jpilot.model.evaluate) prompts the model directly. With `--repo` each
line goes through `jpilot.lsp.pipeline.complete`, exactly as a completion request does
(the context plugin's prompt with its snippets, branching, healing, post-processing), once
with no other file open and once with up to N other files of the same folder open as
editor tabs. Lines are cut and scored as `jpilot model eval` does; the document holds
the file without the rest of the line, as while the user types it. A suggestion is right
when its first line equals the rest of the line.

It then reports, for the run with siblings open, exact match among the suggestions shown
against coverage (the share of requests that show one) at each `completion.minConfidence`.
With `--record` the highest gate that still shows a suggestion for COVERAGE_FLOOR % of the
requests goes into the bundle's manifest: `minConfidence: "auto"` (the default) uses it.
It lives in lsp/ because it drives the plugins; `jpilot model eval` without `--repo` runs
the model layer's evaluation unchanged.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import sys
import threading
from collections import defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

from jpilot.model import evaluate as model_eval
from jpilot.model.progress import track

GATES = (0.0, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9)  # minConfidence values
COVERAGE_FLOOR = 40.0  # --record: the highest gate that still shows this % of requests


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`jpilot model eval`'s options, plus --repo."""
    model_eval.add_arguments(parser)
    parser.add_argument(
        "--repo", type=int, default=0, metavar="N",
        help="complete through the server's pipeline with up to N sibling files open "
        "(0: the model-level eval); reports the minConfidence trade-off too",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run `jpilot model eval`, or the pipeline eval when --repo is given."""
    if args.repo <= 0:
        return model_eval.run(args)
    if args.repo > 20:
        print("error: --repo takes at most 20 sibling files", file=sys.stderr)
        return 2
    return run_repo(args)


def siblings_of(files: list[tuple[str, str]], n: int, seed: int) -> dict[str, list[str]]:
    """Return, per file, up to n other files of its folder (a seeded random choice)."""
    folders: dict[str, list[str]] = defaultdict(list)
    for name, _ in files:
        folders[str(PurePosixPath(name).parent)].append(name)
    rng = random.Random(seed)
    chosen = {}
    for name, _ in files:
        others = [o for o in folders[str(PurePosixPath(name).parent)] if o != name]
        chosen[name] = rng.sample(others, min(n, len(others)))
    return chosen


def run_repo(args: argparse.Namespace) -> int:
    """Complete the sampled lines alone and with siblings open; print and save the report."""
    from jpilot.lsp.pipeline import complete
    from jpilot.lsp.plugins import default_host
    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine, EngineConfig
    from jpilot.plugins.api import CompletionRequest, OpenDocument
    from jpilot.plugins.settings import parse_settings

    engine = Engine(args.bundle or default_bundle_path(), EngineConfig())
    host = default_host()
    files = (
        model_eval.held_out_files(args.corpus) if args.corpus else model_eval.default_held_out()[0]
    )
    texts = dict(files)
    cases = model_eval.sample_cases(files, args.n, args.seed)
    siblings = siblings_of(files, args.repo, args.seed)
    settings, _ = parse_settings({"completion": {"minConfidence": 0}})  # the curve needs all

    def predict(case: model_eval.Case, open_names: list[str]) -> tuple[str, float | None]:
        line_end = "\r\n" if "\r\n" in case.prefix else "\n"
        request = CompletionRequest(
            uri=f"file:///eval/{case.name}",
            language_id="python",
            text=case.prefix + line_end + case.suffix,
            offset=len(case.prefix),
            version=1,
            settings=settings,
            open_documents=[
                OpenDocument(f"file:///eval/{o}", "python", texts[o]) for o in open_names
            ],
        )
        outcome = complete(engine, host, request, threading.Event())
        text = outcome.suggestion.text if outcome.suggestion else ""
        confidence = outcome.suggestion.confidence if outcome.suggestion else None
        return text.split("\n", 1)[0].rstrip(), confidence

    rows = {}
    for label, with_siblings in (("alone", False), (f"{args.repo} siblings open", True)):
        results = [
            predict(c, siblings[c.name] if with_siblings else [])
            for c in track(cases, len(cases), f"completing ({label})")
        ]
        rows[label] = results
    report = {"files": len(files), "files_id": model_eval.files_id(files), "lines": len(cases),
              "seed": args.seed, "repo": args.repo, "rows": {}, "gates": []}  # fmt: skip
    n_with = sum(1 for c in cases if siblings[c.name])
    print(f"\nfiles: {len(files)} (set {report['files_id']}), lines: {len(cases)}, "
          f"lines whose file has siblings: {n_with}, seed {args.seed}")  # fmt: skip
    print(
        f"{'through the pipeline':<28} {'exact match':>12} {'edit sim':>9}  {'EM 95% interval':>15}"
    )
    for label, results in rows.items():
        s = model_eval.score([p for p, _ in results], cases)
        report["rows"][label] = {"exact_match": s.exact_match, "edit_similarity": s.edit_similarity,
                                 "exact_match_95": s.exact_match_95}  # fmt: skip
        low, high = s.exact_match_95
        print(
            f"{label:<28} {s.exact_match:11.1f}% {s.edit_similarity:9.1f}  "
            f"{low:6.1f}% - {high:4.1f}%"
        )
    last = list(rows.values())[-1]
    print(f"\nconfidence gate ({list(rows)[-1]}): completion.minConfidence -> share of requests "
          "shown, exact match among shown (95% interval), exact match over all lines")  # fmt: skip
    for gate in GATES:
        report["gates"].append(gate_row(gate, last, cases))
        g = report["gates"][-1]
        print(f"  {gate:4.2f}: shown {g['coverage']:5.1f}%, right among shown "
              f"{g['precision']:5.1f}% ({g['precision_95'][0]:.1f}-{g['precision_95'][1]:.1f}), "
              f"right over all {g['exact_over_all']:5.1f}%")  # fmt: skip
    report["cases"] = [  # the run with siblings open, to draw other curves later
        {"file": c.name, "cut": c.cut, "truth": c.truth, "prediction": p, "confidence": conf}
        for c, (p, conf) in zip(cases, last, strict=True)
    ]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.record:
        record_gate(engine.bundle.path, report["gates"])
    engine.close()
    return 0


def record_gate(bundle: Path, gates: list[dict]) -> None:
    """Record the highest gate that shows at least COVERAGE_FLOOR % of requests as the
    bundle's `completion.minConfidence: "auto"`, with what it measured."""
    from jpilot.model.abilities import GATE
    from jpilot.model.measure import record

    ok = [g for g in gates if g["coverage"] >= COVERAGE_FLOOR] or gates[:1]
    best = max(ok, key=lambda g: g["min_confidence"])
    record(bundle, {
        GATE: best["min_confidence"],
        GATE + "_coverage": best["coverage"],
        GATE + "_precision": best["precision"],
    })  # fmt: skip
    print(f'completion.minConfidence "auto" is now {best["min_confidence"]} for {bundle}')


def gate_row(gate: float, results: list[tuple[str, float | None]], cases) -> dict:
    """Coverage and precision of the suggestions whose confidence reaches `gate`."""
    shown = [
        (p, c)
        for (p, conf), c in zip(results, cases, strict=True)
        if p.strip() and (conf is None or conf >= gate)
    ]
    right = [p == c.truth for p, c in shown]
    n = max(1, len(cases))
    interval = model_eval.file_interval(right, [c.name for _, c in shown]) if shown else (0, 0)
    sims = [difflib.SequenceMatcher(None, p, c.truth, autojunk=False).ratio() for p, c in shown]
    return {
        "min_confidence": gate,
        "coverage": round(100 * len(shown) / n, 1),
        "precision": round(100 * sum(right) / max(1, len(shown)), 1),
        "precision_95": interval,
        "exact_over_all": round(100 * sum(right) / n, 1),
        "edit_similarity_shown": round(100 * float(np.mean(sims)), 1) if sims else 0.0,
    }
