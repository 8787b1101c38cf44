"""bench/train_gpu.sh, the one-shot GPU training script, runs here on CPU as its own test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from jpilot.model.default import default_bundle_path
from jpilot.model.engine import Engine, GenerationConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_script_leaves_a_bundle_in_pieces_that_rejoin(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = os.environ | {
        "JPILOT_GPU_SMOKE": "1", "OUT": str(out), "RUN": str(tmp_path / "run"),
        "PYTHON": sys.executable,
    }  # fmt: skip
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "train_gpu.sh")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    pieces = sorted(out.glob("bundle.tar.part-*"))
    assert 1 <= len(pieces) <= 8 and all(p.stat().st_size <= 16 << 20 for p in pieces)
    joined = tmp_path / "bundle.tar"
    joined.write_bytes(b"".join(p.read_bytes() for p in pieces))
    with tarfile.open(joined) as tar:
        tar.extractall(tmp_path / "back", filter="data")
    bundle = tmp_path / "back" / "bundle"
    manifest = json.loads((bundle / "jpilot.json").read_text())
    assert (manifest["n_layer"], manifest["dtype"]) == (2, "int8")
    shipped = default_bundle_path() / "tokenizer.json"  # no tokenizer trained on the clock
    digest = [hashlib.sha256(p.read_bytes()).digest() for p in (bundle / "tokenizer.json", shipped)]
    assert digest[0] == digest[1]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 6 and summary["precision"] in ("bf16", "fp32")
    engine = Engine(bundle)
    try:
        result = engine.generate(
            engine.tokenizer.encode("def f("), GenerationConfig(max_new_tokens=4)
        )
        assert len(result.tokens) >= 1
    finally:
        engine.close()
