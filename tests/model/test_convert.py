"""CodeGen -> GPT-J conversion keeps the logits, through PyTorch and through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jpilot.model.convert import convert_codegen
from jpilot.model.engine import Engine
from jpilot.model.errors import ModelError
from jpilot.model.export import export_bundle
from jpilot.model.kv import empty_kv

from tiny_models import make_codegen


@pytest.fixture(scope="module")
def codegen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_codegen(tmp_path_factory.mktemp("codegen") / "tiny-codegen")


def test_converted_codegen_keeps_logits(codegen: Path, tmp_path: Path) -> None:
    import torch
    from transformers import CodeGenForCausalLM, GPTJForCausalLM

    gptj_dir = convert_codegen(codegen, tmp_path / "gptj")
    original = CodeGenForCausalLM.from_pretrained(codegen).eval()
    converted = GPTJForCausalLM.from_pretrained(gptj_dir).eval()
    ids = torch.randint(0, 320, (1, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = original(ids).logits[0].numpy()
        np.testing.assert_allclose(converted(ids).logits[0].numpy(), expected, atol=1e-4)

    engine = Engine(export_bundle(gptj_dir, tmp_path / "bundle"))
    logits, _ = engine._forward(
        ids[0].tolist(), empty_kv(engine.kv_shapes, engine.kv_dtype, engine.where), 0, True
    )
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_convert_refuses_a_gptj(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not CodeGen"):
        convert_codegen(tiny_checkpoint, tmp_path / "out")
