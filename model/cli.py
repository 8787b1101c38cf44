"""`jpilot model ...` subcommands; each one imports its implementation lazily."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from jpilot.model.errors import ModelError

# subcommand -> (module that implements it, one-line help). Each module defines
# `add_arguments(parser)` and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "pull": ("jpilot.model.pull", "download a Hub repo of a supported family as a bundle"),
    "list": ("jpilot.model.store", "list the bundles `pull` installed, with size and dtype"),
    "export": ("jpilot.model.export", "export a Hugging Face checkpoint to a jpilot bundle"),
    "convert-codegen": ("jpilot.model.convert", "convert a CodeGen checkpoint to GPT-J weights"),
    "info": ("jpilot.model.info", "show a bundle's architecture, size and the providers here"),
    "generate": ("jpilot.model.generate", "complete a prompt with a bundle (engine smoke test)"),
    "train": ("jpilot.model.train.cli", "train a small code GPT-J on local code"),
    "eval": ("jpilot.model.evaluate", "rest-of-line completion and bits/token on held-out code"),
    "card": ("jpilot.model.card", "write a bundle's MODEL_CARD.md from its training run and eval"),
    "train-detector": ("jpilot.model.detector.train", "train a bundle's bug detector for hints"),
}


def add_parser(commands: Any, extra: dict[str, tuple[str, str]] | None = None) -> None:
    """Add `model` and its subcommands to the top-level subparsers; `extra`: more commands
    whose implementations live in a higher layer (lsp/cli.py names them)."""
    model = commands.add_parser("model", help="export, convert, inspect and train model bundles")
    sub = model.add_subparsers(dest="model_command", required=True, metavar="SUBCOMMAND")
    for name, (module, help_text) in {**COMMANDS, **(extra or {})}.items():
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(func=_runner(module), _module=module)
        _add_arguments(module, parser)


def _add_arguments(module: str, parser: argparse.ArgumentParser) -> None:
    """Let the implementing module declare its arguments (skipped if its extra is missing)."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:  # e.g. the [train] extra is not installed
        parser.set_defaults(_import_error=str(exc))
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        return
    mod.add_arguments(parser)


def _runner(module: str):
    """Return a function that runs `module.run(args)` and turns ModelError into a message."""

    def run(args: argparse.Namespace) -> int:
        if getattr(args, "_import_error", None):
            print(
                f"error: {args._import_error}\n"
                "this command needs the training extra: pip install torch==2.13.0 && "
                "pip install -e '.[train]'",
                file=sys.stderr,
            )
            return 2
        try:
            return int(importlib.import_module(module).run(args) or 0)
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run
