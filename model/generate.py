"""`jpilot model generate`: complete a prompt with a bundle, printing tokens as they come."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jpilot.model.engine import Engine, EngineConfig, GenerationConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model generate` arguments."""
    parser.add_argument("prompt", help="text to continue; '-' reads standard input")
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: embedded model)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--stats", action="store_true", help="print timing to stderr")


def unescape(text: str) -> str:
    """Turn the two-character escapes \\n and \\t typed on a shell line into real ones."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def run(args: argparse.Namespace) -> int:
    """Stream a completion of the prompt to stdout."""
    from jpilot.model.default import default_bundle_path

    prompt = sys.stdin.read() if args.prompt == "-" else unescape(args.prompt)
    engine = Engine(args.bundle or default_bundle_path(), EngineConfig(device=args.device))
    sys.stdout.write(prompt)
    shown = 0

    def stream(_token: int, text: str) -> None:
        nonlocal shown
        sys.stdout.write(text[shown:])
        sys.stdout.flush()
        shown = len(text)

    config = GenerationConfig(
        max_new_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        stop=args.stop,
    )
    ids, config.heal = engine.healer.split(engine.tokenizer.encode(prompt))
    result = engine.generate(ids, config, on_token=stream)
    sys.stdout.write(result.text[shown:] + "\n")
    if args.stats:
        rate = len(result.tokens) / max(result.timings["decode"], 1e-9)
        print(
            f"[{len(result.tokens)} tokens, {result.finish_reason}, prompt {result.prompt_tokens}"
            f", first token {result.time_to_first_token * 1000:.0f} ms, {rate:.0f} tok/s]",
            file=sys.stderr,
        )
    engine.close()
    return 0
