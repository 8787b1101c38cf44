"""Read a Hugging Face checkpoint's weights one tensor at a time, and write safetensors so.

Exporting a checkpoint bigger than RAM (GPT-J-6B is 24 GB in fp32) must never hold all
its weights at once. `Checkpoint` lists names and shapes from the files' headers and
reads one tensor when asked: safetensors with plain reads at the header's offsets (no
mmap, so pages read once are not counted in the process's RSS), `pytorch_model.bin` with
`torch.load(mmap=True, weights_only=True)` (no pickled code runs; export only, never
on the serving path). Sharded checkpoints (`*.index.json`) are followed.
`write_safetensors` writes a file from a list of names, dtypes and shapes and a function
that produces each tensor, so converting CodeGen needs one tensor in memory at a time.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jpilot.model.errors import ModelError

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
TORCH_BINS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# safetensors dtype codes -> numpy; BF16 has no numpy type and is read as its uint16 bits
ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
             "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
             "U8": np.uint8, "BOOL": np.bool_}  # fmt: skip
NP_TO_ST = {np.dtype(v): k for k, v in ST_DTYPES.items() if k != "BF16"}


def bf16_to_fp32(bits: np.ndarray) -> np.ndarray:
    """Return bfloat16 values, given as their uint16 bits, as float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


@dataclass
class Entry:
    """Where one tensor lives."""

    file: Path  # the weight file holding it
    dtype: str  # safetensors dtype code ("F32", "F16", "BF16", ...)
    shape: tuple[int, ...]  # its shape
    start: int = 0  # safetensors: byte offset of its data in the file
    end: int = 0  # safetensors: byte offset past its data


class Checkpoint:
    """The weights of a checkpoint folder, read one tensor at a time on request."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.entries: dict[str, Entry] = {}
        self._torch: dict[Path, dict[str, Any]] = {}  # mmap'd .bin state dicts
        files = self._weight_files()
        if not files:
            raise ModelError(
                f"{self.folder} has no model.safetensors or pytorch_model.bin (nor a sharded "
                "index of them); download the checkpoint's weight files too"
            )
        for path in files:
            if path.suffix == ".safetensors":
                self._read_safetensors_header(path)
            else:
                self._read_torch_bin(path)
        self.files = files

    def _weight_files(self) -> list[Path]:
        """Return the weight files, safetensors first, following a shard index."""
        for single, index in (SAFETENSORS, TORCH_BINS):
            if (self.folder / single).is_file():
                return [self.folder / single]
            if (self.folder / index).is_file():
                weight_map = json.loads((self.folder / index).read_text())["weight_map"]
                return [self.folder / name for name in sorted(set(weight_map.values()))]
        return []

    def _read_safetensors_header(self, path: Path) -> None:
        """Record every tensor's dtype, shape and byte range from a safetensors header."""
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        base = 8 + size
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            self.entries[name] = Entry(path, info["dtype"], tuple(info["shape"]),
                                       base + start, base + end)  # fmt: skip

    def _read_torch_bin(self, path: Path) -> None:
        """Map a pytorch_model.bin lazily (weights_only: no pickled code runs)."""
        import torch

        try:
            state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError:  # legacy (pre-zip) format: cannot be mapped, read it whole
            state = torch.load(path, map_location="cpu", weights_only=True)
        self._torch[path] = state
        for name, tensor in state.items():
            code = "BF16" if tensor.dtype == torch.bfloat16 else NP_TO_ST[np.dtype(
                str(tensor.dtype).removeprefix("torch."))]  # fmt: skip
            self.entries[name] = Entry(path, code, tuple(tensor.shape))

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        """Return the tensor names, in file order."""
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        """Return a tensor's shape without reading it."""
        return self.entries[name].shape

    def raw(self, name: str) -> np.ndarray:
        """Read one tensor as stored (BF16 as its uint16 bits)."""
        entry = self.entries.get(name)
        if entry is None:
            raise ModelError(f"{self.folder} has no weight {name!r}; is it a complete checkpoint?")
        if entry.file in self._torch:
            import torch

            tensor = self._torch[entry.file][name]
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.view(torch.int16)
            array = tensor.numpy().copy()  # out of the mapping
            return array.view(np.uint16) if entry.dtype == "BF16" else array
        array = np.empty(entry.end - entry.start, dtype=np.uint8)
        with open(entry.file, "rb") as fh:
            fh.seek(entry.start)
            if fh.readinto(array.data) != array.size:
                raise ModelError(f"{entry.file} is truncated (tensor {name!r}); download it again")
        return array.view(ST_DTYPES[entry.dtype]).reshape(entry.shape)

    def get(self, name: str) -> np.ndarray:
        """Read one tensor as float32."""
        array = self.raw(name)
        if self.entries[name].dtype == "BF16":
            return bf16_to_fp32(array)
        return array if array.dtype == np.float32 else array.astype(np.float32)

    __getitem__ = get

    def largest_file_bytes(self) -> int:
        """Return the size of the biggest weight file (the export's memory yardstick)."""
        return max(path.stat().st_size for path in self.files)


def write_safetensors(
    path: Path,
    specs: Iterable[tuple[str, str, tuple[int, ...]]],
    produce: Callable[[str], np.ndarray],
) -> None:
    """Write a safetensors file tensor by tensor.

    `specs` lists (name, dtype code, shape) in file order; `produce(name)` returns that
    tensor's array (BF16 as uint16 bits), which is written and dropped before the next.
    """
    specs = list(specs)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, code, shape in specs:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(ST_DTYPES[code]).itemsize
        header[name] = {
            "dtype": code,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for name, code, shape in specs:
            array = np.ascontiguousarray(produce(name))
            if tuple(array.shape) != tuple(shape) or array.dtype != ST_DTYPES[code]:
                raise ModelError(f"tensor {name!r} came out {array.dtype}{list(array.shape)}, "
                                 f"not {code}{list(shape)}")  # fmt: skip
            fh.write(array.data.cast("B"))
