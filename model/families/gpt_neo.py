"""GPT-Neo: GPT-2's block with global and local (sliding-window) attention layers.

`attention_types` lists the layers' kinds ([[["global", "local"], 12]] alternates them
over 24 layers); a local layer's query sees the `window_size` latest keys, itself
included, which GroupQueryAttention's local_window_size does. GPT-Neo does not scale
attention scores by 1/sqrt(head_dim) (scale = 1). q, k and v have no bias.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from jpilot.model.families import Dims, gpt2, refuse, windows_of

if TYPE_CHECKING:
    from jpilot.model.static_kv import GraphBuilder

TITLE = "GPT-Neo"
LM_HEAD_BIAS = False
KINDS = ("global", "local")


def layer_kinds(config: dict[str, Any]) -> list[str]:
    """Return each layer's attention kind, expanded from attention_types."""
    if isinstance(config.get("attention_layers"), list):
        return [str(kind) for kind in config["attention_layers"]]
    kinds: list[str] = []
    for pattern, repeats in config.get("attention_types", [[["global", "local"], 12]]):
        kinds += list(pattern) * int(repeats)
    return kinds


def check(config: dict[str, Any]) -> None:
    """Refuse attention kinds other than global and local, and a layer count they miss."""
    kinds = layer_kinds(config)
    odd = sorted(set(kinds) - set(KINDS))
    if odd:
        raise refuse(config, "attention_types", f"attention kind {odd[0]!r}: it serves "
                     f"{' and '.join(KINDS)} layers")  # fmt: skip
    if len(kinds) != int(config.get("num_layers", len(kinds))):
        raise refuse(config, "attention_types", f"{len(kinds)} layer kinds for "
                     f"{config.get('num_layers')} layers")  # fmt: skip


def dims(config: dict[str, Any]) -> Dims:
    """Read a GPT-Neo config.json dict."""
    n_embd, n_layer = int(config["hidden_size"]), int(config["num_layers"])
    local = [kind == "local" for kind in layer_kinds(config)]
    return Dims(
        family="gpt_neo",
        n_layer=n_layer,
        n_head=int(config["num_heads"]),
        kv_heads=int(config["num_heads"]),
        n_embd=n_embd,
        n_inner=int(config.get("intermediate_size") or 4 * n_embd),
        rotary_dim=0,
        n_positions=int(config.get("max_position_embeddings", 2048)),
        vocab_size=int(config["vocab_size"]),
        layer_norm_epsilon=float(config.get("layer_norm_epsilon", 1e-5)),
        activation=str(config.get("activation_function", "gelu_new")),
        scale=1.0,
        windows=windows_of(n_layer, int(config.get("window_size", 256)), local),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", True)),
    )


def block(g: GraphBuilder, i: int, x: str) -> str:
    """One GPT-Neo block: separate q, k, v projections packed into one MatMul."""
    d, attn = g.dims, f"transformer.h.{i}.attn.attention"
    w = np.concatenate([g.fetch(f"{attn}.{n}_proj.weight", d.n_embd, d.n_embd) for n in "qkv"])
    return gpt2.sequential_block(g, i, x, (w, None), f"{attn}.qkv_proj", f"{attn}.out_proj")
