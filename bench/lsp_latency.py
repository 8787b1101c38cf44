"""Replay typing over a real Python file against `jpilot serve` and measure what a user feels.

It picks a stretch of a real source file (the stdlib's `textwrap.py` by default), opens
the file without that stretch, and then types it back one character at a time, as an
editor sends it: an incremental `didChange`, then a `textDocument/inlineCompletion` at
the new cursor. Keystrokes come every --interval-ms, without waiting for answers, so
requests overlap as they do under a fast typist. It reports:

  - p50, p95 and p99 latency of the requests that were answered with a result;
  - the share of answered requests with a non-empty suggestion;
  - the prefix-reuse hit rate (prompt tokens whose KV came from the engine's cache);
  - superseded requests, and those still generated to their natural end;
  - the time from spawning the server to the first completion, and the server's RSS;
  - how often the adaptive budget changed suggestion length (the server logs each change).

Run:  python bench/lsp_latency.py --bundle DIR [--file F] [--chars 300] [--interval-ms 80]
                                  [--multiline never] [--json out.json]
Without --bundle the embedded default model is used. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tokenize
from pathlib import Path
from typing import Any

from jpilot.plugins.testing_server import read_message

SERVER = [sys.executable, "-m", "jpilot.lsp.cli", "serve", "--log-level", "INFO"]


class Client:
    """A minimal JSON-RPC client over the server's stdio, timestamping every answer."""

    def __init__(self) -> None:
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(
            SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.answers: dict[Any, tuple[float, dict]] = {}
        self.arrived: queue.Queue[Any] = queue.Queue()
        self.log: list[str] = []
        self._id = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()

    def _read(self) -> None:
        """Read framed messages; answer server requests with null; record responses."""
        out = self.proc.stdout
        assert out is not None
        while (message := read_message(out)) is not None:
            now = time.monotonic()
            if "method" in message:
                if "id" in message:
                    self._write({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            self.answers[message["id"]] = (now, message)
            self.arrived.put(message["id"])

    def _stderr(self) -> None:
        """Keep the server's log lines (the adaptive budget reports there)."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    def _write(self, message: dict) -> None:
        """Send one framed message."""
        body = json.dumps(message).encode()
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def send(self, method: str, params: Any) -> int:
        """Send a request and return its id."""
        self._id += 1
        self._write({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        return self._id

    def notify(self, method: str, params: Any) -> None:
        """Send a notification."""
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, msg_id: int, timeout: float = 120) -> dict:
        """Block until the answer to msg_id has arrived."""
        end = time.monotonic() + timeout
        while msg_id not in self.answers:
            self.arrived.get(timeout=max(0.01, end - time.monotonic()))
        return self.answers[msg_id][1]

    def rss_mb(self) -> tuple[float, float]:
        """Return the server's current and peak resident memory in MiB."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def position(text: str, offset: int) -> dict[str, int]:
    """Return the LSP position (UTF-16) of an offset."""
    line = text.count("\n", 0, offset)
    col = text[text.rfind("\n", 0, offset) + 1 : offset]
    return {"line": line, "character": len(col.encode("utf-16-le")) // 2}


def pick_stretch(text: str, chars: int) -> tuple[int, int]:
    """Pick `chars` characters from the code (not a docstring) of a function body line.

    The stretch starts after the indentation of the first line, past a third of the
    file, whose first token is a name or keyword at 8 spaces, so every request of the
    replay asks for code.
    """
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    third = text.count("\n") // 3
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        row, col = tok.start
        if tok.type == tokenize.NAME and col == 8 and row > third:
            begin = starts[row - 1] + col
            if not text[starts[row - 1] : begin].strip():  # the line's first token
                return begin, min(len(text), begin + chars)
    return len(text) // 3, min(len(text), len(text) // 3 + chars)


def inline_params(uri: str, pos: dict[str, int]) -> dict[str, Any]:
    """Build textDocument/inlineCompletion params for an automatic trigger."""
    return {"textDocument": {"uri": uri}, "position": pos, "context": {"triggerKind": 2}}


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank) of values, or nan."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def siblings(path: Path, n: int) -> list[Path]:
    """Return the n largest other .py files of `path`'s folder (by name on a tie)."""
    others = [p for p in sorted(path.parent.glob("*.py")) if p != path]
    return sorted(others, key=lambda p: -p.stat().st_size)[:n]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the replay and return the measurements."""
    path = args.file or Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
    source = path.read_text(encoding="utf-8")
    start, end = pick_stretch(source, args.chars)
    options: dict[str, Any] = {"completion": {"multiline": args.multiline}}
    if args.bundle:
        options["model"] = {"path": str(args.bundle)}
    if args.max_tokens:
        options["completion"]["maxTokens"] = args.max_tokens
    if args.no_type_through:
        options["completion"]["typeThrough"] = False
    client = Client()
    client.wait(client.send("initialize", {
        "processId": os.getpid(), "rootUri": None, "capabilities": {},
        "initializationOptions": options,
    }))  # fmt: skip
    client.notify("initialized", {})
    # The buffer is sent, never read from disk; the URI names a fresh folder because the
    # stdlib often sits in an ignored one (pyenv's .gitignore has /versions), where the
    # server, like git, would make no suggestions at all.
    folder = Path(tempfile.mkdtemp(prefix="jpilot-replay-"))
    uri = (folder / path.name).as_uri()
    text = source[:start] + source[end:]
    for other in siblings(path, args.siblings):  # editor tabs: the context plugin's snippets
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": (folder / other.name).as_uri(), "languageId": "python", "version": 1,
            "text": other.read_text(encoding="utf-8")}})  # fmt: skip
    client.notify("textDocument/didOpen", {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}
    })  # fmt: skip
    # Startup to first completion: ask at the start of the stretch until one is non-empty
    # (the model loads in the background, and answers are empty until it is ready).
    first = None
    give_up = time.monotonic() + args.startup_timeout
    while first is None and time.monotonic() < give_up:
        answer = client.wait(client.send("textDocument/inlineCompletion",
                                         inline_params(uri, position(text, start))))  # fmt: skip
        if answer.get("result", {}).get("items"):
            first = time.monotonic() - client.t_spawn
        else:
            time.sleep(0.02)
    sent: list[tuple[int, float]] = []
    version = 1
    cursor = start
    for ch in source[start:end]:
        t0 = time.monotonic()
        pos = position(text, cursor)
        version += 1
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": pos, "end": pos}, "text": ch}],
        })  # fmt: skip
        text = text[:cursor] + ch + text[cursor:]
        cursor += 1
        sent.append((client.send("textDocument/inlineCompletion",
                                 inline_params(uri, position(text, cursor))), t0))  # fmt: skip
        time.sleep(max(0.0, args.interval_ms / 1000 - (time.monotonic() - t0)))
    latencies, nonempty, errors, superseded_empty = [], 0, 0, 0
    for msg_id, t0 in sent:
        answer = client.wait(msg_id)
        if "error" in answer:
            errors += 1  # -32801: the document moved on while it was computed
            continue
        items = answer["result"]["items"]
        latencies.append((client.answers[msg_id][0] - t0) * 1000)
        nonempty += bool(items)
        superseded_empty += not items
    status = client.wait(client.send("workspace/executeCommand", {"command": "jpilot.status"}))
    rss, peak = client.rss_mb()
    client.wait(client.send("shutdown", None))
    client.notify("exit", None)
    client.proc.wait(30)
    stats = status["result"]["stats"]
    model = status["result"]["model"]
    adaptive_lines = [line for line in client.log if "budget: suggestions now" in line]
    return {
        "file": str(path),
        "typed_chars": end - start,
        "type_through": not args.no_type_through,
        "interval_ms": args.interval_ms,
        "multiline": args.multiline,
        "siblings": args.siblings,
        "model": model["path"],
        "answered": len(latencies),
        "content_modified": errors,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
        "nonempty_share": nonempty / max(1, len(latencies)),
        "prefix_reuse_token_share": stats["reused_tokens"] / max(1, stats["prompt_tokens"]),
        "prefix_cache_hit_rate": model["cache_hits"]
        / max(1, model["cache_hits"] + model["cache_misses"]),
        "engine_runs": stats["generated"],
        "typed_through": stats["typed_through"],
        "superseded": stats["superseded"],
        "superseded_computed_to_end": stats["superseded_computed"],
        "startup_to_first_completion_s": first,
        "model_load_s": model["load_seconds"],
        "rss_mb": rss,
        "peak_rss_mb": peak,
        "adaptive_changes": len(adaptive_lines),
        "adaptive_log": adaptive_lines[-3:],
    }


def main() -> None:
    """Parse arguments, run, print a table (and JSON if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: embedded model)")
    parser.add_argument("--file", type=Path, help="Python file to replay (default: textwrap.py)")
    parser.add_argument("--chars", type=int, default=300, help="characters to type")
    parser.add_argument("--interval-ms", type=float, default=80, help="time between keys")
    parser.add_argument("--multiline", default="never", choices=["auto", "always", "never"])
    parser.add_argument("--max-tokens", type=int, default=0, help="completion.maxTokens")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--siblings", type=int, default=0, metavar="N",
        help="also open the N largest other files of the file's folder, as editor tabs",
    )  # fmt: skip
    parser.add_argument(
        "--no-type-through",
        action="store_true",
        help="run the model on every keystroke (completion.typeThrough off)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the first non-empty completion",
    )
    args = parser.parse_args()
    results = run(args)
    for key, value in results.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:32} {shown}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
