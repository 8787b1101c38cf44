"""Random checkpoints at the widths of real code models, for heavy tests and bench/.

Nothing is downloaded: each is a transformers model of the real config with random
weights at a realistic scale (initializer_range 0.02, as the configs ship), saved the way
its family ships (CodeGen as Salesforce does: `pytorch_model.bin`; GPT-J as safetensors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    # CodeGen-350M-mono's whole config
    "codegen-350M": dict(kind="codegen", n_layer=20, n_embd=1024, n_head=16, rotary_dim=32,
                         vocab_size=51200),  # fmt: skip
    # CodeGen-2B's width, 2 of its 32 layers
    "codegen-2B-width": dict(kind="codegen", n_layer=2, n_embd=2560, n_head=32, rotary_dim=64,
                             vocab_size=51200),  # fmt: skip
    # GPT-J-6B's width, 2 of its 28 layers
    "gptj-6B-width": dict(kind="gptj", n_layer=2, n_embd=4096, n_head=16, rotary_dim=64,
                          vocab_size=50400),  # fmt: skip
}


def make_model(name: str, seed: int = 0) -> Any:
    """Return a random fp32 CodeGenForCausalLM or GPTJForCausalLM of shape `name`."""
    import torch
    from transformers import CodeGenConfig, CodeGenForCausalLM, GPTJConfig, GPTJForCausalLM

    dims = dict(SHAPES[name])
    kind = dims.pop("kind")
    torch.manual_seed(seed)
    common = dict(n_positions=2048, bos_token_id=0, eos_token_id=0, initializer_range=0.02)
    if kind == "codegen":
        config = CodeGenConfig(n_ctx=2048, **common, **dims)
        return CodeGenForCausalLM(config).eval()
    return GPTJForCausalLM(GPTJConfig(**common, **dims)).eval()


def save_model(model: Any, folder: Path) -> Path:
    """Save `model` as its family ships it, with a small tokenizer; return the folder."""
    from tiny_models import make_tokenizer

    codegen = model.config.model_type == "codegen"
    model.save_pretrained(folder, safe_serialization=not codegen)
    make_tokenizer(folder / "tokenizer.json", 512)
    return folder


def gptj_source(folder: Path, work: Path) -> Path:
    """Return a GPT-J checkpoint for `folder`: itself, or its conversion if CodeGen."""
    import json

    from jpilot.model.convert import convert_codegen

    if json.loads((folder / "config.json").read_text())["model_type"] == "codegen":
        return convert_codegen(folder, work / f"{folder.name}-gptj")
    return folder
