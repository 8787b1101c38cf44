"""gpt_bigcode (SantaCoder, StarCoder, tiny_starcoder): GPT-2 with multi-query attention.

One key head and one value head serve every query head (`multi_query`, the default),
which GroupQueryAttention takes as kv_num_heads = 1: the KV cache is n_head times
smaller than GPT-2's. Its layers are torch Linears, not Conv1Ds. Trained with
fill-in-the-middle; the FIM tokens come from its tokenizer (export.FIM_NAMES).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jpilot.model.families import Dims, gpt2

if TYPE_CHECKING:
    from jpilot.model.static_kv import GraphBuilder

TITLE = "GPTBigCode (StarCoder family)"
LM_HEAD_BIAS = False


def check(config: dict[str, Any]) -> None:
    """gpt_bigcode has no options beyond the shared ones (families.check_common)."""


def dims(config: dict[str, Any]) -> Dims:
    """Read a gpt_bigcode config.json dict."""
    kv_heads = 1 if config.get("multi_query", True) else int(config["n_head"])
    config = {"activation_function": "gelu_pytorch_tanh", **config}  # its own default
    return gpt2.dims(config, family="gpt_bigcode", kv_heads=kv_heads)


def block(g: GraphBuilder, i: int, x: str) -> str:
    """One block; without multi_query, c_attn's rows are per head (q, k, v) and regrouped."""
    d, attn = g.dims, f"transformer.h.{i}.attn"
    width = d.n_embd + 2 * d.kv_heads * d.head_dim
    w, b = g.fetch(f"{attn}.c_attn.weight", width, d.n_embd), g.fetch(f"{attn}.c_attn.bias", width)
    if d.kv_heads > 1:  # [head, (q, k, v), D] -> [(q, k, v), head, D]
        w = w.reshape(d.n_head, 3, d.head_dim, d.n_embd).transpose(1, 0, 2, 3).reshape(width, -1)
        b = b.reshape(d.n_head, 3, d.head_dim).transpose(1, 0, 2).reshape(width)
    return gpt2.sequential_block(g, i, x, (w, b), f"{attn}.c_attn", f"{attn}.c_proj")
