"""The static-KV graph (GroupQueryAttention, in-place KV buffers): what the engine tests
(which run on both graph kinds) do not cover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from jpilot.model.engine import Engine, EngineConfig, GenerationConfig
from jpilot.model.errors import ModelError
from jpilot.model.export import export_bundle

PROMPT = "def add(a, b):\n    return a + b\n"


def test_rows_past_the_cache_length_are_never_read(tiny_bundle_static: Path) -> None:
    engine = Engine(tiny_bundle_static)
    ids = engine.tokenizer.encode(PROMPT)
    clean, _ = engine._forward(ids, engine._empty_kv(), 0, all_logits=True)
    rows = engine.n_positions + 1
    poisoned = [
        ort.OrtValue.ortvalue_from_numpy(np.full((1, h, rows, d), np.nan, dtype=np.float32))
        for h, d in engine.kv_shapes
    ]
    logits, past = engine._forward(ids, poisoned, 0, all_logits=True)
    assert past is poisoned  # written in place, not reallocated
    np.testing.assert_array_equal(logits, clean)
    first = past[0].numpy()  # the new rows landed in the buffer, the rest is untouched
    assert np.isfinite(first[:, :, : len(ids)]).all() and np.isnan(first[:, :, len(ids) :]).all()


def test_a_reused_entry_is_taken_out_of_the_cache(tiny_bundle_static: Path) -> None:
    engine = Engine(tiny_bundle_static)
    ids = engine.tokenizer.encode(PROMPT)
    engine.generate(ids, GenerationConfig(max_new_tokens=4))
    assert len(engine.cache) == 1
    (entry,) = engine.cache._entries.values()
    warm = engine.generate(ids[:-1] + [5], GenerationConfig(max_new_tokens=4))
    assert warm.reused_tokens == len(ids) - 1
    (again,) = engine.cache._entries.values()  # one entry: the new sequence, same buffers
    assert again is not entry and again.kv is entry.kv
    assert again.tokens[: len(ids)] == (*ids[:-1], 5)


def test_static_export_refuses_a_rotary_width_gqa_cannot_take(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match="multiple of 16.*--kv-cache concat"):
        export_bundle(tiny_checkpoint, tmp_path / "b", kv_cache="static")
    assert not (tmp_path / "b").exists()


def test_fp16_static_bundle_tracks_fp32(
    tiny_checkpoint_gqa: Path, tiny_bundle_static: Path, tmp_path: Path
) -> None:
    """The GPU format (fp16 weights, fp16 KV buffers); ORT's CPU provider runs it too."""
    fp16 = Engine(export_bundle(tiny_checkpoint_gqa, tmp_path / "fp16", dtype="fp16"))
    fp32 = Engine(tiny_bundle_static)
    assert fp16.static_kv and fp16.kv_dtype == np.float16
    ids = fp32.tokenizer.encode(PROMPT)
    a, _ = fp32._forward(ids, fp32._empty_kv(), 0, all_logits=True)
    b, _ = fp16._forward(ids, fp16._empty_kv(), 0, all_logits=True)
    assert np.abs(a - b.astype(np.float32)).max() < 0.02 * np.abs(a).max()
    cfg = GenerationConfig(max_new_tokens=12)
    assert fp16.generate(ids, cfg).tokens == fp32.generate(ids, cfg).tokens


def test_info_names_the_kv_cache(tiny_bundle: Path, tiny_bundle_static: Path) -> None:
    from jpilot.model.info import bundle_info

    assert bundle_info(tiny_bundle)["kv_cache"] == "concat"  # rotary 8: auto keeps optimum's
    assert bundle_info(tiny_bundle_static)["kv_cache"] == "static"


def test_init_from_a_static_bundle_gets_the_checkpoint_weights(
    tiny_checkpoint_gqa: Path, tiny_bundle_static: Path
) -> None:
    pytest.importorskip("torch")
    from transformers import GPTJForCausalLM

    from jpilot.model.train.warmstart import model_from_bundle

    original = GPTJForCausalLM.from_pretrained(tiny_checkpoint_gqa).state_dict()
    rebuilt = model_from_bundle(tiny_bundle_static).state_dict()
    for key, value in rebuilt.items():
        if not key.endswith(".attn.bias"):  # the causal-mask buffer is not a weight
            assert (value == original[key]).all(), key


def test_a_short_match_does_not_take_another_documents_cache(tiny_bundle_static: Path) -> None:
    # SPM prompts of different documents all start with the same FIM markers; the one
    # that shares only those must not overwrite the other's buffers
    engine = Engine(tiny_bundle_static)
    first = engine.tokenizer.encode(PROMPT)
    other = first[:2] + engine.tokenizer.encode("class Other:\n    pass\n")
    cfg = GenerationConfig(max_new_tokens=4)
    engine.generate(first, cfg)
    assert engine.generate(other, cfg).reused_tokens == 0
    assert len(engine.cache) == 2
    again = engine.generate(first[:-1] + [5], cfg)  # the first document, one edit later
    assert again.reused_tokens == len(first) - 1


def test_the_cache_holds_a_sequence_even_when_one_is_over_its_byte_setting(
    tiny_bundle_static: Path,
) -> None:
    # a 350M model's static KV buffer (335 MB in fp32) is over the 256 MB default bound;
    # the bound grows to two sequences, or typing would never reuse a prefix
    engine = Engine(tiny_bundle_static, EngineConfig(cache_bytes=1))
    ids = engine.tokenizer.encode(PROMPT)
    engine.generate(ids, GenerationConfig(max_new_tokens=4))
    again = engine.generate(ids[:-1] + [5], GenerationConfig(max_new_tokens=4))
    assert again.reused_tokens == len(ids) - 1
