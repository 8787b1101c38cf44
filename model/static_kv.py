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

The graph is built straight from the checkpoint's files, one tensor at a time: each
weight is read (model/checkpoint.py), converted to fp16 or quantized (int8, int4) and
written to the bundle (model/onnx_data.py) before the next is read. So a checkpoint
bigger than RAM exports on an ordinary machine, without torch holding the model or a
second copy in an ONNX proto; past 64 MiB the weights go to `model.onnx.data`.

Written by hand: optimum exports no GQA graph for GPT-J, and ONNX Runtime's transformer
optimizer has no GPT-J attention fusion.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from jpilot.model.bundle import ONNX_FILE as ONNX_NAME
from jpilot.model.checkpoint import Checkpoint
from jpilot.model.errors import ModelError
from jpilot.model.graph import KEEP_INPUT
from jpilot.model.onnx_data import (
    EMBED_LIMIT,
    INT4_BLOCK,
    Initializers,
    quantize_int4_blocks,
    quantize_int8_columns,
)

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


def gptj_dims(config: dict[str, Any]) -> SimpleNamespace:
    """Return the dimensions build_graph needs from a GPT-J config.json dict."""
    n_embd = int(config["n_embd"])
    return SimpleNamespace(
        n_layer=int(config["n_layer"]),  # transformer blocks
        n_head=int(config["n_head"]),  # attention heads
        n_embd=n_embd,  # residual width
        n_inner=int(config.get("n_inner") or 4 * n_embd),  # MLP width
        rotary_dim=int(config.get("rotary_dim") or n_embd // int(config["n_head"])),
        n_positions=int(config.get("n_positions", 2048)),  # rows of the rotary tables
        vocab_size=int(config["vocab_size"]),
        layer_norm_epsilon=float(config.get("layer_norm_epsilon", 1e-5)),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def load_weights(src: Path) -> tuple[Checkpoint, SimpleNamespace]:
    """Return the checkpoint's weights (read lazily, tensor by tensor) and its dimensions."""
    config = json.loads((Path(src) / "config.json").read_text(encoding="utf-8"))
    return Checkpoint(src), gptj_dims(config)


def build_graph(
    weights: Mapping[str, np.ndarray],
    config: Any,
    dtype: str = "fp32",
    quantize: str | None = None,
    store: Initializers | None = None,
) -> Any:
    """Return the static-KV GPT-J as an onnx ModelProto, its weights written to `store`.

    `weights` maps checkpoint names to float32 arrays; each is fetched once, converted
    (fp16) or quantized (int8, int4) and handed to `store` before the next, so a lazy
    mapping (Checkpoint) keeps one tensor in memory at a time. Without a store the
    weights are embedded in the proto. Logits come for the last `num_logits_to_keep`
    positions (graph.py).
    """
    from onnx import TensorProto, helper

    n_layer, n_head, n_embd = config.n_layer, config.n_head, config.n_embd
    head_dim = n_embd // n_head
    rotary = config.rotary_dim or head_dim
    store = store or Initializers(Path("."), "model.onnx", embed_limit=2**63)
    float_type = TensorProto.FLOAT16 if dtype == "fp16" else TensorProto.FLOAT
    float_np = np.float16 if dtype == "fp16" else np.float32
    nodes: list[Any] = []
    shared: set[str] = set()  # activations already quantized (int8: one per input)

    def const(name: str, array: np.ndarray) -> str:
        return store.add(
            name, array.astype(float_np, copy=False) if array.dtype == np.float32 else array
        )

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def fetch(name: str, *shape: int) -> np.ndarray:
        """A checkpoint tensor, checked against the config's shape."""
        if name not in weights and name == "lm_head.weight" and config.tie_word_embeddings:
            name = "transformer.wte.weight"
        if name not in weights:
            raise ModelError(f"the checkpoint has no tensor {name!r}; is it a complete GPT-J?")
        array = weights[name]
        if tuple(array.shape) != shape:
            raise ModelError(
                f"tensor {name!r} is {list(array.shape)} but the config makes it "
                f"{list(shape)}; the weights do not belong to this config.json"
            )
        return array

    def weight(name: str, *shape: int) -> str:
        """An initializer named as in the checkpoint (warmstart.onnx_weights reads them)."""
        return const(name, fetch(name, *shape))

    def matmul(x: str, w: np.ndarray, wname: str, path: str) -> str:
        """x @ w for a [K, N] weight: MatMul, or as ONNX Runtime's quantizers rewrite it."""
        out = f"{path}/MatMul"
        if quantize == "int4":
            packed, scales = quantize_int4_blocks(w)
            inputs = [x, store.add(f"{wname}_Q4", packed), store.add(f"{wname}_scales", scales)]
            nodes.append(helper.make_node(
                "MatMulNBits", inputs, [out], name=f"{out}_Q4", domain="com.microsoft",
                K=w.shape[0], N=w.shape[1], bits=4, block_size=INT4_BLOCK, accuracy_level=4,
            ))  # fmt: skip
            return out
        if quantize == "int8":  # quantize_dynamic's nodes and names (warmstart reads them)
            q, scale, zero = quantize_int8_columns(w)
            del w
            wq = store.add(f"{wname}_quantized", q)
            store.add(f"{wname}_scale", scale)
            store.add(f"{wname}_zero_point", zero)
            xq, xs, xz = (f"{x}_quantized", f"{x}_scale", f"{x}_zero_point")
            if x not in shared:
                shared.add(x)
                nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz],
                                              name=f"{x}_QuantizeLinear"))  # fmt: skip
            scales = node("Mul", [xs, f"{wname}_scale"], f"{out}_quant_scales_mul:0")
            nodes[-1].name = f"{out}_quant_scales_mul"
            acc = node("MatMulInteger", [xq, wq, xz, f"{wname}_zero_point"],
                       f"{out}_output_quantized")  # fmt: skip
            nodes[-1].name = f"{out}_quant"
            cast = node("Cast", [acc], f"{out}_output_quantized_cast_output", to=TensorProto.FLOAT)
            nodes[-1].name = f"{out}_output_quantized_cast"
            node("Mul", [cast, scales], out)
            nodes[-1].name = f"{out}_quant_output_scale_mul"
            return out
        return node("MatMul", [x, const(wname, w)], out)

    def linear(x: str, module: str, w: np.ndarray, bias: int = 0) -> str:
        """x @ W.T (+ b) for the torch Linear `module` (W given), named as optimum names
        nodes (`/transformer/h.0/attn/q_proj/MatMul`), which warmstart.onnx_weights reads."""
        path = "/" + re.sub(r"\.(?!\d)", "/", module)  # transformer.h.0.x -> transformer/h.0/x
        out = matmul(x, w.T, f"{module}.weight_t", path)
        if not bias:
            return out
        return node("Add", [out, weight(f"{module}.bias", bias)], f"{path}/Add")

    def layer_norm(x: str, module: str) -> str:
        scale, shift = weight(f"{module}.weight", n_embd), weight(f"{module}.bias", n_embd)
        return node("LayerNormalization", [x, scale, shift], f"/{module}/LayerNorm", axis=-1,
                    epsilon=config.layer_norm_epsilon)  # fmt: skip

    cos, sin = rotary_tables(config.n_positions, rotary)
    const(ROTARY_TABLES[0], cos)
    const(ROTARY_TABLES[1], sin)
    wte = weight("transformer.wte.weight", config.vocab_size, n_embd)
    x = node("Gather", [wte, "input_ids"], "/transformer/wte")
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
        qkv_w = np.concatenate([fetch(f"{p}.attn.{n}_proj.weight", n_embd, n_embd) for n in "qkv"])
        qkv = linear(h, f"{p}.attn.qkv_proj", qkv_w)
        del qkv_w
        past = [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        present = [f"present.{i}.key", f"present.{i}.value"]
        kv_shape = [1, n_head, "max_length", head_dim]
        inputs += [helper.make_tensor_value_info(n, float_type, kv_shape) for n in past]
        outputs += [helper.make_tensor_value_info(n, float_type, kv_shape) for n in present]
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
        typed.append(helper.make_tensor_value_info(attn, float_type, [1, "sequence", n_embd]))
        out_w = fetch(f"{p}.attn.out_proj.weight", n_embd, n_embd)
        attn_out = linear(attn, f"{p}.attn.out_proj", out_w)
        fc_in = linear(h, f"{p}.mlp.fc_in", fetch(f"{p}.mlp.fc_in.weight", config.n_inner, n_embd))
        gelu = node("FastGelu", [fc_in, weight(f"{p}.mlp.fc_in.bias", config.n_inner)],
                    f"/{p}/mlp/FastGelu", domain="com.microsoft")  # fmt: skip  # gelu_new
        typed.append(helper.make_tensor_value_info(gelu, float_type, [1, "sequence", None]))
        fc_out_w = fetch(f"{p}.mlp.fc_out.weight", n_embd, config.n_inner)
        mlp = linear(gelu, f"{p}.mlp.fc_out", fc_out_w, bias=n_embd)
        x = node("Add", [node("Add", [x, attn_out], f"/{p}/residual_attn"), mlp], f"/{p}/residual")
    h = layer_norm(x, "transformer.ln_f")
    # prefill samples only the last position: slice before the vocabulary-wide lm_head
    inputs.append(helper.make_tensor_value_info(KEEP_INPUT, TensorProto.INT64, [1]))
    store.add("keep_ends", np.array([2**62], dtype=np.int64))
    store.add("keep_axes", np.array([1], dtype=np.int64))
    starts = node("Neg", [KEEP_INPUT], "keep_starts")
    nodes[-1].name = "logits_keep_neg"
    h = node("Slice", [h, starts, "keep_ends", "keep_axes"], f"{h}_last_k")
    nodes[-1].name = "logits_keep_slice"
    lm_head = fetch("lm_head.weight", config.vocab_size, n_embd)
    logits = linear(h, "lm_head", lm_head, bias=config.vocab_size)
    del lm_head
    nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
    outputs.insert(0, helper.make_tensor_value_info(
        "logits", float_type, [1, "logits_to_keep", config.vocab_size]
    ))  # fmt: skip
    store.close()
    graph = helper.make_graph(nodes, "gptj_static_kv", inputs, outputs, store.tensors,
                              value_info=typed)  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    return model


def export_static(
    src: Path,
    out: Path,
    dtype: str = "fp32",
    quantize: str | None = None,
    embed_limit: int | None = None,
) -> list[str]:
    """Write out/model.onnx for the GPT-J checkpoint at `src`, tensor by tensor.

    Past `embed_limit` weight bytes (onnx_data.EMBED_LIMIT by default) the weights go to
    out/model.onnx.data. Returns the external-data files written.
    """
    import onnx

    weights, config = load_weights(src)
    limit = EMBED_LIMIT if embed_limit is None else embed_limit
    store = Initializers(out, ONNX_NAME, embed_limit=limit)
    model = build_graph(weights, config, dtype, quantize, store)
    onnx.save_model(model, str(out / ONNX_NAME))
    return [store.location] if store.external else []
