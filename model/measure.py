"""`jpilot model eval --abilities`: run the plugins' ability measures and record the scores.

The measures of the model-written features live with the features (the docs and debug
plugins), so that what is measured is what the editor shows. The model layer never
imports plugins; it finds them as `jpilot.measures` entry points, each a function
`measure(engine, files, n, seed) -> {score: value}`. `--record` writes the scores into
the bundle's manifest (`Manifest.abilities`), where jpilot.model.abilities reads them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from jpilot.model.abilities import passes, score_rows
from jpilot.model.bundle import read_manifest, write_manifest

GROUP = "jpilot.measures"
Measure = Callable[[Any, list[tuple[str, str]], int, int], dict[str, float]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the `--abilities` arguments of `jpilot model eval`."""
    parser.add_argument("--abilities", action="store_true",
                        help="also measure the model-written features (summary, docstring, "
                        "explain, hints) with the plugins' own code")  # fmt: skip
    parser.add_argument("--functions", type=int, default=60,
                        help="documented functions (and buggy files) to measure")  # fmt: skip
    parser.add_argument("--record", action="store_true",
                        help="write the measured scores into the bundle's jpilot.json")  # fmt: skip


def measures() -> dict[str, Measure]:
    """Return the installed measures by entry-point name."""
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


def run_measures(
    engine: Any, files: list[tuple[str, str]], n: int, seed: int, found: dict[str, Measure]
) -> dict[str, float]:
    """Run every measure and merge their scores."""
    if not found:
        raise SystemExit(
            f"no `{GROUP}` entry points are installed; reinstall jpilot (pip install -e .)"
        )
    scores: dict[str, float] = {"ability_seed": float(seed)}
    for name, measure in sorted(found.items()):
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        scores.update(measure(engine, files, n, seed))
    return scores


def report(scores: dict[str, float]) -> None:
    """Print each feature's scores against its thresholds."""
    print(f"\n{'feature':<10} {'score':<22} {'value':>7} {'95% interval':>15} {'threshold':>11}")
    for feature, scored in score_rows(scores, (">=", "<=")):
        for t, shown, span, bound in scored:
            print(f"{feature:<10} {t.score:<22} {shown:>7} {span:>15} {bound:>11}")
        print(f"{'':<10} -> {'passes' if passes(scores, feature) else 'off by default'}")
    for label in ("name", "constant"):
        key = f"{label}_baseline_rouge_l"
        if key in scores:
            print(f"{label} baseline ROUGE-L {scores[key]:.1f} "
                  f"({scores[key + '_low']:.1f} - {scores[key + '_high']:.1f})")  # fmt: skip


def record(folder: Path, scores: dict[str, float]) -> None:
    """Write the scores into a bundle's manifest (its model.onnx checksum is unchanged);
    scores recorded by another eval (`eval --repo --record`'s gate) are kept."""
    manifest = read_manifest(folder)
    manifest.abilities = dict(sorted({**manifest.abilities, **scores}.items()))
    write_manifest(folder, manifest)
    print(f"recorded {len(scores)} scores in {folder / 'jpilot.json'}", file=sys.stderr)
