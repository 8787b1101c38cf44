"""Build a GPT-J ONNX graph whose KV cache is a static buffer updated in place.

optimum's GPT-J export grows the KV cache by a Concat every step, so each decode step
copies the whole cache (about 15% of a step at a 1k-token context, docs/BENCHMARKS.md).
This graph computes the same GPT-J from the checkpoint's weights with ONNX Runtime's
`com.microsoft.GroupQueryAttention` (GQA; num_heads == kv_num_heads), which applies
GPT-J's partial, interleaved rotary embedding itself from cos/sin tables, and which
writes the new keys and values into the past buffer when `present` is bound to the same
OrtValue. The engine does that bind (`Engine._forward`), so a step writes only its new
rows. Rows beyond the current length are never read: cutting a cache back (prefix
reuse, rejected drafts) is free.

Inputs: input_ids [1, S] int64; seqlens_k [1] int32 (tokens in the cache after this
step, minus one); total_sequence_length [] int32 (that count); past_key_values.N.key /
.value [1, H, M, D] (M = n_positions + 1, the buffer); num_logits_to_keep [1] int64.
Outputs: logits [1, K, V] and present.N.key / .value (the same buffers).

Written by hand: optimum exports no GQA graph for GPT-J, and ONNX Runtime's transformer
optimizer has no GPT-J attention fusion.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from jpilot.model.errors import ModelError

KV_CACHES = ("auto", "static", "concat")  # `export --kv-cache`: auto = static where it can
ROTARY_TABLES = ("rotary_cos", "rotary_sin")  # constant initializers, not weights
STATIC_INPUTS = ("seqlens_k", "total_sequence_length")  # the engine detects the graph by these
ROTARY_MULTIPLE = 16  # GQA's cos/sin tables must be a multiple of 8 wide (rotary_dim / 2)


def resolve_kv_cache(kv_cache: str, config: dict) -> str:
    """Return "static" or "concat" for `--kv-cache` and a checkpoint config.

    auto picks static when GQA takes the model's rotary width; an explicit static that
    it cannot take is a ModelError.
    """
    head_dim = int(config["n_embd"]) // int(config["n_head"])
    rotary = int(config.get("rotary_dim") or head_dim)
    supported = rotary % ROTARY_MULTIPLE == 0 and rotary <= head_dim
    if kv_cache == "static" and not supported:
        raise ModelError(
            f"--kv-cache static needs a rotary_dim that is a multiple of {ROTARY_MULTIPLE} "
            f"(this model has {rotary}); export it with --kv-cache concat"
        )
    if kv_cache == "auto":
        return "static" if supported else "concat"
    return kv_cache


def kv_cache_kind(onnx_path: Path) -> str:
    """Return "static" if a bundle's graph takes the static-KV inputs, else "concat"."""
    import onnx

    model = onnx.load_model(str(onnx_path), load_external_data=False)
    names = {i.name for i in model.graph.input}
    return "static" if all(n in names for n in STATIC_INPUTS) else "concat"


def rotary_tables(n_positions: int, rotary_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Return GPT-J's cos and sin tables, each [n_positions, rotary_dim / 2] float32."""
    inv_freq = 1.0 / (10000 ** (np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim))
    angles = np.arange(n_positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def load_weights(src: Path) -> tuple[dict[str, np.ndarray], Any]:
    """Return the checkpoint's fp32 weights as numpy arrays, and its GPTJConfig."""
    import torch
    from transformers import GPTJForCausalLM

    model = GPTJForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return weights, model.config


def build_graph(weights: dict[str, np.ndarray], config: Any) -> Any:
    """Return the static-KV GPT-J as an onnx ModelProto (fp32)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = dict(weights)  # fused q/k/v weights are added below
    n_layer, n_head, n_embd = config.n_layer, config.n_head, config.n_embd
    head_dim = n_embd // n_head
    rotary = config.rotary_dim or head_dim
    eps = float(config.layer_norm_epsilon)
    init: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        init.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def weight(name: str) -> str:
        """An initializer named as in the checkpoint (warmstart.onnx_weights reads them)."""
        return const(name, weights[name])

    def linear(x: str, module: str, bias: bool) -> str:
        """x @ W.T (+ b) for the torch Linear `module`, node names as optimum writes them
        (`/transformer/h.0/attn/q_proj/MatMul`), which warmstart.onnx_weights relies on."""
        path = "/" + re.sub(r"\.(?!\d)", "/", module)  # transformer.h.0.x -> transformer/h.0/x
        out = node("MatMul", [x, const(f"{module}.weight_t", weights[f"{module}.weight"].T)],
                   f"{path}/MatMul")  # fmt: skip
        return node("Add", [out, weight(f"{module}.bias")], f"{path}/Add") if bias else out

    def layer_norm(x: str, module: str) -> str:
        scale, shift = weight(f"{module}.weight"), weight(f"{module}.bias")
        return node("LayerNormalization", [x, scale, shift], f"/{module}/LayerNorm", axis=-1,
                    epsilon=eps)  # fmt: skip

    cos, sin = rotary_tables(config.n_positions, rotary)
    const(ROTARY_TABLES[0], cos)
    const(ROTARY_TABLES[1], sin)
    x = node("Gather", [weight("transformer.wte.weight"), "input_ids"], "/transformer/wte")
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "sequence"]),
        helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, [1]),
        helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, []),
    ]
    outputs = []
    typed = []  # contrib-op outputs, typed so ONNX shape inference (and quantization) see them
    for i in range(n_layer):
        p = f"transformer.h.{i}"
        h = layer_norm(x, f"{p}.ln_1")
        # q, k and v in one MatMul (one activation quantization and kernel instead of
        # three); GQA takes them packed. warmstart.onnx_weights splits qkv_proj back.
        weights[f"{p}.attn.qkv_proj.weight"] = np.concatenate(
            [weights[f"{p}.attn.{n}_proj.weight"] for n in "qkv"]
        )
        qkv = linear(h, f"{p}.attn.qkv_proj", bias=False)
        past = [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        present = [f"present.{i}.key", f"present.{i}.value"]
        kv_shape = [1, n_head, "max_length", head_dim]
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in past]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in present]
        attn = f"/{p}/attn/GroupQueryAttention"
        nodes.append(
            helper.make_node(
                "GroupQueryAttention",
                [qkv, "", "", *past, *STATIC_INPUTS, *ROTARY_TABLES],
                [attn, *present], name=attn, domain="com.microsoft",
                num_heads=n_head, kv_num_heads=n_head, scale=1.0 / math.sqrt(head_dim),
                do_rotary=1, rotary_interleaved=1,
            )
        )  # fmt: skip
        typed.append(
            helper.make_tensor_value_info(attn, TensorProto.FLOAT, [1, "sequence", n_embd])
        )
        attn_out = linear(attn, f"{p}.attn.out_proj", bias=False)
        fc_in = linear(h, f"{p}.mlp.fc_in", bias=False)
        gelu = node("FastGelu", [fc_in, weight(f"{p}.mlp.fc_in.bias")], f"/{p}/mlp/FastGelu",
                    domain="com.microsoft")  # fmt: skip  # GPT-J's gelu_new: the tanh form
        typed.append(helper.make_tensor_value_info(gelu, TensorProto.FLOAT, [1, "sequence", None]))
        mlp = linear(gelu, f"{p}.mlp.fc_out", bias=True)
        x = node("Add", [node("Add", [x, attn_out], f"/{p}/residual_attn"), mlp], f"/{p}/residual")
    h = layer_norm(x, "transformer.ln_f")
    logits = linear(h, "lm_head", bias=True)
    nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
    outputs.insert(0, helper.make_tensor_value_info(
        "logits", TensorProto.FLOAT, [1, "sequence", config.vocab_size]
    ))  # fmt: skip
    graph = helper.make_graph(nodes, "gptj_static_kv", inputs, outputs, init, value_info=typed)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    return model


def export_static(src: Path) -> Any:
    """Return the static-KV graph of the GPT-J checkpoint at `src`."""
    weights, config = load_weights(src)
    return build_graph(weights, config)
