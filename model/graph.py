"""ONNX graph edits applied at export: compute logits only for the positions asked for.

optimum's GPT-J export projects every position through the vocabulary-sized lm_head.
Prefill only samples from the last position, so a 512-token prompt spent most of the
lm_head's work on rows nobody reads. This adds an input `num_logits_to_keep` ([1] int64)
and a Slice before the lm_head MatMul, so logits are [B, K, V] for the last K positions.
The engine passes K=1 to generate and K=S to score.
"""

from __future__ import annotations

from typing import Any

from jpilot.model.errors import ModelError

KEEP_INPUT = "num_logits_to_keep"


def _producers(graph: Any) -> dict[str, Any]:
    """Map each tensor name to the node that outputs it."""
    return {out: node for node in graph.node for out in node.output}


def find_lm_head_matmul(graph: Any) -> Any:
    """Return the MatMul node whose (bias-added, maybe cast) result is the `logits` output."""
    producers = _producers(graph)
    node = producers.get("logits")
    while node is not None and node.op_type in ("Cast", "Add", "Identity"):
        node = next((producers[i] for i in node.input if i in producers), None)
    if node is None or node.op_type != "MatMul":
        raise ModelError("could not find the lm_head MatMul that produces `logits`")
    return node


def add_logits_to_keep(model: Any) -> Any:
    """Slice the hidden states before lm_head to the last `num_logits_to_keep` positions."""
    from onnx import TensorProto, helper

    graph = model.graph
    if any(i.name == KEEP_INPUT for i in graph.input):
        return model
    matmul = find_lm_head_matmul(graph)
    hidden = matmul.input[0]  # [B, S, E]
    sliced = f"{hidden}_last_k"
    graph.input.append(helper.make_tensor_value_info(KEEP_INPUT, TensorProto.INT64, [1]))
    graph.initializer.extend(
        [
            helper.make_tensor("keep_ends", TensorProto.INT64, [1], [2**62]),
            helper.make_tensor("keep_axes", TensorProto.INT64, [1], [1]),
        ]
    )
    nodes = [
        helper.make_node("Neg", [KEEP_INPUT], ["keep_starts"], name="logits_keep_neg"),
        helper.make_node(
            "Slice", [hidden, "keep_starts", "keep_ends", "keep_axes"], [sliced],
            name="logits_keep_slice",
        ),
    ]  # fmt: skip
    index = list(graph.node).index(matmul)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)
    matmul.input[0] = sliced
    for output in graph.output:  # the sequence axis of logits is now K, not S
        if output.name == "logits":
            output.type.tensor_type.shape.dim[1].dim_param = "logits_to_keep"
    return model
