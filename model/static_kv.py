"""Build a model's ONNX graph whose KV cache is a static buffer updated in place.

optimum's export grows the KV cache by a Concat every step, so each decode step copies
the whole cache (about 15% of a step at a 1k-token context, docs/BENCHMARKS.md). This
graph computes the same model from the checkpoint's weights with ONNX Runtime's
`com.microsoft.GroupQueryAttention` (GQA), which writes the new keys and values into
the past buffer when `present` is bound to the same OrtValue. The engine does that bind
(`Engine._forward`), so a step writes only its new rows. Rows beyond the current length
are never read: cutting a cache back (prefix reuse, rejected drafts) is free.

One builder (GraphBuilder) serves every family; a family module (model/families/)
wires its parts into one block. GQA covers them all: GPT-J's partial, interleaved
rotary embedding from cos/sin tables; multi-query attention (gpt_bigcode) as
kv_num_heads = 1; GPT-Neo's local layers as a sliding window and its unscaled scores
as scale = 1; GPT-2's learned positions are a Gather of wpe at total - S .. total - 1.

Inputs: input_ids [1, S] int64; seqlens_k [1] int32 (tokens in the cache after this
step, minus one); total_sequence_length [] int32 (that count); past_key_values.N.key /
.value [1, KV heads, M, D] (M = n_positions + 1, the buffer); num_logits_to_keep [1]
int64. Outputs: logits [1, K, V] and present.N.key / .value (the same buffers).

The graph is built straight from the checkpoint's files, one tensor at a time: each
weight is read (model/checkpoint.py), converted to fp16 or quantized (int8, int4) and
written to the bundle (model/onnx_data.py) before the next is read. So a checkpoint
bigger than RAM exports on an ordinary machine, without torch holding the model or a
second copy in an ONNX proto; past 64 MiB the weights go to `model.onnx.data`.

Written by hand: optimum exports no GQA graph for these models, and ONNX Runtime's
transformer optimizer has no GPT-J attention fusion.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jpilot.model.bundle import ONNX_FILE as ONNX_NAME
from jpilot.model.checkpoint import Checkpoint
from jpilot.model.errors import ModelError
from jpilot.model.families import TANH_GELUS, Dims, read_dims
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
    it cannot take is a ModelError. Only GPT-J has optimum's concat graph in jpilot: the
    other families' static graphs serve every config they accept.
    """
    dims = read_dims(config)
    if dims.family != "gptj":
        if kv_cache == "concat":
            raise ModelError(f"--kv-cache concat is for GPT-J; a {dims.family} bundle always "
                             "has the static KV cache (drop --kv-cache)")  # fmt: skip
        return "static"
    rotary, head_dim = dims.rotary_dim, dims.head_dim
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


def load_weights(src: Path) -> tuple[Checkpoint, Dims]:
    """Return the checkpoint's weights (read lazily, tensor by tensor) and its dimensions."""
    config = json.loads((Path(src) / "config.json").read_text(encoding="utf-8"))
    return Checkpoint(src), read_dims(config)


class GraphBuilder:
    """The parts every family's graph is made of; a family module wires them into a block.

    Weights are fetched once by checkpoint name, converted (fp16) or quantized (int8,
    int4) and handed to `store` before the next, so a lazy mapping (Checkpoint) keeps one
    tensor in memory at a time. Node and initializer names follow optimum's GPT-J export
    (`/transformer/h.0/attn/q_proj/MatMul`), which warmstart.onnx_weights reads.
    """

    def __init__(self, weights: Mapping[str, np.ndarray], dims: Dims, dtype: str,
                 quantize: str | None, store: Initializers) -> None:  # fmt: skip
        from onnx import TensorProto, helper

        self.types = TensorProto  # element type codes (Cast's `to`)
        self.helper, self.weights, self.dims, self.quantize = helper, weights, dims, quantize
        self.store = store
        self.float_type = TensorProto.FLOAT16 if dtype == "fp16" else TensorProto.FLOAT
        self.float_np = np.float16 if dtype == "fp16" else np.float32
        self.nodes: list[Any] = []
        self.shared: set[str] = set()  # activations already quantized (int8: one per input)
        self.inputs = [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "sequence"]),
            helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, [1]),
            helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, []),
        ]
        self.outputs: list[Any] = []
        self.typed: list[Any] = []  # contrib-op outputs, typed for ONNX shape inference

    def const(self, name: str, array: np.ndarray) -> str:
        """Add a constant (float32 ones in the graph's float type); return its name."""
        if array.dtype == np.float32:
            array = array.astype(self.float_np, copy=False)
        return self.store.add(name, array)

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        """Add a one-output node named after its output; return the output."""
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output,
                                                domain=domain, **attrs))  # fmt: skip
        return output

    def fetch(self, name: str, *shape: int) -> np.ndarray:
        """A checkpoint tensor, checked against the config's shape."""
        if name not in self.weights and name.startswith("transformer."):
            bare = name.removeprefix("transformer.")  # openai-community/gpt2 has no prefix
            name = bare if bare in self.weights else name
        if name not in self.weights and name == "lm_head.weight" and self.dims.tie_word_embeddings:
            return self.fetch("transformer.wte.weight", *shape)
        if name not in self.weights:
            raise ModelError(f"the checkpoint has no tensor {name!r}; is it a complete "
                             f"{self.dims.family}?")  # fmt: skip
        array = self.weights[name]
        if tuple(array.shape) != shape:
            raise ModelError(
                f"tensor {name!r} is {list(array.shape)} but the config makes it "
                f"{list(shape)}; the weights do not belong to this config.json"
            )
        return array

    def weight(self, name: str, *shape: int) -> str:
        """An initializer named as in the checkpoint."""
        return self.const(name, self.fetch(name, *shape))

    def matmul(self, x: str, w: np.ndarray, wname: str, path: str) -> str:
        """x @ w for a [K, N] weight: MatMul, or as ONNX Runtime's quantizers rewrite it."""
        helper, store, out = self.helper, self.store, f"{path}/MatMul"
        if self.quantize == "int4":
            packed, scales = quantize_int4_blocks(w)
            inputs = [x, store.add(f"{wname}_Q4", packed), store.add(f"{wname}_scales", scales)]
            self.nodes.append(helper.make_node(
                "MatMulNBits", inputs, [out], name=f"{out}_Q4", domain="com.microsoft",
                K=w.shape[0], N=w.shape[1], bits=4, block_size=INT4_BLOCK, accuracy_level=4,
            ))  # fmt: skip
            return out
        if self.quantize == "int8":  # quantize_dynamic's nodes and names (warmstart reads them)
            q, scale, zero = quantize_int8_columns(w)
            del w
            wq = store.add(f"{wname}_quantized", q)
            store.add(f"{wname}_scale", scale)
            store.add(f"{wname}_zero_point", zero)
            xq, xs, xz = (f"{x}_quantized", f"{x}_scale", f"{x}_zero_point")
            if x not in self.shared:
                self.shared.add(x)
                self.nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz],
                                                   name=f"{x}_QuantizeLinear"))  # fmt: skip
            scales = self.node("Mul", [xs, f"{wname}_scale"], f"{out}_quant_scales_mul:0")
            self.nodes[-1].name = f"{out}_quant_scales_mul"
            acc = self.node("MatMulInteger", [xq, wq, xz, f"{wname}_zero_point"],
                            f"{out}_output_quantized")  # fmt: skip
            self.nodes[-1].name = f"{out}_quant"
            cast = self.node(
                "Cast", [acc], f"{out}_output_quantized_cast_output", to=self.types.FLOAT
            )
            self.nodes[-1].name = f"{out}_output_quantized_cast"
            self.node("Mul", [cast, scales], out)
            self.nodes[-1].name = f"{out}_quant_output_scale_mul"
            return out
        return self.node("MatMul", [x, self.const(wname, w)], out)

    def linear(self, x: str, module: str, w: np.ndarray, b: np.ndarray | None = None) -> str:
        """x @ W.T (+ b) for the torch Linear `module`, W [out, in] (a Conv1D passes W.T)."""
        path = "/" + re.sub(r"\.(?!\d)", "/", module)  # transformer.h.0.x -> transformer/h.0/x
        out = self.matmul(x, w.T, f"{module}.weight_t", path)
        if b is None:
            return out
        return self.node("Add", [out, self.const(f"{module}.bias", b)], f"{path}/Add")

    def layer_norm(self, x: str, module: str) -> str:
        """LayerNorm over the residual width with the checkpoint's weight and bias."""
        n = self.dims.n_embd
        scale, shift = self.weight(f"{module}.weight", n), self.weight(f"{module}.bias", n)
        return self.node("LayerNormalization", [x, scale, shift], f"/{module}/LayerNorm",
                         axis=-1, epsilon=self.dims.layer_norm_epsilon)  # fmt: skip

    def gelu(self, x: str, module: str, path: str) -> str:
        """The MLP's activation with the bias of the Linear `module` before it folded in."""
        op = "FastGelu" if self.dims.activation in TANH_GELUS else "BiasGelu"  # erf: "gelu"
        bias = self.weight(f"{module}.bias", self.dims.n_inner)
        out = self.node(op, [x, bias], f"{path}/{op}", domain="com.microsoft")
        self.typed.append(self.helper.make_tensor_value_info(out, self.float_type,
                                                             [1, "sequence", None]))  # fmt: skip
        return out

    def attention(self, layer: int, qkv: str, module: str) -> str:
        """GroupQueryAttention over packed q|k|v, its KV cache a static in-place buffer."""
        d, helper = self.dims, self.helper
        past = [f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"]
        present = [f"present.{layer}.key", f"present.{layer}.value"]
        kv_shape = [1, d.kv_heads, "max_length", d.head_dim]
        self.inputs += [helper.make_tensor_value_info(n, self.float_type, kv_shape) for n in past]
        self.outputs += [helper.make_tensor_value_info(n, self.float_type, kv_shape)
                         for n in present]  # fmt: skip
        inputs, attrs = [qkv, "", "", *past, *STATIC_INPUTS], {}
        if d.rotary_dim:  # GPT-J: partial, interleaved rotary from the cos/sin tables
            inputs += ROTARY_TABLES
            attrs = {"do_rotary": 1, "rotary_interleaved": 1}
        window = d.windows[layer] if d.windows else 0
        if window:  # both count the query's own key (tests/model/test_families.py checks it)
            attrs["local_window_size"] = window
        scale = d.scale / (layer + 1) if d.scale_by_layer else d.scale
        out = f"/{module}/GroupQueryAttention"
        self.nodes.append(helper.make_node(
            "GroupQueryAttention", inputs, [out, *present], name=out, domain="com.microsoft",
            num_heads=d.n_head, kv_num_heads=d.kv_heads, scale=scale, **attrs,
        ))  # fmt: skip
        self.typed.append(helper.make_tensor_value_info(out, self.float_type,
                                                        [1, "sequence", d.n_embd]))  # fmt: skip
        return out

    def embed(self) -> str:
        """Token embeddings, plus learned position embeddings where there is no rotary."""
        d = self.dims
        wte = self.weight("transformer.wte.weight", d.vocab_size, d.n_embd)
        x = self.node("Gather", [wte, "input_ids"], "/transformer/wte")
        if d.rotary_dim:
            cos, sin = rotary_tables(d.n_positions, d.rotary_dim)
            self.const(ROTARY_TABLES[0], cos)
            self.const(ROTARY_TABLES[1], sin)
            return x
        # positions total - S .. total - 1: the new tokens follow the cached ones
        self.store.add("position_zero", np.array(0, dtype=np.int64))
        self.store.add("position_one", np.array(1, dtype=np.int64))
        self.store.add("position_axes", np.array([0], dtype=np.int64))
        total = self.node(
            "Cast", ["total_sequence_length"], "/positions/total", to=self.types.INT64
        )
        shape = self.node("Shape", ["input_ids"], "/positions/shape", start=1, end=2)
        seq = self.node("Squeeze", [shape, "position_axes"], "/positions/seq")
        start = self.node("Sub", [total, seq], "/positions/start")
        # Range from 0, then + start: a Gather straight from Range(start, total) is turned
        # into a Slice by ONNX Runtime 1.32's optimizer, which then fails on scalar bounds
        steps = self.node("Range", ["position_zero", seq, "position_one"], "/positions/steps")
        ids = self.node("Add", [steps, start], "/positions/ids")
        wpe = self.weight("transformer.wpe.weight", d.n_positions, d.n_embd)
        return self.node("Add", [x, self.node("Gather", [wpe, ids], "/transformer/wpe")],
                         "/transformer/embed")  # fmt: skip

    def finish(self, x: str, lm_head_bias: bool) -> Any:
        """Final LayerNorm and lm_head for the last `num_logits_to_keep` positions; the model."""
        from onnx import TensorProto

        d, helper = self.dims, self.helper
        h = self.layer_norm(x, "transformer.ln_f")
        # prefill samples only the last position: slice before the vocabulary-wide lm_head
        self.inputs.append(helper.make_tensor_value_info(KEEP_INPUT, TensorProto.INT64, [1]))
        self.store.add("keep_ends", np.array([2**62], dtype=np.int64))
        self.store.add("keep_axes", np.array([1], dtype=np.int64))
        starts = self.node("Neg", [KEEP_INPUT], "keep_starts")
        self.nodes[-1].name = "logits_keep_neg"
        h = self.node("Slice", [h, starts, "keep_ends", "keep_axes"], f"{h}_last_k")
        self.nodes[-1].name = "logits_keep_slice"
        bias = self.fetch("lm_head.bias", d.vocab_size) if lm_head_bias else None
        logits = self.linear(h, "lm_head", self.fetch("lm_head.weight", d.vocab_size, d.n_embd),
                             bias)  # fmt: skip
        self.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
        self.outputs.insert(0, helper.make_tensor_value_info(
            "logits", self.float_type, [1, "logits_to_keep", d.vocab_size]
        ))  # fmt: skip
        self.store.close()
        graph = helper.make_graph(self.nodes, f"{d.family}_static_kv", self.inputs, self.outputs,
                                  self.store.tensors, value_info=self.typed)  # fmt: skip
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        )
        model.ir_version = 8
        return model


def build_graph(
    weights: Mapping[str, np.ndarray],
    dims: Dims,
    dtype: str = "fp32",
    quantize: str | None = None,
    store: Initializers | None = None,
) -> Any:
    """Return the static-KV graph of a `dims.family` model as an onnx ModelProto.

    `weights` maps checkpoint names to float32 arrays; the weights are written to `store`
    (without one they are embedded in the proto). Logits come for the last
    `num_logits_to_keep` positions (graph.py).
    """
    store = store or Initializers(Path("."), "model.onnx", embed_limit=2**63)
    g = GraphBuilder(weights, dims, dtype, quantize, store)
    blocks = importlib.import_module(f"jpilot.model.families.{dims.family}")
    x = g.embed()
    for i in range(dims.n_layer):
        x = blocks.block(g, i, x)
    return g.finish(x, lm_head_bias=blocks.LM_HEAD_BIAS)


def export_static(
    src: Path,
    out: Path,
    dtype: str = "fp32",
    quantize: str | None = None,
    embed_limit: int | None = None,
) -> list[str]:
    """Write out/model.onnx for the checkpoint at `src`, tensor by tensor.

    Past `embed_limit` weight bytes (onnx_data.EMBED_LIMIT by default) the weights go to
    out/model.onnx.data. Returns the external-data files written.
    """
    import onnx

    weights, dims = load_weights(src)
    limit = EMBED_LIMIT if embed_limit is None else embed_limit
    store = Initializers(out, ONNX_NAME, embed_limit=limit)
    model = build_graph(weights, dims, dtype, quantize, store)
    onnx.save_model(model, str(out / ONNX_NAME))
    return [store.location] if store.external else []
