"""Streamed export: weights in an external-data file, its sha256 checked, shapes checked,
and the checkpoint reader (safetensors, bf16, pytorch_model.bin) read one tensor at a time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jpilot.model.bundle import MANIFEST, load_bundle
from jpilot.model.checkpoint import Checkpoint, write_safetensors
from jpilot.model.engine import Engine
from jpilot.model.errors import ModelError
from jpilot.model.export import export_bundle

PROMPT = "def add(a, b):\n    return a + b\n"


def test_weights_go_to_an_external_file_with_its_sha256(
    tiny_bundle_external: Path, tiny_bundle_static: Path
) -> None:
    manifest = load_bundle(tiny_bundle_external).manifest
    assert manifest.external_data == ["model.onnx.data"]
    assert set(manifest.external_data_sha256) == {"model.onnx.data"}
    assert load_bundle(tiny_bundle_static).manifest.external_data == []  # small: embedded
    a, b = Engine(tiny_bundle_external), Engine(tiny_bundle_static)
    ids = a.tokenizer.encode(PROMPT)
    la, _ = a._forward(ids, a._empty_kv(), 0, all_logits=True)
    lb, _ = b._forward(ids, b._empty_kv(), 0, all_logits=True)
    np.testing.assert_array_equal(la, lb)


def test_a_changed_data_file_is_refused(tiny_bundle_external: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_bundle_external, tmp_path / "b"))
    data = copy / "model.onnx.data"
    blob = bytearray(data.read_bytes())
    blob[-1] ^= 1
    data.write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="model.onnx.data does not match the sha256"):
        load_bundle(copy)
    load_bundle(copy, verify=False)  # the check is the sha256, nothing else


def test_a_data_file_without_a_recorded_sha256_is_refused(
    tiny_bundle_external: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(tiny_bundle_external, tmp_path / "b"))
    raw = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**raw, "external_data_sha256": {}}))
    with pytest.raises(ModelError, match="no sha256 for its external data file"):
        load_bundle(copy)


def test_weights_that_do_not_fit_the_config_name_the_tensor(
    tiny_checkpoint_gqa: Path, tmp_path: Path
) -> None:
    src = Path(shutil.copytree(tiny_checkpoint_gqa, tmp_path / "ckpt"))
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "n_inner": 200}))
    with pytest.raises(
        ModelError, match=r"tensor 'transformer.h.0.mlp.fc_in.weight' is \[256, 64\]"
    ):
        export_bundle(src, tmp_path / "b", kv_cache="static")
    assert not (tmp_path / "b").exists()


def test_checkpoint_reads_safetensors_bf16_and_torch_bins(tmp_path: Path) -> None:
    import torch

    rng = np.random.default_rng(0)
    tensors = {
        "a": rng.standard_normal((3, 5)).astype(np.float32),
        "b": np.arange(4, dtype=np.int64),
    }
    bf16 = torch.from_numpy(tensors["a"]).to(torch.bfloat16)
    specs = [("a", "F32", (3, 5)), ("b", "I64", (4,)), ("c", "BF16", (3, 5))]
    produce = {**tensors, "c": bf16.view(torch.int16).numpy().view(np.uint16)}
    (tmp_path / "st").mkdir()
    write_safetensors(tmp_path / "st" / "model.safetensors", specs, produce.__getitem__)
    (tmp_path / "bin").mkdir()
    torch.save({"a": torch.from_numpy(tensors["a"]), "c": bf16},
               tmp_path / "bin" / "pytorch_model.bin")  # fmt: skip
    for folder in ("st", "bin"):
        ckpt = Checkpoint(tmp_path / folder)
        np.testing.assert_array_equal(ckpt.get("a"), tensors["a"])
        np.testing.assert_array_equal(ckpt.get("c"), bf16.float().numpy())
        assert ckpt.shape("c") == (3, 5)
    np.testing.assert_array_equal(Checkpoint(tmp_path / "st").raw("b"), tensors["b"])
    from safetensors.numpy import load_file  # the real reader agrees with our writer

    assert load_file(tmp_path / "st" / "model.safetensors")["a"].tolist() == tensors["a"].tolist()
    with pytest.raises(ModelError, match="no weight 'zz'"):
        Checkpoint(tmp_path / "st").get("zz")


def test_convert_reads_pytorch_model_bin_as_salesforce_ships_it(tmp_path: Path) -> None:
    from safetensors.numpy import load_file
    from transformers import CodeGenForCausalLM

    from jpilot.model.convert import convert_codegen

    from tiny_models import make_codegen

    st = make_codegen(tmp_path / "st")
    CodeGenForCausalLM.from_pretrained(st).save_pretrained(
        tmp_path / "bin", safe_serialization=False
    )
    assert not (tmp_path / "bin" / "model.safetensors").exists()
    a = load_file(convert_codegen(st, tmp_path / "a") / "model.safetensors")
    b = load_file(convert_codegen(tmp_path / "bin", tmp_path / "b") / "model.safetensors")
    assert a.keys() == b.keys() and "transformer.h.0.attn.q_proj.weight" in a
    for key, value in a.items():
        np.testing.assert_array_equal(value, b[key], err_msg=key)
