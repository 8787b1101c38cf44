"""The `jpilot` command line: `jpilot serve`, `jpilot complete` and `jpilot model ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jpilot.model import cli as model_cli


def build_parser(with_model: bool = True) -> argparse.ArgumentParser:
    """Build the top-level argument parser with every subcommand.

    `jpilot serve` and `jpilot complete` leave out the `model` subcommands, whose argument
    declarations import torch (seconds of startup a language server cannot afford).
    """
    parser = argparse.ArgumentParser(prog="jpilot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jpilot {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if with_model:
        model_cli.add_parser(commands)
    from jpilot.lsp import commands as lsp_commands

    lsp_commands.add_parsers(commands)
    return parser


def package_version() -> str:
    """Return the installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jpilot")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    fast = bool(argv) and argv[0] in ("serve", "complete")
    args = build_parser(with_model=not fast).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
