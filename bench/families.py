"""Decode speed of each model family at equal parameter count (issue 20).

Builds random GPT-J, gpt_bigcode (multi-query), GPT-2 and GPT-Neo checkpoints of the same
width, depth and head layout, with the MLP widths chosen so that every family has the
GPT-J's weights per block (gpt_bigcode's smaller K/V projections give their weights to its
MLP), exports each to the same static-KV bundle format, and times greedy decoding after
a long prompt round-robin (contender after contender, `--repeats` rounds), so load from
other processes hits all alike. Prints decode ms/token (median and range over rounds)
and the ratio against GPT-J measured in the same run.

Multi-query attention reads one K/V head instead of n_head per layer and step: at a
1k-token context that is most of what a small model's decode step reads besides weights.

Run:  python bench/families.py [--layers 8 --d-model 512 --heads 8 --prompt 1024]
      python bench/engine.py --family gpt_bigcode  (against optimum and PyTorch)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

FAMILIES = ("gptj", "gpt_bigcode", "gpt2", "gpt_neo")


def inner_width(family: str, d: int, heads: int) -> int:
    """MLP width that gives `family` GPT-J's block weights (4d^2 attention + 8d^2 MLP)."""
    if family == "gpt_bigcode":  # q and out d^2 each, k and v d^2 / heads each
        return (12 * d * d - 2 * d * d - 2 * d * d // heads) // (2 * d)
    return 4 * d


def build_checkpoint(folder: Path, family: str, args: argparse.Namespace) -> None:
    """Save a random `family` checkpoint of the requested shape plus a small tokenizer."""
    import torch
    import transformers
    from family_models import HF_CLASSES

    from tiny_models import make_tokenizer

    torch.manual_seed(0)
    d, heads, layers = args.d_model, args.heads, args.layers
    common = {"vocab_size": args.vocab, "bos_token_id": 0, "eos_token_id": 0}
    inner = inner_width(family, d, heads)
    if family == "gpt_neo":  # GPT-Neo-125M's layout: global and local layers alternate
        config = transformers.GPTNeoConfig(
            hidden_size=d, num_layers=layers, num_heads=heads, max_position_embeddings=2048,
            attention_types=[[["global", "local"], layers // 2]], window_size=256,
            intermediate_size=inner, **common,
        )  # fmt: skip
    else:
        shape = {"n_embd": d, "n_layer": layers, "n_head": heads, "n_positions": 2048,
                 "n_inner": inner}  # fmt: skip
        config = {
            "gptj": lambda: transformers.GPTJConfig(**shape, rotary_dim=d // heads // 2, **common),
            "gpt2": lambda: transformers.GPT2Config(**shape, **common),
            "gpt_bigcode": lambda: transformers.GPTBigCodeConfig(
                **shape, multi_query=True, **common
            ),  # fmt: skip
        }[family]()
    getattr(transformers, HF_CLASSES[family])(config).eval().save_pretrained(folder)
    make_tokenizer(folder / "tokenizer.json", 512)


def block_parameters(onnx_path: Path) -> int:
    """Weights in the blocks (embeddings, lm_head and position tables left out)."""
    from jpilot.model.info import count_parameters

    total = count_parameters(onnx_path)
    import onnx

    model = onnx.load_model(str(onnx_path), load_external_data=False)
    outside = 0
    for tensor in model.graph.initializer:
        if tensor.name.startswith(("transformer.wte", "transformer.wpe", "lm_head")):
            outside += int(np.prod(tensor.dims))
    return total - outside


def decode_ms(engine, prompt: list[int], new: int) -> float:
    """Greedy-generate `new` tokens after `prompt` (cold cache); return decode ms/token."""
    from jpilot.model.engine import GenerationConfig

    engine.cache.clear()
    result = engine.generate(prompt, GenerationConfig(max_new_tokens=new))
    assert len(result.tokens) == new
    return 1000 * result.timings["decode"] / result.decode_passes


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    """The model shape options (bench/engine.py has them too)."""
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=16384)


def main() -> None:
    """Build every family, time decoding round-robin, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    parser.add_argument("--prompt", type=int, default=1024)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quantize", choices=["int8", "int4", "none"], default="int8")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    args = parser.parse_args()

    from jpilot.model.engine import Engine
    from jpilot.model.export import export_bundle

    quantize = None if args.quantize == "none" else args.quantize
    prompt = np.random.default_rng(0).integers(5, 500, args.prompt).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engines, params = {}, {}
        for family in args.families:
            build_checkpoint(root / family, family, args)
            bundle = export_bundle(root / family, root / f"{family}-b", quantize=quantize)
            params[family] = block_parameters(bundle / "model.onnx")
            engines[family] = Engine(bundle)
            engines[family].tokenizer.eos_id = None
            decode_ms(engines[family], prompt, 4)  # warm up
        times: dict[str, list[float]] = {f: [] for f in args.families}
        for _ in range(args.repeats):
            for family, engine in engines.items():
                times[family].append(decode_ms(engine, prompt, args.new))
    report(times, params, args)


def report(times: dict[str, list[float]], params: dict[str, int], args) -> None:
    """Print decode ms/token per family with its range and the ratio against GPT-J."""
    base = statistics.median(times["gptj"]) if "gptj" in times else None
    print(f"\n{args.layers} layers x {args.d_model}, {args.heads} heads, vocab {args.vocab}, "
          f"{args.quantize}; prompt {args.prompt}, {args.new} new tokens, greedy, "
          f"{args.repeats} rounds round-robin")  # fmt: skip
    head = ("family", "block params", "ms/token", "range", "vs GPT-J", "per round (range)")
    print("{:<12} {:>13} {:>10} {:>17} {:>9} {:>20}".format(*head))
    for family, ms in times.items():
        med = statistics.median(ms)
        ratio, paired = "-", "-"
        if base:  # each round's ratio: load that comes and goes hits both of a pair alike
            rounds = [a / b for a, b in zip(ms, times["gptj"], strict=True)]
            ratio = f"{med / base:.2f}x"
            paired = (f"{statistics.median(rounds):.2f}x "
                      f"({min(rounds):.2f}-{max(rounds):.2f})")  # fmt: skip
        print(f"{family:<12} {params[family] / 1e6:12.2f}M {med:10.2f} "
              f"{min(ms):8.2f}-{max(ms):<8.2f} {ratio:>9} {paired:>20}")  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {cores} cores, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
