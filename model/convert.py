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

from jpilot.model.checkpoint import Checkpoint, write_safetensors
from jpilot.model.errors import ModelError

MP_NUM = 4  # CodeGen's fused-qkv model-parallel split, fixed in its modelling code
BUFFERS = ("attn.causal_mask", "attn.masked_bias", "attn.bias")  # not weights: skipped
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


def convert_codegen(src: str | Path, dst: str | Path) -> Path:
    """Convert a CodeGen checkpoint folder into a GPT-J checkpoint folder (safetensors).

    Tensor by tensor: one fused qkv (or one other weight) is in memory at a time, in the
    checkpoint's own dtype, so a checkpoint bigger than RAM converts too.
    """
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
    n_embd = int(codegen_config["n_embd"])
    # safetensors, or .bin through torch.load(weights_only=True): no pickled code runs
    ckpt = Checkpoint(src)
    specs: list[tuple[str, str, tuple[int, ...]]] = []
    for name in ckpt.names():
        if name.endswith(BUFFERS):
            continue
        code, shape = ckpt.entries[name].dtype, ckpt.shape(name)
        if name.endswith("attn.qkv_proj.weight"):
            if shape != (3 * n_embd, n_embd):
                raise ModelError(f"{src}: tensor {name!r} is {list(shape)}, but n_embd "
                                 f"{n_embd} makes it {[3 * n_embd, n_embd]}")  # fmt: skip
            stem = name.removesuffix("qkv_proj.weight")
            specs += [(f"{stem}{part}_proj.weight", code, (n_embd, n_embd)) for part in "qkv"]
        else:
            specs.append((name, code, shape))
    held: dict[str, Any] = {}  # the k and v halves of the last qkv split, until written

    def produce(name: str) -> Any:
        if name in held:
            return held.pop(name)
        if name.endswith(("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight")):
            stem = name[: -len("q_proj.weight")]
            parts = split_qkv(ckpt.raw(f"{stem}qkv_proj.weight"), n_embd)
            held.update({f"{stem}{p}_proj.weight": w for p, w in zip("qkv", parts, strict=True)})
            return held.pop(name)
        return ckpt.raw(name)

    dst.mkdir(parents=True, exist_ok=True)
    write_safetensors(dst / "model.safetensors", specs, produce)
    config = {"architectures": ["GPTJForCausalLM"], "model_type": "gptj"}
    config |= gptj_config(codegen_config)
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    return dst
