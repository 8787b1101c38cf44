"""GPT-J (and CodeGen, converted to it): rotary positions, parallel attention and MLP.

One LayerNorm feeds both the attention and the MLP, and the block adds both to the
residual: x + attn(ln_1(x)) + mlp(ln_1(x)). q, k and v have no bias; the lm_head has one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from jpilot.model.families import Dims

if TYPE_CHECKING:
    from jpilot.model.static_kv import GraphBuilder

TITLE = "GPT-J"
LM_HEAD_BIAS = True


def check(config: dict[str, Any]) -> None:
    """GPT-J has no options beyond the shared ones (families.check_common)."""


def dims(config: dict[str, Any]) -> Dims:
    """Read a GPT-J config.json dict."""
    n_embd, n_head = int(config["n_embd"]), int(config["n_head"])
    return Dims(
        family="gptj",
        n_layer=int(config["n_layer"]),
        n_head=n_head,
        kv_heads=n_head,
        n_embd=n_embd,
        n_inner=int(config.get("n_inner") or 4 * n_embd),
        rotary_dim=int(config.get("rotary_dim") or n_embd // n_head),
        n_positions=int(config.get("n_positions", 2048)),
        vocab_size=int(config["vocab_size"]),
        layer_norm_epsilon=float(config.get("layer_norm_epsilon", 1e-5)),
        activation=str(config.get("activation_function", "gelu_new")),
        scale=1.0 / math.sqrt(n_embd // n_head),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def block(g: GraphBuilder, i: int, x: str) -> str:
    """One GPT-J block on residual `x`; return the new residual."""
    d, p = g.dims, f"transformer.h.{i}"
    h = g.layer_norm(x, f"{p}.ln_1")
    # q, k and v in one MatMul (one activation quantization and kernel instead of
    # three); GQA takes them packed. warmstart.onnx_weights splits qkv_proj back.
    qkv_w = np.concatenate(
        [g.fetch(f"{p}.attn.{n}_proj.weight", d.n_embd, d.n_embd) for n in "qkv"]
    )
    qkv = g.linear(h, f"{p}.attn.qkv_proj", qkv_w)
    del qkv_w
    attn = g.attention(i, qkv, f"{p}/attn")
    attn_out = g.linear(
        attn, f"{p}.attn.out_proj", g.fetch(f"{p}.attn.out_proj.weight", d.n_embd, d.n_embd)
    )
    fc_in = g.linear(h, f"{p}.mlp.fc_in", g.fetch(f"{p}.mlp.fc_in.weight", d.n_inner, d.n_embd))
    gelu = g.gelu(fc_in, f"{p}.mlp.fc_in", f"/{p}/mlp")
    fc_out_w = g.fetch(f"{p}.mlp.fc_out.weight", d.n_embd, d.n_inner)
    mlp = g.linear(gelu, f"{p}.mlp.fc_out", fc_out_w, g.fetch(f"{p}.mlp.fc_out.bias", d.n_embd))
    return g.node(
        "Add", [g.node("Add", [x, attn_out], f"/{p}/residual_attn"), mlp], f"/{p}/residual"
    )
