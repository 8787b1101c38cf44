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
    "codegen-350M": dict(
        kind="codegen", n_layer=20, n_embd=1024, n_head=16, rotary_dim=32, vocab_size=51200
    ),  # fmt: skip
    # CodeGen-2B's width, 2 of its 32 layers
    "codegen-2B-width": dict(
        kind="codegen", n_layer=2, n_embd=2560, n_head=32, rotary_dim=64, vocab_size=51200
    ),  # fmt: skip
    # GPT-J-6B's width, 2 of its 28 layers
    "gptj-6B-width": dict(
        kind="gptj", n_layer=2, n_embd=4096, n_head=16, rotary_dim=64, vocab_size=50400
    ),  # fmt: skip
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


# Whole real configs, only ever written straight to disk (write_random_gptj), never built
# in torch: GPT-J-6B in fp16 is 12 GB.
FULL: dict[str, dict[str, Any]] = {
    "gptj-6B": dict(
        kind="gptj", n_layer=28, n_embd=4096, n_head=16, rotary_dim=64, vocab_size=50400
    ),  # fmt: skip
}


def gptj_tensors(dims: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """Return a GPT-J checkpoint's tensor names and shapes, in file order."""
    e, v, inner = dims["n_embd"], dims["vocab_size"], 4 * dims["n_embd"]
    out: list[tuple[str, tuple[int, ...]]] = [("transformer.wte.weight", (v, e))]
    for i in range(dims["n_layer"]):
        p = f"transformer.h.{i}"
        out += [(f"{p}.ln_1.weight", (e,)), (f"{p}.ln_1.bias", (e,))]
        out += [(f"{p}.attn.{n}_proj.weight", (e, e)) for n in ("q", "k", "v", "out")]
        out += [(f"{p}.mlp.fc_in.weight", (inner, e)), (f"{p}.mlp.fc_in.bias", (inner,))]
        out += [(f"{p}.mlp.fc_out.weight", (e, inner)), (f"{p}.mlp.fc_out.bias", (e,))]
    out += [("transformer.ln_f.weight", (e,)), ("transformer.ln_f.bias", (e,))]
    return out + [("lm_head.weight", (v, e)), ("lm_head.bias", (v,))]


def write_random_gptj(folder: Path, name: str, dtype: str = "F16", seed: int = 0) -> Path:
    """Write a random GPT-J of shape `name` as safetensors, one tensor at a time.

    Weights N(0, 0.02), layer norms 1 and 0, biases 0: the shape and scale of a real
    checkpoint without ever holding it, so a 12 GB GPT-J-6B can be made on a small machine.
    """
    import json

    import numpy as np

    from jpilot.model.checkpoint import ST_DTYPES, write_safetensors

    from tiny_models import make_tokenizer

    dims = dict(FULL.get(name) or SHAPES[name])
    dims.pop("kind")
    rng = np.random.default_rng(seed)
    shapes = dict(gptj_tensors(dims))

    def produce(tensor: str) -> np.ndarray:
        shape = shapes[tensor]
        if tensor.endswith("bias"):
            array = np.zeros(shape, dtype=np.float32)
        elif len(shape) == 1:  # layer norm scale
            array = np.ones(shape, dtype=np.float32)
        else:
            array = rng.standard_normal(shape, dtype=np.float32)
            array *= 0.02
        if dtype == "BF16":
            return (array.view(np.uint32) >> 16).astype(np.uint16)
        return array.astype(ST_DTYPES[dtype])

    folder.mkdir(parents=True, exist_ok=True)
    specs = [(t, dtype, s) for t, s in gptj_tensors(dims)]
    write_safetensors(folder / "model.safetensors", specs, produce)
    config = dict(model_type="gptj", architectures=["GPTJForCausalLM"], n_positions=2048,
                  bos_token_id=0, eos_token_id=0, tie_word_embeddings=False,
                  initializer_range=0.02, **dims)  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    make_tokenizer(folder / "tokenizer.json", 512)
    return folder
