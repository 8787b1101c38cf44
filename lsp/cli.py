"""The `jpilot` command line: `jpilot model ...` and (later) `jpilot serve` / `jpilot complete`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jpilot.model import cli as model_cli


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="jpilot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jpilot {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_cli.add_parser(commands)
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
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
