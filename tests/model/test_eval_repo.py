"""`jpilot model eval --repo N`: lines completed through the server's pipeline, siblings open."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from jpilot.lsp import evaluate_repo
from jpilot.model.abilities import GATE
from jpilot.model.bundle import load_bundle

CODE = "def area_{i}(width, height):\n    total = width * height + {i}\n    return total\n\n\n"


def test_eval_repo_reports_both_rows_the_curve_and_records_the_gate(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    for k in range(3):
        (package / f"mod{k}.py").write_text("".join(CODE.format(i=i + 10 * k) for i in range(6)))
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    parser = argparse.ArgumentParser()
    evaluate_repo.add_arguments(parser)
    out = tmp_path / "report.json"
    args = parser.parse_args([str(bundle), "--corpus", str(package), "--repo", "2", "-n", "12",
                              "--json", str(out), "--record"])  # fmt: skip
    assert evaluate_repo.run(args) == 0
    report = json.loads(out.read_text())
    assert list(report["rows"]) == ["alone", "2 siblings open"] and report["lines"] == 12
    assert len(report["cases"]) == 12 and all(c["truth"] for c in report["cases"])
    coverage = [g["coverage"] for g in report["gates"]]
    assert coverage == sorted(coverage, reverse=True)  # a higher gate never shows more
    recorded = load_bundle(bundle).manifest.abilities
    floor = [g for g in report["gates"] if g["coverage"] >= evaluate_repo.COVERAGE_FLOOR]
    want = max(g["min_confidence"] for g in floor) if floor else 0.0
    assert recorded[GATE] == want and recorded[GATE + "_coverage"] >= 0


def test_siblings_come_from_the_same_folder_and_never_the_file_itself() -> None:
    files = [("a/x.py", ""), ("a/y.py", ""), ("a/z.py", ""), ("b/w.py", "")]
    chosen = evaluate_repo.siblings_of(files, 5, seed=0)
    assert sorted(chosen["a/x.py"]) == ["a/y.py", "a/z.py"] and chosen["b/w.py"] == []
