"""Broken bundles and bad export inputs get a clear ModelError that says how to fix them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jpilot.lsp.cli import main
from jpilot.model.bundle import MANIFEST, load_bundle, sha256_file
from jpilot.model.errors import ModelError
from jpilot.model.export import export_bundle


@pytest.fixture
def copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dst)
    return dst


def edit_manifest(folder: Path, **changes) -> None:
    path = folder / MANIFEST
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_valid_bundle_loads(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    m = bundle.manifest
    assert (m.architecture, m.n_layer, m.n_head, m.head_dim, m.rotary_dim) == ("gptj", 2, 4, 16, 8)
    assert m.fim is not None and set(m.fim) == {"prefix", "suffix", "middle"}
    assert bundle.tokenizer.fim is not None and bundle.tokenizer.fim.order == "psm"
    assert bundle.tokenizer.decode(bundle.tokenizer.encode("x = 1\n")) == "x = 1\n"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist.*jpilot model export"):
        load_bundle(tmp_path / "nope")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("jpilot.json", "has no jpilot.json.*jpilot model export"),
        ("model.onnx", "has no model.onnx.*jpilot model export"),
        ("tokenizer.json", "has no tokenizer.json.*re-export"),
    ],
)
def test_missing_file(copy: Path, name: str, message: str) -> None:
    (copy / name).unlink()
    with pytest.raises(ModelError, match=message):
        load_bundle(copy)


def test_wrong_sha(copy: Path) -> None:
    edit_manifest(copy, onnx_sha256="0" * 64)
    with pytest.raises(ModelError, match="does not match the sha256.*re-export"):
        load_bundle(copy)


def test_corrupt_onnx(copy: Path) -> None:
    (copy / "model.onnx").write_bytes(b"\x08\x07garbage" * 100)
    edit_manifest(copy, onnx_sha256=sha256_file(copy / "model.onnx"))
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        load_bundle(copy)


def test_corrupt_manifest(copy: Path) -> None:
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_bundle(copy)


def test_non_gptj_manifest(copy: Path) -> None:
    edit_manifest(copy, architecture="llama")
    with pytest.raises(ModelError, match="architecture 'llama'.*gptj, gpt_neo, gpt2, gpt_bigcode"):
        load_bundle(copy)


def test_fim_order_comes_from_the_manifest(copy: Path) -> None:
    edit_manifest(copy, fim_order="spm")
    tok = load_bundle(copy).tokenizer
    assert tok.fim is not None and tok.fim.order == "spm"
    f = tok.fim  # SPM: suffix first, so the middle continues the prefix
    assert tok.fim_prompt([7, 8], [9]) == [f.prefix, f.suffix, 9, f.middle, 7, 8]
    edit_manifest(copy, fim_order="mps")
    with pytest.raises(ModelError, match="fim_order 'mps'.*psm, spm"):
        load_bundle(copy)


def test_export_takes_the_fim_order_from_the_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    src = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, src)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "fim_order": "spm"}))
    bundle = load_bundle(export_bundle(src, tmp_path / "bundle"))
    assert bundle.manifest.fim_order == "spm" and bundle.tokenizer.fim is not None
    assert bundle.tokenizer.fim.order == "spm"


def test_external_data_outside_bundle_is_refused(copy: Path, tmp_path: Path) -> None:
    import onnx

    model = onnx.load_model(str(copy / "model.onnx"))
    tensor = model.graph.initializer[0]
    (tmp_path / "evil.bin").write_bytes(tensor.raw_data or b"\0" * 64)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../evil.bin"
    onnx.save_model(model, str(copy / "model.onnx"))
    edit_manifest(copy, onnx_sha256=sha256_file(copy / "model.onnx"))
    with pytest.raises(ModelError, match="outside the bundle folder"):
        load_bundle(copy)


def test_export_refuses_other_families(tmp_path: Path) -> None:
    src = tmp_path / "llama"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelError, match="'llama' model; jpilot serves gptj, gpt_neo"):
        export_bundle(src, tmp_path / "out")
    (src / "config.json").write_text(json.dumps({"model_type": "codegen"}))
    with pytest.raises(ModelError, match="jpilot model convert-codegen"):
        export_bundle(src, tmp_path / "out")


def test_export_refuses_to_overwrite(tiny_checkpoint: Path, tiny_bundle: Path) -> None:
    with pytest.raises(ModelError, match="--force"):
        export_bundle(tiny_checkpoint, tiny_bundle)


def test_cli_reports_errors_without_traceback(tmp_path: Path, capsys) -> None:
    assert main(["model", "info", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: model bundle") and "Traceback" not in err


def test_cli_info(tiny_bundle: Path, capsys) -> None:
    assert main(["model", "info", str(tiny_bundle), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dtype"] == "fp32" and info["fim"] is True
    assert info["parameters"] == 139_968  # 2 layers of width 64, vocab 320, untied head
    assert "CPUExecutionProvider" in info["providers_here"]


def test_info_counts_4bit_weights(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from jpilot.model.export import export_bundle
    from jpilot.model.info import bundle_info

    int4 = export_bundle(tiny_checkpoint, tmp_path / "int4", quantize="int4", kv_cache="concat")
    info = bundle_info(int4)
    assert info["dtype"] == "int4" and info["parameters"] == 139_968  # as the fp32 bundle
