"""Write an ONNX graph's weights tensor by tensor, quantized one tensor at a time.

`Initializers` collects a graph's constant tensors. Small models keep them inside
model.onnx; once they pass `embed_limit` bytes (protobuf cannot hold more than 2 GB,
and a big proto is a second copy of the weights in memory) every tensor goes to one
external-data file beside model.onnx, written as it comes, page-aligned, so only one
tensor is ever held. The quantizers reproduce ONNX Runtime's own recipes on one weight
(`quantize_dynamic` per-channel int8, `MatMulNBitsQuantizer` 4-bit blocks), so a
streamed export is the same model as quantizing the whole graph afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

ALIGN = 4096  # external tensors start on a page boundary (lets ONNX Runtime map them)
EMBED_LIMIT = 64 << 20  # weight bytes kept inside model.onnx; past it, all go external
INT4_BLOCK = 32  # weights per 4-bit block, each with its own fp32 scale
SMALL = 64  # bytes: constants this small stay in model.onnx (shape inference reads them)


class Initializers:
    """A graph's initializers, embedded while small, streamed to external data once big."""

    def __init__(self, folder: Path, onnx_name: str, embed_limit: int = EMBED_LIMIT) -> None:
        self.folder = folder
        self.location = f"{onnx_name}.data"  # relative to the folder: stays inside the bundle
        self.embed_limit = embed_limit
        self.tensors: list[Any] = []  # TensorProtos, in order
        self._pending: list[tuple[Any, np.ndarray]] = []  # embedded-so-far (proto, data)
        self._pending_bytes = 0
        self._file: BinaryIO | None = None
        self._offset = 0

    def add(self, name: str, array: np.ndarray) -> str:
        """Add a constant tensor named `name`; return the name."""
        from onnx import TensorProto, helper

        array = np.ascontiguousarray(array)
        tensor = TensorProto(name=name, dims=array.shape)
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        self.tensors.append(tensor)
        if self._file is None or array.nbytes <= SMALL:
            self._pending.append((tensor, array))
            self._pending_bytes += array.nbytes
            if self._file is None and self._pending_bytes > self.embed_limit:
                self._spill()
        else:
            self._write(tensor, array)
        return name

    def _spill(self) -> None:
        """Switch to external data: write every tensor held so far to the data file."""
        self._file = open(self.folder / self.location, "wb")  # noqa: SIM115 (closed in close())
        for tensor, array in self._pending:
            if array.nbytes > SMALL:
                self._write(tensor, array)
        self._pending = [(t, a) for t, a in self._pending if a.nbytes <= SMALL]

    def _write(self, tensor: Any, array: np.ndarray) -> None:
        """Append one tensor's bytes to the data file and point the proto at them."""
        assert self._file is not None
        pad = -self._offset % ALIGN
        self._file.write(b"\0" * pad)
        self._offset += pad
        self._file.write(array.data.cast("B") if array.nbytes else b"")
        fields = {"location": self.location, "offset": self._offset, "length": array.nbytes}
        for key, value in fields.items():
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)
        tensor.data_location = tensor.EXTERNAL
        self._offset += array.nbytes

    def close(self) -> list[str]:
        """Embed what is still held, close the data file; return the external files."""
        for tensor, array in self._pending:
            tensor.raw_data = array.tobytes()
        self._pending = []
        if self._file is None:
            return []
        self._file.close()
        return [self.location]

    @property
    def external(self) -> bool:
        """Whether the weights went to an external-data file."""
        return self._file is not None


def quantize_int8_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize a [K, N] MatMul weight to symmetric int8, one scale per column.

    Returns (int8 weights [K, N], float32 scales [N], int8 zero points [N]): the numbers
    ONNX Runtime's `quantize_dynamic(per_channel=True, weight_type=QInt8)` computes.
    """
    absmax = np.maximum(np.abs(w.min(axis=0).clip(max=0)), w.max(axis=0).clip(min=0))
    scale = (absmax.astype(np.float64) * 2 / 254).astype(np.float32)  # [N]
    scale[scale < np.finfo(np.float32).tiny] = 1.0  # an all-zero column
    q = np.empty(w.shape, dtype=np.int8)
    step = max(1, (1 << 22) // w.shape[1])  # rows per chunk: ~16 MB of float32 temporaries
    for k in range(0, w.shape[0], step):
        block = w[k : k + step] / scale
        np.round(block, out=block)
        q[k : k + step] = np.clip(block, -128, 127, out=block)
    return q, scale, np.zeros(w.shape[1], dtype=np.int8)


def quantize_int4_blocks(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantize a [K, N] MatMul weight to symmetric 4-bit blocks of INT4_BLOCK along K.

    Returns (packed uint8 [N, K / block, block / 2], float32 scales [N, K / block]): the
    layout of MatMulNBits, computed by the same ONNX Runtime kernel its quantizer calls.
    """
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits

    rows, cols = w.shape
    blocks = -(-rows // INT4_BLOCK)
    packed = np.zeros((cols, blocks, INT4_BLOCK // 2), dtype=np.uint8)
    scales = np.zeros((cols, blocks), dtype=np.float32)
    step = max(1, (1 << 22) // rows)  # columns per chunk (each is independent): ~16 MB
    for n in range(0, cols, step):
        part = np.zeros((blocks * INT4_BLOCK, min(step, cols - n)), dtype=np.float32)
        part[:rows] = w[:, n : n + step]  # zero-padded to whole blocks, contiguous
        zero_point = np.zeros((part.shape[1], (blocks + 1) // 2), dtype=np.uint8)  # unused
        quantize_matmul_4bits(packed[n : n + step], part, scales[n : n + step], zero_point,
                              INT4_BLOCK, part.shape[1], rows, True)  # fmt: skip
    return packed, scales
