"""Speed at a real shape, side by side in one process on the same weights, with the floor.

Builds a random model of a real shape (tests/real_shapes.py; CodeGen-350M by default),
converts and exports it to jpilot bundles, then times greedy generation after a
`--prompt`-token prompt with each contender:
  - jpilot Engine on the static-KV bundles (`--formats`, default int8 and int4);
  - transformers eager generate (PyTorch, fp32: the model as built);
  - optimum ORTModelForCausalLM.generate on its own fp32 export of the same weights;
round-robin, a run of each per round, and prints prefill ms and decode ms/token
(medians) with ratios against eager, plus the memory
floor of each: the weight bytes one decode step reads (every MatMul weight, not the
embedding table, of which a step reads one row) divided by the memory bandwidth
measured here, in this process, before and after the runs (a large numpy copy; the best
of them). Greedy tokens are compared with eager's, so a wrong model cannot look fast.

Run:  python bench/real_shapes.py [--shape codegen-350M] [--prompt 512] [--new 64]
      [--repeats 3] [--formats int8,int4] [--device cpu|cuda] [--no-optimum] [--json F]
      [--work DIR]
Shapes: those of tests/real_shapes.py, and `gptj-6B` (the whole model), which is written
to disk as fp16 safetensors and loaded by transformers (fp16 on CUDA, fp32 on CPU). On
CUDA eager runs in fp16, the bandwidth is a device-to-device copy, and fp32/fp16 bundles
also get a logit-parity line.
Needs the [train] extra (torch, transformers, optimum-onnx).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def bandwidth(gib: float = 1.0, repeats: int = 5) -> dict[str, float]:
    """Measure memory bandwidth in bytes/s: best numpy copy (read + write), 1 and 2 threads."""
    n = int(gib * 2**30) // 4
    src, dst = np.ones(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    np.copyto(dst, src)  # fault the pages in

    def copy(threads: int) -> float:
        parts = np.array_split(np.arange(n), threads)
        spans = [(p[0], p[-1] + 1) for p in parts]
        best = 0.0
        for _ in range(repeats):
            jobs = [threading.Thread(target=np.copyto, args=(dst[a:b], src[a:b])) for a, b in spans]
            t0 = time.perf_counter()
            for job in jobs:
                job.start()
            for job in jobs:
                job.join()
            best = max(best, 2 * src.nbytes / (time.perf_counter() - t0))
        return best

    return {"copy_1_thread": copy(1), "copy_2_threads": copy(2)}


def matmul_weight_bytes(onnx_path: Path) -> int:
    """Return the bytes of every initializer a MatMul-family node reads (one decode step)."""
    import onnx

    model = onnx.load_model(str(onnx_path), load_external_data=False)
    sizes = {}
    for t in model.graph.initializer:
        length = next((int(e.value) for e in t.external_data if e.key == "length"), None)
        sizes[t.name] = length if length is not None else len(t.raw_data)
    ops = ("MatMul", "MatMulInteger", "MatMulNBits", "Mul")  # Mul: the int8 weight scales
    return sum(sizes.get(i, 0) for node in model.graph.node if node.op_type in ops
               for i in node.input)  # fmt: skip


def jpilot_sampler(bundle: Path, prompt: list[int], new: int, device: str):
    """Return a function timing one greedy run of jpilot's engine (cold prefix cache)."""
    from jpilot.model.engine import Engine, EngineConfig, GenerationConfig

    engine = Engine(bundle, EngineConfig(device=device))
    engine.tokenizer.eos_id = None  # random weights: never stop early

    def sample() -> tuple[float, float, list[int]]:
        engine.cache.clear()
        result = engine.generate(prompt, GenerationConfig(max_new_tokens=new))
        return result.timings["prefill"], result.timings["decode"] / (new - 1), result.tokens

    return sample


def hf_sampler(model, prompt: list[int], new: int, device: str):
    """Return a function timing a transformers-style generate(): prefill = 1 new token,
    decode = the rest of a `new`-token run."""
    import torch

    ids = torch.tensor([prompt], device=device if device == "cuda" else "cpu")
    mask = torch.ones_like(ids)

    def run(n: int) -> tuple[float, list[int]]:
        kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, **kwargs)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out[0, len(prompt) :].tolist()

    def sample() -> tuple[float, float, list[int]]:
        first, _ = run(1)
        full, tokens = run(new)
        return first, (full - first) / (new - 1), tokens

    return sample


def measure(samplers: dict, repeats: int) -> dict[str, dict]:
    """Time every contender round-robin (so load that comes and goes hits all alike);
    the first round warms up. Return median prefill ms and decode ms/token of each."""
    samples: dict[str, list] = {name: [] for name in samplers}
    for round_ in range(repeats + 1):
        for name, sample in samplers.items():
            result = sample()
            if round_:
                samples[name].append(result)
    return {
        name: {
            "prefill_ms": 1e3 * statistics.median(r[0] for r in runs),
            "decode_ms": 1e3 * statistics.median(r[1] for r in runs),
            "tokens": runs[0][2],
        }
        for name, runs in samples.items()
    }


def agree(a: list[int], b: list[int]) -> int:
    """Return how many leading tokens two greedy runs share."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def main() -> None:
    """Build, export, time every contender, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="codegen-350M")
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--formats", default="int8,int4", help="jpilot bundles: fp32,fp16,int8,int4"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--no-optimum", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--work", type=Path, help="folder for the checkpoint and bundles")
    args = parser.parse_args()

    import torch
    from real_shapes import FULL, gptj_source, make_model, save_model, write_random_gptj

    from jpilot.model.export import export_bundle

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    cuda = args.device == "cuda"
    bw = gpu_bandwidth() if cuda else bandwidth()
    best_bw = max(bw.values())
    floors: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        root = Path(tmp)
        if args.shape in FULL:  # too big to build in torch: written to disk, then loaded
            from transformers import GPTJForCausalLM

            src = write_random_gptj(root / args.shape, args.shape, "F16")
            dtype = torch.float16 if cuda else torch.float32
            model = GPTJForCausalLM.from_pretrained(src, dtype=dtype).eval()
        else:
            model = make_model(args.shape)
            src = gptj_source(save_model(model, root / args.shape), root)
        config = model.config
        prompt = np.random.default_rng(0).integers(0, config.vocab_size, args.prompt).tolist()
        bundles = {}
        for fmt in args.formats.split(","):
            bundles[fmt] = export_bundle(
                src, root / fmt, dtype="fp16" if fmt == "fp16" else "fp32",
                quantize=fmt if fmt in ("int8", "int4") else None, kv_cache="static",
            )  # fmt: skip
            floors[f"jpilot {fmt}"] = matmul_weight_bytes(bundles[fmt] / "model.onnx")
        # a decode step reads every weight but the embedding table (one row of it)
        floors["transformers eager"] = sum(
            p.numel() * (2 if cuda else 4) for n, p in model.named_parameters() if "wte" not in n
        )
        if cuda:
            model = model.half().to("cuda")
        reference = eager_logits(model, prompt)
        samplers = {"transformers eager": hf_sampler(model, prompt, args.new, args.device)}
        diffs = {}
        for fmt, bundle in bundles.items():
            samplers[f"jpilot {fmt}"] = jpilot_sampler(bundle, prompt, args.new, args.device)
            if fmt in ("fp32", "fp16"):  # parity: last-position logits against eager's
                diffs[f"jpilot {fmt}"] = logit_diff(bundle, prompt, reference, args)
        if not args.no_optimum:
            from optimum.exporters.onnx import main_export
            from optimum.onnxruntime import ORTModelForCausalLM

            main_export(str(src), str(root / "optimum"), task="text-generation-with-past",
                        do_validation=False, device=args.device)  # fmt: skip
            provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
            ort_model = ORTModelForCausalLM.from_pretrained(
                root / "optimum", use_cache=True, use_io_binding=True, provider=provider
            )
            samplers["optimum ORT"] = hf_sampler(ort_model, prompt, args.new, args.device)
            floors["optimum ORT"] = floors["transformers eager"] * (2 if cuda else 1)  # fp32
        results = measure(samplers, args.repeats)
        for name, diff in diffs.items():
            results[name]["logit_diff"] = diff
    after = gpu_bandwidth() if cuda else bandwidth()  # again: the load may have changed
    bw = {k: max(v, after[k]) for k, v in bw.items()}
    best_bw = max(bw.values())
    report(args, config, results, floors, bw, best_bw)


def eager_logits(model, prompt: list[int]) -> np.ndarray:
    """Return eager's logits of the prompt's last position, as float32."""
    import torch

    ids = torch.tensor([prompt], device=model.device)
    with torch.no_grad():
        return model(ids).logits[0, -1].float().cpu().numpy()


def logit_diff(bundle: Path, prompt: list[int], reference: np.ndarray, args) -> float:
    """Return the largest |logit difference| of a bundle's last position against eager's."""
    from jpilot.model.engine import Engine, EngineConfig

    engine = Engine(bundle, EngineConfig(device=args.device))
    logits, _ = engine._forward(prompt, engine._empty_kv(), 0)
    return float(np.abs(logits[-1].astype(np.float32) - reference).max())


def gpu_bandwidth(gib: float = 1.0, repeats: int = 5) -> dict[str, float]:
    """Measure GPU memory bandwidth in bytes/s: best device-to-device copy (read + write)."""
    import torch

    src = torch.ones(int(gib * 2**30) // 4, device="cuda")
    dst = torch.empty_like(src)
    best = 0.0
    for _ in range(repeats + 1):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        best = max(best, 2 * src.numel() * 4 / (time.perf_counter() - t0))
    return {"cuda_copy": best}


def report(args, config, results: dict, floors: dict, bw: dict, best_bw: float) -> None:
    """Print the table: times, ratios against eager, the memory floor and agreement."""
    eager = results["transformers eager"]
    print(f"\n{args.shape} ({config.n_layer} layers, d {config.n_embd}, vocab {config.vocab_size}),"
          f" {args.device}; prompt {args.prompt}, {args.new} new tokens, greedy, median of "
          f"{args.repeats}")  # fmt: skip
    print("memory bandwidth: " + ", ".join(f"{k} {v / 1e9:.1f} GB/s" for k, v in bw.items())
          + f"; floor uses {best_bw / 1e9:.1f} GB/s")  # fmt: skip
    head = ("contender", "prefill ms", "decode ms/tok", "prefill x", "decode x", "weights MB",
            "floor ms", "decode/floor", "agree")  # fmt: skip
    print("\n{:<20} {:>10} {:>13} {:>9} {:>9} {:>10} {:>9} {:>12} {:>6}".format(*head))
    rows = {}
    for name, r in results.items():
        floor_ms = 1e3 * floors[name] / best_bw
        times = {k: v for k, v in r.items() if k != "tokens"}
        same = agree(r["tokens"], eager["tokens"])
        rows[name] = {**times, "floor_ms": floor_ms, "weight_bytes": floors[name], "agree": same}
        speedup = eager["prefill_ms"] / r["prefill_ms"], eager["decode_ms"] / r["decode_ms"]
        print(
            f"{name:<20} {r['prefill_ms']:10.1f} {r['decode_ms']:13.2f} "
            f"{speedup[0]:8.2f}x {speedup[1]:8.2f}x "
            f"{floors[name] / 1e6:10.0f} {floor_ms:9.2f} {r['decode_ms'] / floor_ms:11.2f}x "
            f"{rows[name]['agree']:>3}/{args.new}"
        )
    for name, r in results.items():
        if "logit_diff" in r:
            print(f"parity: {name} last-position logits vs eager: max |diff| {r['logit_diff']:.2e}")
    kv = 2 * config.n_layer * config.n_embd * (args.prompt + args.new // 2) * 4
    print(
        f"\n(a decode step also reads the KV cache: {kv / 1e6:.0f} MB fp32 at the mean context"
        f" of {args.prompt + args.new // 2} tokens, {1e3 * kv / best_bw:.2f} ms at that bandwidth)"
    )
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}"
    )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "bandwidth": bw}, indent=2))


if __name__ == "__main__":
    main()
