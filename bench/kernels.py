"""Check which matmul kernels ONNX Runtime gets on this CPU: fp32 vs dynamic int8.

Times one MatMul of a prefill-shaped activation [M, K] x [K, N] in three ONNX models:
fp32 MatMul, the same graph after dynamic int8 quantization (DynamicQuantizeMatMul /
MatMulInteger, what `jpilot model export --quantize int8` produces), and, for reference,
numpy's fp32 matmul. Prints GFLOP/s (GOP/s for int8) and the int8/fp32 ratio. MLAS uses
AVX512-VNNI (or AMX) u8s8 kernels where the CPU has them: a ratio well above 2 means the
int8 path runs on VNNI/AMX rather than on plain AVX2/AVX512 widening multiplies.

Run: python bench/kernels.py [--m 512 --k 512 --n 2048]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper, save_model


def matmul_model(k: int, n: int, path: Path) -> None:
    """Save an ONNX graph Y = X @ W with a random fp32 weight W [k, n]."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "mm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", n])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, str(path))


def rate(fn, flops: float, seconds: float = 2.0) -> float:
    """Return GFLOP/s of fn, run repeatedly for about `seconds`."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return flops * n / (time.perf_counter() - t0) / 1e9


def main() -> None:
    """Time fp32 and int8 MatMul in ORT and print the ratio."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from jpilot.model.providers import session_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=512)
    parser.add_argument("--k", type=int, default=512)
    parser.add_argument("--n", type=int, default=2048)
    args = parser.parse_args()
    x = np.random.default_rng(1).standard_normal((args.m, args.k), np.float32)
    flops = 2.0 * args.m * args.k * args.n
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        matmul_model(args.k, args.n, fp32)
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
        results = {}
        for name, path in (("ORT fp32 MatMul", fp32), ("ORT int8 dynamic", int8)):
            sess = ort.InferenceSession(str(path), session_options(), ["CPUExecutionProvider"])
            ops = sorted({n.op_type for n in __import__("onnx").load(str(path)).graph.node})
            results[name] = (rate(lambda s=sess: s.run(None, {"X": x}), flops), ops)
        w = np.random.default_rng(0).standard_normal((args.k, args.n), np.float32)
        results["numpy fp32"] = (rate(lambda: x @ w, flops), ["matmul"])
    print(f"MatMul [{args.m}x{args.k}] x [{args.k}x{args.n}]")
    for name, (gflops, ops) in results.items():
        print(f"  {name:<18} {gflops:8.1f} GFLOP/s   ({', '.join(ops)})")
    ratio = results["ORT int8 dynamic"][0] / results["ORT fp32 MatMul"][0]
    print(f"  int8 / fp32: {ratio:.2f}x")


if __name__ == "__main__":
    main()
