"""A typing storm over several documents against `jpilot serve`: late answers, errors, RSS.

Several real Python files (stdlib modules) are opened with a stretch of code removed, and
the stretch is typed back into one document after another, in bursts, as an editor sends
it: an incremental didChange, then a textDocument/inlineCompletion at the new cursor, every
--interval-ms, without waiting for answers. A share of the requests is cancelled with
$/cancelRequest a few ms after it was sent. A document whose stretch is typed is closed
and opened again, so the storm goes on for --minutes.

A request is *superseded* once the client has sent a newer edit or request for its
document, or its cancel. An answer with items that arrives more than --late-ms after that
is a *late answer* (the editor drops it: its work was wasted, or worse, shown stale). An
error other than -32800 (cancelled) and -32801 (content modified), or a request never
answered, is an *error*. It reports per minute: requests, p50/p95 of the time to any
answer, the server's RSS; and in all: late answers (and answers with items that crossed a
supersede on the wire, within --late-ms), errors, the slowest answer, RSS growth after the
--warmup-minutes.

Run:  python bench/storm.py [--minutes 10] [--docs 4] [--bundle DIR] [--json out.json]
Without --bundle the embedded default model is used. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_latency import Client, inline_params, percentile, pick_stretch, position

FILES = ["textwrap.py", "heapq.py", "bisect.py", "shlex.py", "fnmatch.py", "glob.py"]
OK_ERRORS = {-32800, -32801}  # cancelled; the document changed while it was computed


@dataclass
class Doc:
    """One document being typed into: its text now, the stretch still to type, the cursor."""

    uri: str
    source: str
    start: int
    end: int
    text: str = ""
    cursor: int = 0
    version: int = 0
    pending: list[int] = field(default_factory=list)  # request ids not yet superseded


@dataclass
class Sent:
    """One completion request: when it was sent and when it was superseded."""

    doc: str
    t0: float
    superseded: float | None = None


class Storm:
    """Drive the storm and keep the books."""

    def __init__(self, client: Client, args: argparse.Namespace) -> None:
        self.client, self.args = client, args
        self.sent: dict[int, Sent] = {}
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()

    def supersede(self, doc: Doc) -> None:
        """Mark the document's pending requests superseded now (unless answered)."""
        now = time.monotonic()
        for msg_id in doc.pending:
            if msg_id not in self.client.answers and self.sent[msg_id].superseded is None:
                self.sent[msg_id].superseded = now
        doc.pending.clear()

    def open(self, doc: Doc) -> None:
        """(Re)open a document without its stretch."""
        doc.text = doc.source[: doc.start] + doc.source[doc.end :]
        doc.cursor, doc.version = doc.start, doc.version + 1
        item = {"uri": doc.uri, "languageId": "python", "version": doc.version, "text": doc.text}
        self.client.notify("textDocument/didOpen", {"textDocument": item})

    def key(self, doc: Doc) -> None:
        """Type the next character of the stretch and ask for a completion."""
        if doc.cursor >= doc.end:  # typed to the end: start over
            self.supersede(doc)
            self.client.notify("textDocument/didClose", {"textDocument": {"uri": doc.uri}})
            self.open(doc)
        ch = doc.source[doc.cursor]
        pos = position(doc.text, doc.cursor)
        doc.version += 1
        self.supersede(doc)
        self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": doc.uri, "version": doc.version},
            "contentChanges": [{"range": {"start": pos, "end": pos}, "text": ch}]})  # fmt: skip
        doc.text = doc.text[: doc.cursor] + ch + doc.text[doc.cursor :]
        doc.cursor += 1
        t0 = time.monotonic()
        msg_id = self.client.send(
            "textDocument/inlineCompletion", inline_params(doc.uri, position(doc.text, doc.cursor))
        )
        self.sent[msg_id] = Sent(doc.uri, t0)
        doc.pending.append(msg_id)
        if self.rng.random() < self.args.cancel_share:
            time.sleep(self.rng.uniform(0, 0.03))
            if msg_id not in self.client.answers:
                self.sent[msg_id].superseded = time.monotonic()
            self.client.notify("$/cancelRequest", {"id": msg_id})

    def run(self, docs: list[Doc]) -> list[dict[str, Any]]:
        """Type for --minutes; return one row per minute."""
        for doc in docs:
            self.open(doc)
        rows: list[dict[str, Any]] = []
        t_start = time.monotonic()
        minute_end = t_start + 60
        doc = docs[0]
        burst = 0
        while time.monotonic() - t_start < self.args.minutes * 60:
            if burst <= 0:
                doc, burst = self.rng.choice(docs), self.rng.randint(10, 60)
            t0 = time.monotonic()
            self.key(doc)
            burst -= 1
            if time.monotonic() >= minute_end:
                rows.append(self.minute(len(rows), minute_end - 60, minute_end))
                print(json.dumps(rows[-1]), flush=True)
                minute_end += 60
            time.sleep(max(0.0, self.args.interval_ms / 1000 - (time.monotonic() - t0)))
        return rows

    def minute(self, index: int, lo: float, hi: float) -> dict[str, Any]:
        """Return the figures of the requests sent in [lo, hi)."""
        ids = [i for i, s in self.sent.items() if lo <= s.t0 < hi]
        waits = [(self.client.answers[i][0] - self.sent[i].t0) * 1000
                 for i in ids if i in self.client.answers]  # fmt: skip
        rss, _ = self.client.rss_mb()
        return {"minute": index + 1, "requests": len(ids), "answered": len(waits),
                "p50_ms": round(percentile(waits, 50), 1),
                "p95_ms": round(percentile(waits, 95), 1), "rss_mb": round(rss, 1)}  # fmt: skip

    def totals(self) -> dict[str, Any]:
        """Return the whole run's counts once every request is answered."""
        late = crossed = errors = unanswered = 0
        slowest = latest = 0.0
        for msg_id, s in self.sent.items():
            try:
                answer = self.client.wait(msg_id, timeout=30)
            except Exception:
                unanswered += 1
                continue
            arrived = self.client.answers[msg_id][0]
            slowest = max(slowest, arrived - s.t0)
            if "error" in answer:
                errors += answer["error"].get("code") not in OK_ERRORS
                continue
            if answer["result"]["items"] and s.superseded is not None:
                after_ms = (arrived - s.superseded) * 1000
                latest = max(latest, after_ms)
                if after_ms > self.args.late_ms:
                    late += 1
                else:
                    crossed += 1
        return {"requests": len(self.sent), "late_answers": late,
                "crossed_on_the_wire": crossed, "latest_items_after_supersede_ms": round(latest, 1),
                "errors": errors, "unanswered": unanswered,
                "slowest_answer_s": round(slowest, 3)}  # fmt: skip


def start_server(bundle: Path | None, settings: dict[str, Any] | None = None) -> Client:
    """Start and initialize `jpilot serve` for one-line completions (on `bundle`, or the
    embedded model), with more `settings` if given."""
    options: dict[str, Any] = {"completion": {"multiline": "never"}, **(settings or {})}
    if bundle:
        options["model"] = {"path": str(bundle)}
    client = Client()
    init = {"processId": os.getpid(), "rootUri": None, "capabilities": {},
            "initializationOptions": options}  # fmt: skip
    client.wait(client.send("initialize", init))
    client.notify("initialized", {})
    return client


def main() -> None:
    """Parse arguments, run the storm, print the minutes and totals (and JSON if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: embedded model)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--docs", type=int, default=4, help="documents typed into")
    parser.add_argument("--interval-ms", type=float, default=60, help="time between keys")
    parser.add_argument("--cancel-share", type=float, default=0.1, help="requests cancelled")
    parser.add_argument("--late-ms", type=float, default=10.0, help="later than this: late")
    parser.add_argument("--warmup-minutes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default="{}", help='more settings, e.g. \'{"plugins": '
                        '{"debug": {"enabled": false}}}\'')  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    client = start_server(args.bundle, json.loads(args.settings))
    while True:  # the model loads in the background
        status = client.wait(client.send("workspace/executeCommand", {"command": "jpilot.status"}))
        if status["result"]["model"]["state"] != "loading":
            break
        time.sleep(0.2)
    folder = Path(tempfile.mkdtemp(prefix="jpilot-storm-"))  # not under an ignored folder
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for name in FILES[: args.docs]:
        source = (stdlib / name).read_text(encoding="utf-8")
        start, end = pick_stretch(source, 400)
        docs.append(Doc((folder / name).as_uri(), source, start, end))
    storm = Storm(client, args)
    rows = storm.run(docs)
    totals = storm.totals()
    status = client.wait(client.send("workspace/executeCommand", {"command": "jpilot.status"}))
    client.wait(client.send("shutdown", None))
    client.notify("exit", None)
    client.proc.wait(30)
    after = [r["rss_mb"] for r in rows[args.warmup_minutes - 1 :]] or [float("nan")]
    p95s = [r["p95_ms"] for r in rows[args.warmup_minutes :]] or [r["p95_ms"] for r in rows]
    totals |= {
        "rss_after_warmup_mb": after[0],
        "rss_end_mb": after[-1],
        "rss_growth_after_warmup": round(after[-1] / after[0] - 1, 4),
        "p95_ms_min_max": [min(p95s), max(p95s)],
        "p95_ms_spread": round(statistics.pstdev(p95s) / statistics.fmean(p95s), 3) if p95s else 0,
        "server_stats": status["result"]["stats"],
        "model": status["result"]["model"]["path"],
        "tracebacks_in_log": sum("Traceback" in line for line in client.log),
    }
    for key, value in totals.items():
        print(f"{key:28} {value}")
    if args.json:
        args.json.write_text(json.dumps({"minutes": rows, "totals": totals}, indent=2))


if __name__ == "__main__":
    main()
