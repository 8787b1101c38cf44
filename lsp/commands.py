"""`jpilot serve` (the language server) and `jpilot complete` (one completion, no editor)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jpilot.model.errors import ModelError

log = logging.getLogger("jpilot")


def add_parsers(commands: Any) -> None:
    """Add `serve` and `complete` to the top-level subparsers."""
    serve = commands.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument("--tcp", action="store_true", help="listen on TCP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="TCP host (default: loopback only)")
    serve.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    serve.add_argument(
        "--token-file", type=Path,
        help=f"TCP: the token a client must send as initializationOptions.token (first line "
        f"of the file; or set ${TOKEN_ENV})",
    )  # fmt: skip
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="TCP: accept clients without a token (any local process can connect)",
    )
    serve.add_argument("--log-level", default="INFO", help="stderr log level (default INFO)")
    serve.set_defaults(func=run_serve)

    complete = commands.add_parser(
        "complete",
        help="complete FILE at a line and column, through the server's pipeline",
        description="Print the suggestion jpilot serve would show at FILE:LINE:COL. Exit "
        "status: 0 a suggestion was printed; 1 no suggestion (why on stderr) or no model; "
        "2 bad input (file, position, settings).",
    )
    complete.add_argument("file", type=Path)
    complete.add_argument("--line", type=int, required=True, help="1-based line")
    complete.add_argument(
        "--col", type=int, required=True,
        help="1-based column in characters; 1 to the line's length + 1 (after its last character)",
    )  # fmt: skip
    complete.add_argument("--json", action="store_true", help="print a JSON object")
    complete.add_argument("--bundle", help="bundle folder or installed model name")
    complete.add_argument("--language", help="language id (default: from the file extension)")
    complete.add_argument("--settings", help="settings as JSON, as in initializationOptions")
    complete.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    complete.set_defaults(func=run_complete)


def setup_logging(level: str) -> None:
    """Log to stderr; pygls's own records lose their arguments, which may hold code."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pygls").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_pygls_args)


def _drop_pygls_args(record: logging.LogRecord) -> bool:
    """Keep a pygls record's format string but not its arguments or traceback, which can
    hold message bodies (buffer text)."""
    if record.name.startswith("pygls"):
        record.args = ()
        record.exc_info = None
        record.exc_text = None
    return True


def run_serve(args: argparse.Namespace) -> int:
    """Run the language server until exit; return its exit status."""
    setup_logging(args.log_level)
    from jpilot.lsp.handlers import build_server
    from jpilot.lsp.transport import serve_stdio, serve_tcp

    if args.tcp:
        token = tcp_token(args)
        if token is None and not args.no_auth:
            print(f"error: jpilot serve --tcp needs a token: --token-file FILE or ${TOKEN_ENV} "
                  "(clients send it as initializationOptions.token), or --no-auth to let any "
                  "process that reaches the port in", file=sys.stderr)  # fmt: skip
            return 2
        serve_tcp(build_server, args.host, args.port, token)
        return 0
    server = build_server()
    serve_stdio(server)
    server.model.close()
    return server.exit_code if server.exit_code is not None else 1


TOKEN_ENV = "JPILOT_TCP_TOKEN"


def tcp_token(args: argparse.Namespace) -> str | None:
    """Return the TCP token from --token-file or the environment, or None."""
    if args.token_file is not None:
        try:
            lines = args.token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"error: cannot read --token-file {args.token_file}: {exc}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise SystemExit(f"error: --token-file {args.token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


LANGUAGES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".rs": "rust",
             ".go": "go", ".c": "c", ".h": "c", ".cpp": "cpp", ".java": "java",
             ".rb": "ruby", ".sh": "shellscript", ".lua": "lua", ".md": "markdown"}  # fmt: skip


def run_complete(args: argparse.Namespace) -> int:
    """Print the completion at FILE:LINE:COL, computed exactly as `jpilot serve` would."""
    setup_logging("WARNING")
    from jpilot.lsp.pipeline import complete
    from jpilot.lsp.plugins import default_host
    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine, EngineConfig
    from jpilot.model.store import resolve_bundle
    from jpilot.plugins.api import CompletionRequest
    from jpilot.plugins.settings import parse_settings

    try:
        options = json.loads(args.settings) if args.settings else None
    except json.JSONDecodeError as exc:
        print(f"error: --settings is not valid JSON ({exc})", file=sys.stderr)
        return 2
    host = default_host()  # its plugins' declared settings are checked with the server's
    settings, errors = parse_settings(options, plugins=host.declared_settings())
    for error in errors:
        print(f"warning: {error}", file=sys.stderr)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        offset = offset_of(text, args.line, args.col)
    except ValueError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    host.set_enabled(settings.plugin_enabled())
    device = args.device or settings.model.device
    try:
        name = args.bundle or settings.model.path
        bundle = resolve_bundle(name) if name else default_bundle_path()
        engine = Engine(bundle, EngineConfig(device=device, threads=settings.model.threads))
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    path = args.file.resolve()
    request = CompletionRequest(
        uri=path.as_uri(),
        language_id=args.language or LANGUAGES.get(path.suffix, "plaintext"),
        text=text,
        offset=offset,
        version=0,
        settings=settings,
        path=path,
        workspace_roots=[Path.cwd()],
    )
    t0 = time.monotonic()
    deadline = t0 + settings.completion.timeout_ms / 1000
    outcome = complete(engine, host, request, threading.Event(), deadline)
    engine.close()
    suggestion = outcome.suggestion.text if outcome.suggestion else ""
    if args.json:
        print(json.dumps(result_json(text, offset, suggestion, outcome, time.monotonic() - t0)))
    elif suggestion:
        print(suggestion)
    if not suggestion:
        print(f"no suggestion: {why_none(outcome)}", file=sys.stderr)
        return 1
    return 0


def why_none(outcome: Any) -> str:
    """Say in words why the pipeline produced no suggestion."""
    dropped = {  # the postprocess plugin's steps
        "block_end": "dropped by the block-end step (it left the block at once)",
        "repetition": "dropped by the repetition step (it repeated the lines before)",
        "overlap": "dropped by the overlap step (it repeated the text after the cursor)",
        "parse": "dropped by the parse check (it would make the file unparseable)",
        "confidence": "hidden: the model was less sure of it than completion.minConfidence",
    }
    dropped_by = outcome.stats.get("dropped_by")
    if outcome.status == "empty" and dropped_by:
        return dropped.get(dropped_by, f"dropped by the {dropped_by} post-processor")
    return {
        "empty": "the model suggested nothing here",
        "ignored": "the file is excluded by .gitignore, .jpilotignore or as a secrets file",
        "no-plan": "no plugin planned a completion here (is the completion plugin disabled?)",
        "no-prompt": "no prompt could be built (is the context plugin disabled?)",
        "cancelled": "the completion timed out (completion.timeoutMs)",
    }.get(outcome.status, outcome.status)


def offset_of(text: str, line: int, col: int) -> int:
    """Return the offset of 1-based (line, column in characters); raise ValueError outside.

    Lines are the editor's (LSP's: "\\n", "\\r\\n", "\\r"). One rule for both: a line
    runs from 1 to the last line, a column from 1 to the line's length + 1.
    """
    from jpilot.lsp.positions import line_starts

    starts = line_starts(text)
    if not 1 <= line <= len(starts):
        raise ValueError(f"--line {line} is outside the file (lines 1 to {len(starts)})")
    start = int(starts[line - 1])
    end = int(starts[line]) if line < len(starts) else len(text)
    content = text[start:end].rstrip("\r\n")  # an LSP line ends in at most one line break
    if not 1 <= col <= len(content) + 1:
        raise ValueError(f"--col {col} is outside line {line} (columns 1 to {len(content) + 1})")
    return start + col - 1


def result_json(text: str, offset: int, suggestion: str, outcome: Any, seconds: float) -> dict:
    """Return the --json answer: the text, its LSP range (UTF-16) and how it was made."""
    from pygls.workspace.position_codec import PositionCodec

    from jpilot.lsp.positions import position_at

    pos = position_at(text, offset, PositionCodec())
    where = {"line": pos.line, "character": pos.character}
    return {
        "text": suggestion,
        "range": {"start": where, "end": where},
        "status": outcome.status,
        "stats": outcome.stats,
        "seconds": round(seconds, 4),
    }
