"""Shared fixtures: tiny random checkpoints and bundles, built once per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import make_gptj  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-J Hugging Face checkpoint folder."""
    return make_gptj(tmp_path_factory.mktemp("ckpt") / "tiny-gptj")


def passing_abilities() -> dict[str, float]:
    """Scores that pass every threshold of jpilot.model.abilities."""
    from jpilot.model.abilities import THRESHOLDS

    return {t.score: (100.0 if t.higher_is_better else 0.0)
            for ts in THRESHOLDS.values() for t in ts}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint exported to an fp32 bundle, recorded as passing every ability
    threshold, so that the end-to-end tests see the model-written features on ("auto")."""
    from jpilot.model.bundle import read_manifest, write_manifest
    from jpilot.model.export import export_bundle

    folder = export_bundle(tiny_checkpoint, tmp_path_factory.mktemp("bundle") / "fp32")
    manifest = read_manifest(folder)
    manifest.abilities = passing_abilities()
    write_manifest(folder, manifest)
    return folder


@pytest.fixture(scope="session")
def tiny_detector_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of tiny_bundle with a bug detector trained for seconds (tests/tiny_detector.py)."""
    from tiny_detector import install_tiny_detector

    return install_tiny_detector(tiny_bundle, tmp_path_factory.mktemp("detector") / "bundle")


@pytest.fixture(scope="session")
def tiny_bundle_int8(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint exported to a dynamic-int8 bundle."""
    from jpilot.model.export import export_bundle

    return export_bundle(
        tiny_checkpoint, tmp_path_factory.mktemp("bundle") / "int8", quantize="int8"
    )


@pytest.fixture(scope="session")
def tiny_bundle_fp16(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint exported to an fp16 bundle (the GPU format; ORT's CPU runs it too)."""
    from jpilot.model.export import export_bundle

    return export_bundle(tiny_checkpoint, tmp_path_factory.mktemp("bundle") / "fp16", dtype="fp16")


@pytest.fixture(scope="session")
def tiny_checkpoint_gqa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-J whose rotary width GroupQueryAttention takes (head 32, rotary 16)."""
    return make_gptj(tmp_path_factory.mktemp("ckpt") / "tiny-gptj-gqa", n_head=2, rotary_dim=16)


@pytest.fixture(scope="session")
def tiny_bundle_static(tiny_checkpoint_gqa: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That checkpoint exported with `--kv-cache static` (model/static_kv.py), fp32."""
    from jpilot.model.export import export_bundle

    folder = tmp_path_factory.mktemp("bundle") / "static"
    return export_bundle(tiny_checkpoint_gqa, folder, kv_cache="static")


@pytest.fixture(scope="session")
def tiny_bundle_static_int8(
    tiny_checkpoint_gqa: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """That checkpoint exported with `--kv-cache static --quantize int8`."""
    from jpilot.model.export import export_bundle

    folder = tmp_path_factory.mktemp("bundle") / "static-int8"
    return export_bundle(tiny_checkpoint_gqa, folder, quantize="int8", kv_cache="static")


@pytest.fixture(scope="session")
def tiny_bundle_external(
    tiny_checkpoint_gqa: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny static bundle with every weight in model.onnx.data (the embed limit at 0)."""
    from jpilot.model import static_kv
    from jpilot.model.export import export_bundle

    patch = pytest.MonkeyPatch()
    patch.setattr(static_kv, "EMBED_LIMIT", 0)
    try:
        return export_bundle(tiny_checkpoint_gqa, tmp_path_factory.mktemp("ext") / "b")
    finally:
        patch.undo()
