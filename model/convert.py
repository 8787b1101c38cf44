"""`jpilot model convert-codegen`: Salesforce CodeGen checkpoint -> GPT-J checkpoint.

CodeGen is a GPT-J with the query, value and key projections fused into one `qkv_proj`,
laid out for 4-way model parallelism (`mp_num = 4` in its modelling code): the fused
output is [mp_num, (q | v | k) of local_dim each]. Splitting it back into GPT-J's
q_proj/k_proj/v_proj is the permutation FauxPilot's converter uses; every other weight
maps one to one. The result is served through the same export path as any GPT-J.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from jpilot.model.errors import ModelError

MP_NUM = 4  # CodeGen's fused-qkv model-parallel split, fixed in its modelling code
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model convert-codegen` arguments."""
    parser.add_argument("src", type=Path, help="CodeGen checkpoint folder (e.g. codegen-350M-mono)")
    parser.add_argument("dst", type=Path, help="GPT-J checkpoint folder to write")


def run(args: argparse.Namespace) -> int:
    """Run the conversion from parsed arguments."""
    convert_codegen(args.src, args.dst)
    print(f"wrote {args.dst}; next: jpilot model export {args.dst} BUNDLE_DIR", file=sys.stderr)
    return 0


def split_qkv(qkv: Any, n_embd: int) -> tuple[Any, Any, Any]:
    """Split CodeGen's fused [3E, E] qkv_proj weight into GPT-J's q, k, v [E, E] weights."""
    local_dim = n_embd // MP_NUM
    blocks = qkv.reshape(MP_NUM, 3, local_dim, n_embd)  # [mp, (q, v, k), local, E]
    q, v, k = (blocks[:, i].reshape(n_embd, n_embd) for i in range(3))
    return q, k, v


def gptj_config(codegen: dict[str, Any]) -> dict[str, Any]:
    """Map a CodeGen config.json dict to GPTJConfig keyword arguments."""
    keys = (
        "vocab_size",
        "n_positions",
        "n_embd",
        "n_layer",
        "n_head",
        "rotary_dim",
        "n_inner",
        "activation_function",
        "resid_pdrop",
        "embd_pdrop",
        "attn_pdrop",
        "layer_norm_epsilon",
        "initializer_range",
        "bos_token_id",
        "eos_token_id",
    )
    return {k: codegen[k] for k in keys if k in codegen} | {"tie_word_embeddings": False}


def convert_state_dict(state: dict[str, Any], n_embd: int) -> dict[str, Any]:
    """Rename CodeGen weights to GPT-J names, splitting every fused qkv_proj."""
    out: dict[str, Any] = {}
    for name, tensor in state.items():
        if name.endswith(("attn.causal_mask", "attn.masked_bias", "attn.bias")):
            continue  # buffers, rebuilt by GPT-J itself
        if name.endswith("attn.qkv_proj.weight"):
            stem = name.removesuffix("qkv_proj.weight")
            q, k, v = split_qkv(tensor, n_embd)
            out[stem + "q_proj.weight"] = q.contiguous()
            out[stem + "k_proj.weight"] = k.contiguous()
            out[stem + "v_proj.weight"] = v.contiguous()
        else:
            out[name] = tensor
    return out


def convert_codegen(src: str | Path, dst: str | Path) -> Path:
    """Convert a CodeGen checkpoint folder into a GPT-J checkpoint folder (safetensors)."""
    src, dst = Path(src), Path(dst)
    config_path = src / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{src} has no config.json; point convert-codegen at a CodeGen folder")
    codegen_config = json.loads(config_path.read_text(encoding="utf-8"))
    if codegen_config.get("model_type") != "codegen":
        raise ModelError(
            f"{src} is a {codegen_config.get('model_type')!r} model, not CodeGen; "
            "GPT-J checkpoints go straight to `jpilot model export`"
        )
    if codegen_config["n_head"] % MP_NUM:
        raise ModelError(f"{src}: n_head must be a multiple of {MP_NUM} for CodeGen's qkv layout")
    try:
        import torch
        from transformers import CodeGenForCausalLM, GPTJConfig, GPTJForCausalLM
    except ImportError as exc:
        raise ModelError("convert-codegen needs: pip install -e '.[train]'") from exc

    # transformers loads safetensors, or .bin with torch.load(weights_only=True): no pickles.
    codegen = CodeGenForCausalLM.from_pretrained(str(src), local_files_only=True)
    config = GPTJConfig(**gptj_config(codegen_config))
    gptj = GPTJForCausalLM(config)
    state = convert_state_dict(codegen.state_dict(), config.n_embd)
    with torch.no_grad():
        missing, unexpected = gptj.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith(("attn.bias", "attn.masked_bias"))]
    if missing or unexpected:
        raise ModelError(f"{src}: weights did not map (missing {missing}, extra {unexpected})")
    dst.mkdir(parents=True, exist_ok=True)
    gptj.save_pretrained(str(dst), safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    return dst
