"""Rebuild a trainable GPT-J from an exported bundle, so training can go on from it.

`jpilot model train --init-from BUNDLE` starts a new run from the weights in a bundle's
model.onnx instead of a random init, and keeps the bundle's tokenizer. This is how a
shipped model is trained further when its fp32 checkpoint is gone: only the bundle
travels with the repository.

Weights are read from the ONNX graph by their names, and linear layers by the module path
that optimum-onnx puts into node names (`/transformer/h.0/attn/q_proj/MatMul`), so the
mapping never relies on the order of anonymous `onnx::MatMul_N` initializers:
- fp32/fp16 MatMul: the weight input is the (in, out) initializer; HF stores (out, in).
- dynamic int8 MatMulInteger: (q - zero_point) * scale, per output column, then transposed.
  This is lossy (about 0.4% of each column's range), which further training absorbs.
- the static-KV graph's fused `attn/qkv_proj` is split back into q, k and v.
Written by hand because no library maps an exported ONNX graph back to a checkpoint.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from transformers import GPTJConfig, GPTJForCausalLM

from jpilot.model.bundle import CARD_FILE, MANIFEST, Manifest, load_bundle
from jpilot.model.card import TRAINING_HEADING, card_for_run, is_run
from jpilot.model.errors import ModelError
from jpilot.model.train.config import HISTORY_DIR

# "/transformer/h.3/mlp/fc_in/MatMul" or ".../MatMul_quant" -> "transformer.h.3.mlp.fc_in"
_LINEAR_NODE = re.compile(r"^/((?:transformer/h\.\d+/(?:attn|mlp)/\w+)|lm_head)/MatMul(_quant)?$")


def config_from_manifest(m: Manifest) -> GPTJConfig:
    """Return the GPT-J config that a bundle's manifest describes."""
    return GPTJConfig(
        vocab_size=m.vocab_size,
        n_positions=m.n_positions,
        n_embd=m.n_head * m.head_dim,
        n_layer=m.n_layer,
        n_head=m.n_head,
        rotary_dim=m.rotary_dim,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=m.eos_token_id or 0,
        eos_token_id=m.eos_token_id or 0,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )


def onnx_weights(onnx_path: Path) -> dict[str, np.ndarray]:
    """Return HF-named fp32 weights read from an exported GPT-J graph (see module doc)."""
    graph = onnx.load(str(onnx_path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # the exporter merges equal tensors and names copies by Identity
        if node.op_type == "Identity" and node.input[0] in init:
            init[node.output[0]] = init[node.input[0]]
    weights = {k: v.astype(np.float32) for k, v in init.items() if not k.startswith("onnx::")}
    for node in graph.node:
        match = _LINEAR_NODE.match(node.name)
        if not match or node.op_type not in ("MatMul", "MatMulInteger"):
            continue
        name = match.group(1).replace("/", ".") + ".weight"
        if node.op_type == "MatMul":
            w = init[node.input[1]].astype(np.float32)  # (in, out)
        else:
            q = init[node.input[1]].astype(np.float32)  # (in, out) int8
            base = node.input[1].removesuffix("_quantized")
            w = (q - init[base + "_zero_point"].astype(np.float32)) * init[base + "_scale"]
        weights[name] = np.ascontiguousarray(w.T)  # (out, in), as nn.Linear stores it
        if name.endswith(".attn.qkv_proj.weight"):  # static-KV graphs fuse q, k and v
            for part, rows in zip("qkv", np.split(weights.pop(name), 3), strict=True):
                weights[name.replace("qkv_proj", f"{part}_proj")] = rows
    return weights


def model_from_bundle(bundle_dir: Path) -> GPTJForCausalLM:
    """Return a fp32 GPTJForCausalLM holding the weights of the bundle's model.onnx."""
    bundle = load_bundle(bundle_dir)
    if bundle.manifest.architecture != "gptj":
        raise ModelError(
            f"{bundle_dir} holds a {bundle.manifest.architecture} model; `jpilot model train` "
            "trains GPT-J, so --init-from takes GPT-J (or converted CodeGen) bundles"
        )
    if bundle.manifest.dtype == "int4":
        raise ModelError(
            f"{bundle_dir} holds 4-bit weights, too coarse to train on from; --init-from "
            "an fp32 or int8 bundle of the same model (`jpilot model export` without int4)"
        )
    model = GPTJForCausalLM(config_from_manifest(bundle.manifest))
    weights = onnx_weights(bundle.onnx_path)
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in weights and not k.endswith(".attn.bias")]
    if missing:
        raise ModelError(
            f"{bundle_dir}/model.onnx lacks {missing[:3]} ... ({len(missing)} weights); "
            "--init-from needs a bundle written by `jpilot model export`"
        )
    state = {k: torch.from_numpy(weights[k]).reshape(v.shape) for k, v in wanted.items()
             if k in weights}  # fmt: skip
    model.load_state_dict(state, strict=False)  # the causal-mask buffers keep their init
    return model


def add_blocks(model: GPTJForCausalLM, n: int) -> GPTJForCausalLM:
    """Return a deeper copy of `model` with `n` new blocks that start as the identity.

    Block expansion (LLaMA Pro, Wu et al. 2024): each new block is a copy of the block
    below it with the two projections that write into the residual stream (`attn.out_proj`
    and `mlp.fc_out`, with its bias) set to zero. A GPT-J block adds attention and MLP to
    its input, so a zeroed block passes its input through unchanged: the deeper model
    computes exactly what the old one did, and training grows the new blocks from there.
    New blocks are spread evenly: with 4 blocks and n = 2, one after blocks 1 and 3.
    Written by hand: transformers has no way to add layers to a trained model.
    """
    if n <= 0:
        raise ModelError(f"--add-layers must be positive, not {n}")
    old = model.config.n_layer
    after = [-(-(j + 1) * old // n) - 1 for j in range(n)]  # the old block each new one copies
    sources: list[tuple[int, bool]] = []  # (old block, is a new zeroed copy) per new block
    for i in range(old):
        sources += [(i, False)] + [(i, True)] * after.count(i)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("transformer.h.")}
    for new, (i, zeroed) in enumerate(sources):
        block = model.transformer.h[i].state_dict()
        for name, value in block.items():
            writes_residual = name.startswith(("attn.out_proj.", "mlp.fc_out."))
            value = torch.zeros_like(value) if zeroed and writes_residual else value.clone()
            state[f"transformer.h.{new}.{name}"] = value
    return _rebuilt(model, state, n_layer=len(sources))


def with_context(model: GPTJForCausalLM, n_positions: int) -> GPTJForCausalLM:
    """Return `model` declaring a context of `n_positions` tokens, to train on longer windows.

    No weight depends on the context length: GPT-J's rotary positions are computed, not
    learned. They do not extrapolate without training, though, so a run that lengthens the
    context must train on windows of the new length (`--seq-len`).
    """
    return _rebuilt(model, model.state_dict(), n_positions=n_positions)


def _rebuilt(model: GPTJForCausalLM, state: dict, **changes: int) -> GPTJForCausalLM:
    """Return a new GPT-J with `model`'s config changed by `changes`, holding `state`."""
    config = copy.deepcopy(model.config)
    for key, value in changes.items():
        setattr(config, key, value)
    rebuilt = GPTJForCausalLM(config)
    rebuilt.load_state_dict(state)
    return rebuilt


def keep_history(bundle_dir: Path, out: Path) -> None:
    """Copy the starting bundle's manifest and model card into OUT/init_from/.

    `jpilot model card` quotes that card's training section, so the new card tells the
    whole history even after the starting bundle is replaced by the new one.
    The trainer's own export (`RUN/bundle`) carries only a card stub, so when the starting
    bundle is one, its card is rendered from that run's files (summary, loss curve and its
    own `init_from/`), and the history goes back through every earlier run.
    """
    history = out / HISTORY_DIR
    history.mkdir(parents=True, exist_ok=True)
    if (bundle_dir / MANIFEST).is_file():
        shutil.copyfile(bundle_dir / MANIFEST, history / MANIFEST)
    card = bundle_dir / CARD_FILE
    text = card.read_text(encoding="utf-8") if card.is_file() else None
    if (text is None or TRAINING_HEADING not in text) and is_run(bundle_dir.parent):
        text = card_for_run(bundle_dir, bundle_dir.parent)
    if text is not None:
        (history / CARD_FILE).write_text(text, encoding="utf-8")
