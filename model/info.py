"""`jpilot model info`: a bundle's architecture, parameter count, dtype, size and providers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import onnxruntime as ort

from jpilot.model.abilities import summary_lines, supported
from jpilot.model.bundle import load_bundle
from jpilot.model.families import describe
from jpilot.model.static_kv import ROTARY_TABLES, kv_cache_kind

QUANT_PARAM_SUFFIXES = ("_scale", "_zero_point")  # int8 quantization bookkeeping


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model info` arguments."""
    parser.add_argument("bundle", nargs="?", help="bundle folder or installed model name "
                        "(default: embedded)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def count_parameters(onnx_path: Path) -> int:
    """Count model weights in an ONNX file: float, int8 and 4-bit weights, not quant params."""
    import onnx

    weight_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8}
    model = onnx.load_model(str(onnx_path), load_external_data=False)
    total = 0
    packed = set()  # 4-bit MatMulNBits inputs (packed weights, block scales): counted as K x N
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            attrs = {a.name: a.i for a in node.attribute}
            total += attrs["K"] * attrs["N"]
            packed.update(node.input[1:])
    for tensor in model.graph.initializer:
        if tensor.data_type not in weight_types or tensor.name.endswith(QUANT_PARAM_SUFFIXES):
            continue
        if tensor.name in packed:
            continue
        if tensor.name in ROTARY_TABLES:  # the static-KV graph's cos/sin tables
            continue
        n = 1
        for d in tensor.dims:
            n *= d
        total += n
    return total


def bundle_info(folder: Path) -> dict[str, Any]:
    """Collect what `info` shows, as a dict."""
    bundle = load_bundle(folder)
    m = bundle.manifest
    size = sum(f.stat().st_size for f in bundle.path.iterdir() if f.is_file())
    return {
        "bundle": str(bundle.path),
        "architecture": describe(m),
        "rotary_dim": m.rotary_dim,
        "vocab_size": m.vocab_size,
        "context": m.n_positions,
        "parameters": count_parameters(bundle.onnx_path),
        "dtype": m.dtype,
        "kv_cache": kv_cache_kind(bundle.onnx_path),
        "fim": bool(m.fim),
        "size_mib": round(size / 2**20, 2),
        "source": m.source,
        # which model-written features are on by default (jpilot.model.abilities)
        "features": summary_lines(m.abilities),
        "supports": supported(m.abilities),
        "providers_here": ort.get_available_providers(),
        "onnxruntime": ort.__version__,
    }


def run(args: argparse.Namespace) -> int:
    """Print a bundle's info."""
    from jpilot.model.default import default_bundle_path
    from jpilot.model.store import resolve_bundle

    info = bundle_info(resolve_bundle(args.bundle) if args.bundle else default_bundle_path())
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "parameters":
            value = f"{value:,} ({value / 1e6:.1f}M)"
        elif key == "features":
            value = ("\n" + " " * (width + 2)).join(value)
        elif key == "supports":
            continue  # the features line says it in words
        elif isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:<{width}}  {value}")
    return 0
