"""Benchmark the jpilot engine against optimum and PyTorch on the same GPT-J weights.

Builds a random GPT-J of realistic shape (~42M params by default), exports it once to
fp32, int8 and int4 bundles, then times greedy generation of 64 new tokens after a
512-token prompt with:
  - jpilot Engine, fp32, int8 and int4 (4-bit weight blocks) bundles;
  - optimum ORTModelForCausalLM.generate on its own export of the same weights, fp32 and
    int8 (the same dynamic quantization jpilot uses);
  - transformers eager generate in PyTorch (fp32);
and the prefix-reuse case: a 1k-token context, then the same context plus a few typed
tokens (warm) against a cold start. It prints tokens/s, time to first token, and ratios
against the baselines measured in the same run.

With `--family gpt_bigcode` (or gpt2, gpt_neo) the same table is measured on that
family's weights: its static-KV bundles against optimum's export and PyTorch (optimum's
concat graph is GPT-J-only in jpilot, so those rows are left out). bench/families.py
compares the families' decode speed at equal parameter count.

Run:  python bench/engine.py [--layers 8 --d-model 512 --vocab 16384] [--family F] [--profile]
Needs the [train] extra (torch, transformers, optimum-onnx). It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from families import add_shape_arguments  # noqa: E402  (bench/families.py)


def build_checkpoint(folder: Path, args: argparse.Namespace) -> None:
    """Save a random GPT-J of the requested shape plus a small tokenizer."""
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    from tiny_models import make_tokenizer

    torch.manual_seed(0)
    config = GPTJConfig(
        vocab_size=args.vocab,
        n_positions=2048,
        n_embd=args.d_model,
        n_layer=args.layers,
        n_head=args.heads,
        rotary_dim=args.d_model // args.heads // 2,
        bos_token_id=0,
        eos_token_id=0,
    )
    GPTJForCausalLM(config).eval().save_pretrained(folder)
    make_tokenizer(folder / "tokenizer.json", 512)


def timed(fn, repeats: int) -> list[float]:
    """Run fn once to warm up, then `repeats` times; return the wall times."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_jpilot(bundle: Path, prompt: list[int], new: int, repeats: int) -> dict:
    """Time the jpilot engine (cold: the prefix cache is cleared before each run)."""
    from jpilot.model.engine import Engine, GenerationConfig

    engine = Engine(bundle)
    engine.tokenizer.eos_id = None  # random weights: never stop early
    cfg = GenerationConfig(max_new_tokens=new)
    ttfts: list[float] = []

    def once() -> None:
        engine.cache.clear()
        result = engine.generate(prompt, cfg)
        assert len(result.tokens) == new
        ttfts.append(result.time_to_first_token)

    times = timed(once, repeats)
    return {"total": statistics.median(times), "ttft": statistics.median(ttfts[1:])}


def bench_hf(model, prompt: list[int], new: int, repeats: int) -> dict:
    """Time a transformers-style generate() (PyTorch eager or optimum's ORT model)."""
    import torch

    ids = torch.tensor([prompt])
    kwargs = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)

    def full() -> None:
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        assert out.shape[1] == len(prompt) + new

    def first() -> None:
        with torch.no_grad():
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                **(kwargs | {"max_new_tokens": 1, "min_new_tokens": 1}),
            )

    return {
        "total": statistics.median(timed(full, repeats)),
        "ttft": statistics.median(timed(first, repeats)),
    }


def optimum_models(ckpt: Path, root: Path) -> dict[str, Path]:
    """Export the checkpoint with optimum, plus a copy quantized like jpilot's int8 bundle."""
    import shutil

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export

    fp32, int8 = root / "optimum", root / "optimum-int8"
    main_export(str(ckpt), str(fp32), task="text-generation-with-past", do_validation=False)
    shutil.copytree(fp32, int8)
    quantize_dynamic(
        fp32 / "model.onnx",
        int8 / "model.onnx",
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
    )
    return {"optimum ORT generate": fp32, "optimum ORT int8": int8}


def bench_prefix_reuse(bundle: Path, rng: np.random.Generator, repeats: int) -> dict:
    """Time a 1k-token-context request cold and warm (same context plus 3 typed tokens)."""
    from jpilot.model.engine import Engine, GenerationConfig

    engine = Engine(bundle)
    engine.tokenizer.eos_id = None
    context = rng.integers(5, 500, 1024).tolist()
    cfg = GenerationConfig(max_new_tokens=16)
    runs: dict[str, list] = {"cold": [], "warm": []}
    for i in range(repeats + 1):
        engine.cache.clear()
        cold = engine.generate(context, cfg)
        warm = engine.generate(context + [7 + i, 8, 9], cfg)
        assert warm.reused_tokens == len(context)
        if i:  # the first round warms up
            runs["cold"].append(cold)
            runs["warm"].append(warm)
    return {
        kind: {
            "ttft": statistics.median(r.time_to_first_token for r in results),
            "total": statistics.median(r.elapsed for r in results),
        }
        for kind, results in runs.items()
    }


def profile_int8(bundle: Path, prompt: list[int], out: Path) -> None:
    """Run one generation under ORT's profiler and print the top operators by time."""
    from jpilot.model.engine import Engine, GenerationConfig

    engine = Engine(bundle)
    engine.session.end_profiling()
    import onnxruntime as ort

    from jpilot.model.providers import provider_list, session_options

    opts = session_options()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(out / "ort_profile")
    engine.session = ort.InferenceSession(
        str(engine.bundle.onnx_path), opts, providers=provider_list("cpu")
    )
    engine.tokenizer.eos_id = None
    engine.generate(prompt, GenerationConfig(max_new_tokens=64))
    trace = json.loads(Path(engine.session.end_profiling()).read_text())
    per_op: dict[str, float] = {}
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"].get("op_name", "?")
            per_op[op] = per_op.get(op, 0.0) + event["dur"] / 1e3
    total = sum(per_op.values())
    print(f"\nORT profile ({bundle.name}): kernel time by operator")
    for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {op:<28} {ms:8.1f} ms  {100 * ms / total:5.1f}%")


def build_family(folder: Path, args: argparse.Namespace) -> None:
    """Save the checkpoint of `args.family`: GPT-J here, the others by bench/families.py."""
    if args.family == "gptj":
        build_checkpoint(folder, args)
        return
    from families import build_checkpoint as build_other

    build_other(folder, args.family, args)


def main() -> None:
    """Build the model, run every contender, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="ORT profile of the int8 run")
    parser.add_argument("--family", choices=["gptj", "gpt_bigcode", "gpt2", "gpt_neo"],
                        default="gptj", help="model family of the random weights")  # fmt: skip
    args = parser.parse_args()

    import torch
    import transformers
    from family_models import HF_CLASSES
    from optimum.onnxruntime import ORTModelForCausalLM

    from jpilot.model.export import export_bundle
    from jpilot.model.info import count_parameters

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    rng = np.random.default_rng(0)
    prompt = rng.integers(5, 500, args.prompt).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_family(root / "ckpt", args)
        gptj = args.family == "gptj"  # optimum's concat graph: GPT-J only
        if gptj:
            fp32 = export_bundle(root / "ckpt", root / "fp32", kv_cache="concat")
            int8 = export_bundle(root / "ckpt", root / "int8", quantize="int8", kv_cache="concat")
        static = {  # the GroupQueryAttention graph with an in-place KV buffer
            "int4": export_bundle(root / "ckpt", root / "s4", quantize="int4", kv_cache="static"),
            "int8": export_bundle(root / "ckpt", root / "s8", quantize="int8", kv_cache="static"),
            "fp32": export_bundle(root / "ckpt", root / "s32", kv_cache="static"),
        }
        params = count_parameters(static["fp32"] / "model.onnx")
        print(
            f"\n{args.family} {args.layers}x{args.d_model}, vocab {args.vocab}: "
            f"{params / 1e6:.1f}M params;"
            f" prompt {args.prompt}, {args.new} new tokens, greedy, median of {args.repeats}"
        )
        results = {
            "jpilot int4 static KV": bench_jpilot(static["int4"], prompt, args.new, args.repeats),
            "jpilot int8 static KV": bench_jpilot(static["int8"], prompt, args.new, args.repeats),
            "jpilot fp32 static KV": bench_jpilot(static["fp32"], prompt, args.new, args.repeats),
        }
        if gptj:
            results["jpilot int8"] = bench_jpilot(int8, prompt, args.new, args.repeats)
            results["jpilot fp32"] = bench_jpilot(fp32, prompt, args.new, args.repeats)
        # optimum gets its own plain export of the same weights, and the same int8 recipe
        for name, path in optimum_models(root / "ckpt", root).items():
            model = ORTModelForCausalLM.from_pretrained(path, use_cache=True, use_io_binding=True)
            results[name] = bench_hf(model, prompt, args.new, args.repeats)
        torch_model = getattr(transformers, HF_CLASSES[args.family])
        torch_model = torch_model.from_pretrained(root / "ckpt").eval()
        results["PyTorch eager generate"] = bench_hf(torch_model, prompt, args.new, args.repeats)
        reuse = {
            "int4 static KV": bench_prefix_reuse(static["int4"], rng, args.repeats),
            "int8 static KV": bench_prefix_reuse(static["int8"], rng, args.repeats),
        }
        if gptj:
            reuse["int8"] = bench_prefix_reuse(int8, rng, args.repeats)
        if args.profile:
            profile_int8(static["int8"], prompt, root)
            if gptj:
                profile_int8(int8, prompt, root)

    report(results, reuse, args)


def report(results: dict, reuse: dict, args: argparse.Namespace) -> None:
    """Print the results table with ratios against both baselines."""
    base_torch = results["PyTorch eager generate"]["total"]
    base_opt = results["optimum ORT generate"]["total"]
    head = ("engine", "tok/s", "TTFT ms", "total s", "vs torch", "vs optimum")
    print("\n{:<24} {:>8} {:>9} {:>8} {:>9} {:>11}".format(*head))
    for name, r in results.items():
        print(
            f"{name:<24} {args.new / r['total']:8.1f} {r['ttft'] * 1000:9.1f} {r['total']:8.2f} "
            f"{base_torch / r['total']:8.2f}x {base_opt / r['total']:10.2f}x"
        )
    for name, r in reuse.items():
        cold, warm = r["cold"], r["warm"]
        print(
            f"\nprefix reuse ({name}, 1024-token context + 3 typed tokens, 16 new tokens):\n"
            f"  first token: cold {cold['ttft'] * 1000:.0f} ms, warm {warm['ttft'] * 1000:.0f} "
            f"ms = {100 * warm['ttft'] / cold['ttft']:.0f}% of cold\n"
            f"  whole request: cold {cold['total'] * 1000:.0f} ms, warm "
            f"{warm['total'] * 1000:.0f} ms = {100 * warm['total'] / cold['total']:.0f}% of cold"
        )
    cores = len(os.sched_getaffinity(0))
    print(f"\nmachine: {platform.machine()}, {cores} cores, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
