"""The `jpilot` command line: `jpilot serve`, `complete`, `model ...` and `pool serve`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jpilot.model import cli as model_cli
from jpilot.model.serve import cli as pool_cli
from jpilot.model.version import package_version


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser with every subcommand.

    Declaring arguments must stay cheap (no torch or transformers imports): `jpilot serve`
    parses them too, and a language server has to start fast.
    """
    parser = argparse.ArgumentParser(prog="jpilot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jpilot {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # eval-hints compares the detector with the plugins' surprisal hints, so it lives there
    hints = ("jpilot.plugins.debug.evaluate", "how right the debug hints are on whole files")
    # eval --repo completes through the server's pipeline, so `eval` is declared here
    repo_eval = (
        "jpilot.lsp.evaluate_repo",
        model_cli.COMMANDS["eval"][1] + " (--repo: with siblings open)",
    )
    model_cli.add_parser(commands, {"eval-hints": hints, "eval": repo_eval})
    pool_cli.add_parser(commands)
    from jpilot.lsp import commands as lsp_commands

    lsp_commands.add_parsers(commands)
    return parser


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
