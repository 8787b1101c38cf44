"""Check the values in a bundle's `jpilot.json` before the engine trusts them.

A manifest is data from a folder a user may have downloaded, so every field is checked
for its type and a sane range here. A wrong value becomes a ModelError naming the field,
instead of a bare TypeError at load or a failure inside ONNX Runtime at every completion.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jpilot.model.errors import ModelError

DTYPES = ("fp32", "fp16", "int8", "int4")
FIM_KEYS = ("prefix", "suffix", "middle")
SHA256 = re.compile(r"[0-9a-f]{64}")
# field -> (least, most) for the integer fields; the upper bounds are far above any real
# model (GPT-J-6B: 28 layers, 16 heads of 256, vocabulary 50400, 2048 positions)
INT_RANGES = {
    "n_layer": (1, 1024),
    "n_head": (1, 1024),
    "head_dim": (1, 4096),
    "rotary_dim": (0, 4096),
    "vocab_size": (1, 1 << 21),
    "n_positions": (1, 1 << 20),
    "format": (1, 1 << 10),
}


def check_values(path: Path, raw: dict[str, Any]) -> None:
    """Raise ModelError naming the first field of `raw` whose type or range is wrong."""

    def bad(field: str, want: str) -> ModelError:
        return ModelError(
            f"{path}: {field} is {raw.get(field)!r}, but it must be {want}; the manifest is "
            "damaged or was edited by hand: re-export the bundle"
        )

    for field, (lo, hi) in INT_RANGES.items():
        if field in raw and not _int_in(raw[field], lo, hi):
            raise bad(field, f"an integer from {lo} to {hi}")
    if _int_in(raw.get("head_dim"), 1, 4096) and _int_in(raw.get("rotary_dim"), 0, 4096):
        if raw["rotary_dim"] > raw["head_dim"]:
            raise bad("rotary_dim", f"at most head_dim ({raw['head_dim']})")
    vocab = raw.get("vocab_size") if _int_in(raw.get("vocab_size"), 1, 1 << 21) else None
    if vocab is not None:
        eos = raw.get("eos_token_id")
        if eos is not None and not _int_in(eos, 0, vocab - 1):
            raise bad("eos_token_id", f"null or a token id from 0 to {vocab - 1}")
        fim = raw.get("fim")
        if fim is not None and not (
            isinstance(fim, dict)
            and sorted(fim) == sorted(FIM_KEYS)
            and all(_int_in(fim[k], 0, vocab - 1) for k in FIM_KEYS)
        ):
            raise bad("fim", f"null or token ids from 0 to {vocab - 1} for {', '.join(FIM_KEYS)}")
    if "dtype" in raw and raw["dtype"] not in DTYPES:
        raise bad("dtype", "one of " + ", ".join(DTYPES))
    if "onnx_sha256" in raw and not _sha256(raw["onnx_sha256"]):
        raise bad("onnx_sha256", "a sha256 in 64 lowercase hex digits")
    for field in ("architecture", "source", "created_by", "fim_order"):
        if field in raw and not isinstance(raw[field], str):
            raise bad(field, "a string")
    names = raw.get("external_data", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise bad("external_data", "a list of file names")
    sums = raw.get("external_data_sha256", {})
    if not isinstance(sums, dict) or not all(
        isinstance(k, str) and _sha256(v) for k, v in sums.items()
    ):
        raise bad("external_data_sha256", "an object mapping file names to sha256 digests")


def _int_in(value: Any, lo: int, hi: int) -> bool:
    """Return whether value is an int (not a bool) from lo to hi."""
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _sha256(value: Any) -> bool:
    """Return whether value is a sha256 hex digest."""
    return isinstance(value, str) and SHA256.fullmatch(value) is not None


def check_graph(path: Path, manifest: Any, past_names: list[str], logits_shape: Any) -> None:
    """Raise ModelError if the manifest does not describe the graph: its layers (one
    `past_key_values.N.*` pair each) or, where the graph fixes it, its vocabulary."""
    layers = len({name.split(".")[1] for name in past_names})
    problems = []
    if layers != manifest.n_layer:
        problems.append(f"n_layer {manifest.n_layer}, but the graph has {layers} layers")
    vocab = logits_shape[-1] if logits_shape else None
    if isinstance(vocab, int) and vocab != manifest.vocab_size:
        problems.append(f"vocab_size {manifest.vocab_size}, but the graph's logits have {vocab}")
    if problems:
        raise ModelError(
            f"{path}: jpilot.json does not match model.onnx (it says {'; '.join(problems)}); "
            "the files come from different exports: copy the bundle again or re-export it"
        )
