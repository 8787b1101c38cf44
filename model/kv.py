"""KV-cache tensors kept as OrtValues on the model's device, and a device-side slicer.

Prefix reuse needs "the first L positions" of a cached [1, H, T, D] tensor. Copying it
through the host would cost a round trip on CUDA, so a tiny ONNX graph (one Slice per
tensor) runs on the same provider as the model. The same code path runs on CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from jpilot.model.providers import Placement

ORT_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def empty_kv(
    shapes: list[tuple[int, int]], dtype: Any, where: Placement, length: int = 0
) -> list[Any]:
    """Return KV tensors [1, H, length, D] holding no tokens, one per (H, D) in `shapes`.

    length 0: a growing cache's empty past. length > 0: a static-KV model's buffers
    (static_kv.py), left uninitialized because rows past the cache's length are never read.
    """
    return [
        ort.OrtValue.ortvalue_from_shape_and_type(
            [1, heads, length, dim], dtype, where.device_type, where.device_id
        )
        for heads, dim in shapes
    ]


def kv_nbytes(kv: list[Any]) -> int:
    """Return the bytes held by a list of KV OrtValues."""
    total = 0
    for value in kv:
        itemsize = np.dtype(ORT_TO_NUMPY[value.data_type()]).itemsize
        total += int(np.prod(value.shape())) * itemsize
    return total


class KVSlicer:
    """Cut every tensor of a KV cache to its first `length` positions, on the device."""

    def __init__(self, count: int, dtype: Any, providers: list[Any], where: Placement) -> None:
        from onnx import TensorProto, helper

        elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
        names = [f"kv{i}" for i in range(count)]
        starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
        axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
        nodes = [
            helper.make_node("Slice", [n, "starts", "length", "axes"], [f"{n}_out"]) for n in names
        ]
        shape = ["b", "h", "t", "d"]
        inputs = [helper.make_tensor_value_info(n, elem, shape) for n in names]
        inputs.append(helper.make_tensor_value_info("length", TensorProto.INT64, [1]))
        outputs = [helper.make_tensor_value_info(f"{n}_out", elem, shape) for n in names]
        graph = helper.make_graph(nodes, "kv_slice", inputs, outputs, [starts, axes])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
        self._names = names
        self._where = where

    def __call__(self, kv: list[Any], length: int) -> list[Any]:
        """Return new OrtValues holding positions [0, length) of each tensor in `kv`."""
        io = self._session.io_binding()
        for name, value in zip(self._names, kv, strict=True):
            io.bind_ortvalue_input(name, value)
        io.bind_cpu_input("length", np.array([length], dtype=np.int64))
        for name in self._names:
            io.bind_output(f"{name}_out", self._where.device_type, self._where.device_id)
        self._session.run_with_iobinding(io)
        return list(io.get_outputs())
