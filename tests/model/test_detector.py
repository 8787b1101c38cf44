"""A detector trained for seconds on a fixture ranks an obvious injected bug first, repairs
it, is recorded in the manifest, and a bundle whose detector file was changed is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_detector import BUG_LINE, BUGGY, CLEAN

from jpilot.model.bundle import load_bundle
from jpilot.model.detector.detector import DETECTOR_FILE, Detector
from jpilot.model.detector.rewrites import sites
from jpilot.model.engine import Engine
from jpilot.model.errors import ModelError


@pytest.fixture
def detector_bundle(tiny_detector_bundle: Path) -> Path:
    return tiny_detector_bundle


def test_the_obvious_bug_ranks_first_and_its_repair_restores_the_file(detector_bundle: Path):
    bundle = load_bundle(detector_bundle)
    engine = Engine(bundle)
    detector = Detector(bundle, threads=1)
    found = detector.find(BUGGY, engine, max_hints=3, threshold=0.0)
    assert found[0].line == BUG_LINE
    assert (BUGGY[found[0].start : found[0].end], found[0].was) == ("or", "or")
    assert found[0].new == "and"
    assert BUGGY[: found[0].start] + found[0].new + BUGGY[found[0].end :] == CLEAN
    probabilities = [s.probability for s in found]
    assert probabilities == sorted(probabilities, reverse=True)
    # on the clean file every site is less likely than the bug was
    clean = detector.find(CLEAN, engine, max_hints=1, threshold=0.0)
    assert clean[0].probability < found[0].probability
    assert len(sites(BUGGY)) > 20  # the bug was one site among many
    engine.close()


def test_the_manifest_records_the_detector(detector_bundle: Path):
    entry = json.loads((detector_bundle / "jpilot.json").read_text())["detector"]
    assert entry["file"] == DETECTOR_FILE and entry["kinds"] == ["boolean", "comparison"]
    assert entry["threshold"] == 0.5 and len(entry["sha256"]) == 64


def test_a_changed_detector_file_is_refused(detector_bundle: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(detector_bundle, copy)
    with open(copy / DETECTOR_FILE, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="does not match the sha256"):
        Detector(load_bundle(copy))
