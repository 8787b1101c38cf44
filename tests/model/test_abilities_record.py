"""Measured abilities in the bundle: manifest round trip, recording, info, card, measures."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from jpilot.lsp.cli import main
from jpilot.model import measure
from jpilot.model.abilities import abilities_table
from jpilot.model.bundle import load_bundle, read_manifest, write_manifest
from jpilot.model.engine import Engine
from jpilot.model.errors import ModelError


@pytest.fixture
def bundle(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the tiny bundle with no recorded scores."""
    dst = tmp_path / "b"
    shutil.copytree(tiny_bundle, dst)
    manifest = read_manifest(dst)
    manifest.abilities = {}
    write_manifest(dst, manifest)
    return dst


def test_scores_round_trip_through_the_manifest_and_keep_the_bundle_valid(bundle: Path) -> None:
    before = read_manifest(bundle)
    scores = {"summary_rouge_l": 12.5, "summary_rouge_l_low": 8.0, "hint_precision": 3.0}
    measure.record(bundle, scores)
    after = load_bundle(bundle)  # sha256 of model.onnx still checked and still right
    assert after.manifest.abilities == scores
    assert after.manifest.onnx_sha256 == before.onnx_sha256
    assert after.manifest.external_data_sha256 == before.external_data_sha256
    raw = json.loads((bundle / "jpilot.json").read_text())
    assert raw["abilities"] == scores


def test_a_manifest_without_scores_reads_as_empty(bundle: Path) -> None:
    raw = json.loads((bundle / "jpilot.json").read_text())
    raw.pop("abilities")  # as written before abilities existed
    (bundle / "jpilot.json").write_text(json.dumps(raw))
    assert load_bundle(bundle).manifest.abilities == {}


@pytest.mark.parametrize("bad", [["x"], {"summary_rouge_l": "high"}, {"hint_precision": True}])
def test_malformed_scores_are_refused_with_the_fix(bundle: Path, bad) -> None:
    raw = json.loads((bundle / "jpilot.json").read_text())
    raw["abilities"] = bad
    (bundle / "jpilot.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="jpilot model eval --abilities --record"):
        load_bundle(bundle)


def test_info_says_which_features_the_model_supports(bundle: Path, tiny_bundle: Path, capsys):
    assert main(["model", "info", str(bundle), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["supports"] == {"summary": False, "docstring": False, "explain": False,
                                "hints": False}  # fmt: skip
    assert info["features"][0] == "summary: off by default (no recorded scores)"
    assert main(["model", "info", str(tiny_bundle)]) == 0  # the fixture records passing scores
    out = capsys.readouterr().out
    assert "summary: supported (summary_rouge_l 100.0, summary_degenerate 0.0)" in out


def test_card_table_of_abilities() -> None:
    assert "off by default" in abilities_table({})
    table = abilities_table({"summary_rouge_l": 12.0, "summary_rouge_l_low": 9.0,
                             "summary_rouge_l_high": 15.5, "summary_degenerate": 40.0,
                             "name_baseline_rouge_l": 20.0,
                             "constant_baseline_rouge_l": 17.0})  # fmt: skip
    assert "| summary | summary_rouge_l | 12.0 | 9.0 - 15.5 | ≥ 30 | no |" in table
    assert "| hints | hint_precision | - |  | ≥ 50 | no |" in table
    assert (
        "function's name alone scores ROUGE-L 20.0, one generic sentence for every "
        "function 17.0" in table
    )


def test_eval_runs_the_installed_measures_and_records_them(bundle: Path, monkeypatch, capsys):
    """The plugins' measures, found as entry points, run on a tiny model and are recorded."""
    from jpilot.plugins.debug.measure import measure as hints
    from jpilot.plugins.docs.measure import measure as docs

    files = [("m.py", "def add(a, b):\n    \"\"\"Add two numbers together.\"\"\"\n"
              "    total = a + b\n    return total\n" + "".join(
                  f"\n\ndef f{i}(x):\n    if x < {i}:\n        return x\n    return {i}\n"
                  for i in range(6)))]  # fmt: skip
    engine = Engine(bundle)
    scores = measure.run_measures(engine, files, 3, 0, {"docs": docs, "hints": hints})
    for key in ("summary_rouge_l", "docstring_degenerate", "explain_rouge_l", "hint_precision",
                "name_baseline_rouge_l", "constant_baseline_rouge_l", "ability_seed"):  # fmt: skip
        assert key in scores, key
    assert scores["prose_functions"] == 1.0 and scores["hint_files"] == 1.0
    measure.report(scores)
    assert "hint_precision" in capsys.readouterr().out
    measure.record(bundle, scores)
    assert load_bundle(bundle).manifest.abilities == scores
    engine.close()


def test_eval_declares_its_ability_arguments() -> None:
    from jpilot.model.evaluate import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--abilities", "--functions", "7", "--record"])
    assert (args.abilities, args.functions, args.record) == (True, 7, True)
    with pytest.raises(SystemExit, match="jpilot.measures"):
        measure.run_measures(None, [], 1, 0, {})
