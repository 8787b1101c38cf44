"""`jpilot model generate`: complete a prompt with a bundle, printing tokens as they come."""

from __future__ import annotations

import argparse
import json
import sys

from jpilot.model.engine import Engine, EngineConfig, GenerationConfig
from jpilot.model.errors import ModelError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model generate` arguments."""
    parser.add_argument("prompt", help="text to continue; '-' reads standard input")
    parser.add_argument("--bundle", help="bundle folder or installed model name")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--stats", action="store_true", help="print timing to stderr")
    parser.add_argument("--no-heal", action="store_true",
                        help="continue the prompt's own tokens without token healing "
                        "(at temperature 0: plain greedy, for parity checks)")  # fmt: skip
    parser.add_argument("--json", action="store_true",
                        help="print the prompt's and the generated token ids and the text as "
                        "one JSON object instead of streaming")  # fmt: skip


def unescape(text: str) -> str:
    """Turn the two-character escapes \\n and \\t typed on a shell line into real ones."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def run(args: argparse.Namespace) -> int:
    """Stream a completion of the prompt to stdout."""
    from jpilot.model.default import default_bundle_path
    from jpilot.model.store import resolve_bundle

    prompt = sys.stdin.read() if args.prompt == "-" else unescape(args.prompt)
    if not prompt:
        raise ModelError("the prompt is empty; give the code to continue, e.g. 'def add(a, b):\\n'")
    if args.max_tokens < 1:
        raise ModelError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    bundle = resolve_bundle(args.bundle) if args.bundle else default_bundle_path()
    engine = Engine(bundle, EngineConfig(device=args.device))
    shown = 0
    if not args.json:
        sys.stdout.write(prompt)

    def stream(_token: int, text: str) -> None:
        nonlocal shown
        if args.json:
            return
        sys.stdout.write(text[shown:])
        sys.stdout.flush()
        shown = len(text)

    config = GenerationConfig(
        max_new_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        stop=args.stop,
    )
    ids = engine.tokenizer.encode(prompt)
    if not args.no_heal:  # back off the last token; the output must start with its bytes
        ids, config.heal = engine.healer.split(ids)
    result = engine.generate(ids, config, on_token=stream)
    if args.json:
        answer = {"prompt_tokens": ids, "tokens": result.tokens, "text": result.text,
                  "finish_reason": result.finish_reason}  # fmt: skip
        sys.stdout.write(json.dumps(answer) + "\n")
    else:
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
