"""GPT-2 (CodeParrot is one): learned positions, attention then MLP, Conv1D weights.

x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)). GPT-2's Conv1D stores its weight as
[in, out], the transpose of a torch Linear's. `sequential_block` is the block that
gpt_bigcode and gpt_neo share with it, told how their weights are laid out.
CodeParrot sets Mistral's two stability options: scale_attn_by_inverse_layer_idx (a
per-layer scale, which GroupQueryAttention takes) and reorder_and_upcast_attn (the same
scores computed in fp32, which they are here), so both are served.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from jpilot.model.families import Dims, refuse

if TYPE_CHECKING:
    from jpilot.model.static_kv import GraphBuilder

TITLE = "GPT-2"
LM_HEAD_BIAS = False


def check(config: dict[str, Any]) -> None:
    """Refuse SantaCoder's first, custom-code layout (the shared options: check_common)."""
    if config.get("attention_head_type", "multihead") != "multihead":
        raise refuse(config, "attention_head_type", "a custom-code GPT-2; pull the "
                     "gpt_bigcode conversion, e.g. bigcode/gpt_bigcode-santacoder")  # fmt: skip


def dims(config: dict[str, Any], family: str = "gpt2", kv_heads: int = 0) -> Dims:
    """Read a GPT-2-style config.json dict (gpt_bigcode passes its family and KV heads)."""
    n_embd, n_head = int(config["n_embd"]), int(config["n_head"])
    scaled = config.get("scale_attn_weights", True)
    return Dims(
        family=family,
        n_layer=int(config["n_layer"]),
        n_head=n_head,
        kv_heads=kv_heads or n_head,
        n_embd=n_embd,
        n_inner=int(config.get("n_inner") or 4 * n_embd),
        rotary_dim=0,
        n_positions=int(config.get("n_positions", 1024)),
        vocab_size=int(config["vocab_size"]),
        layer_norm_epsilon=float(config.get("layer_norm_epsilon", 1e-5)),
        activation=str(config.get("activation_function", "gelu_new")),
        scale=1.0 / math.sqrt(n_embd // n_head) if scaled else 1.0,
        scale_by_layer=bool(config.get("scale_attn_by_inverse_layer_idx", False)),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", True)),
    )


def dense(g: GraphBuilder, module: str, n_out: int, n_in: int, conv1d: bool) -> np.ndarray:
    """A layer's weight as a torch Linear's [out, in] (a Conv1D's [in, out] transposed)."""
    if conv1d:
        return g.fetch(f"{module}.weight", n_in, n_out).T
    return g.fetch(f"{module}.weight", n_out, n_in)


def sequential_block(
    g: GraphBuilder, i: int, x: str, qkv: tuple[np.ndarray, np.ndarray | None],
    qkv_module: str, out_module: str, conv1d: bool = False,
) -> str:  # fmt: skip
    """x + attn(ln_1(x)), then + mlp(ln_2(.)); `qkv` is the packed q|k|v weight and bias."""
    d, p = g.dims, f"transformer.h.{i}"
    h = g.layer_norm(x, f"{p}.ln_1")
    packed = g.linear(h, qkv_module, *qkv)
    attn = g.attention(i, packed, f"{p}/attn")
    out_w = dense(g, out_module, d.n_embd, d.n_embd, conv1d)
    attn_out = g.linear(attn, out_module, out_w, g.fetch(f"{out_module}.bias", d.n_embd))
    x = g.node("Add", [x, attn_out], f"/{p}/residual_attn")
    h = g.layer_norm(x, f"{p}.ln_2")
    fc = g.linear(h, f"{p}.mlp.c_fc", dense(g, f"{p}.mlp.c_fc", d.n_inner, d.n_embd, conv1d))
    gelu = g.gelu(fc, f"{p}.mlp.c_fc", f"/{p}/mlp")
    proj_w = dense(g, f"{p}.mlp.c_proj", d.n_embd, d.n_inner, conv1d)
    mlp = g.linear(gelu, f"{p}.mlp.c_proj", proj_w, g.fetch(f"{p}.mlp.c_proj.bias", d.n_embd))
    return g.node("Add", [x, mlp], f"/{p}/residual")


def block(g: GraphBuilder, i: int, x: str) -> str:
    """One GPT-2 block: c_attn packs q|k|v already, as GroupQueryAttention takes them."""
    d, attn = g.dims, f"transformer.h.{i}.attn"
    qkv = (dense(g, f"{attn}.c_attn", 3 * d.n_embd, d.n_embd, conv1d=True),
           g.fetch(f"{attn}.c_attn.bias", 3 * d.n_embd))  # fmt: skip
    return sequential_block(g, i, x, qkv, f"{attn}.c_attn", f"{attn}.c_proj", conv1d=True)
