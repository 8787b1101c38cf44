"""A 20 MB document against `jpilot serve`: does it delay completions in other documents?

A small Python document A is open. The bench times a completion on A (sent, then waited
for) in four situations, --rounds times each, round-robin so that load from other
processes hits all alike:

  - baseline: nothing else happens;
  - open: right after a didOpen of a fresh 20 MB document (a new URI each round);
  - first edit: right after the first didChange that types into the 20 MB document (its
    line starts are found then), and next edit: after a second one (typing);
  - big: a completion on the 20 MB document itself, at its middle.

It prints the median and the range of each, and the ratio of the medians to the
baseline's. The 20 MB document is over context.largeFileKb (1024 by default), so it is
completed from a window and gets no whole-file pass.

Run:  python bench/large_files.py [--mb 20] [--rounds 5] [--bundle DIR] [--json out.json]
Without --bundle the embedded default model is used. It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lsp_latency import Client, inline_params
from storm import start_server

LINE = "    value = compute(alpha, beta)  # a typical line of generated code\n"
SMALL = "import os\n\n\ndef read_config(path):\n    with open(path) as f:\n        return f.re"


def timed(client: Client, uri: str, line: int, character: int) -> tuple[float, int]:
    """Send one completion and wait for it; return (ms, items)."""
    t0 = time.monotonic()
    pos = {"line": line, "character": character}
    answer = client.wait(client.send("textDocument/inlineCompletion", inline_params(uri, pos)))
    msg_id = max(client.answers)
    return (client.answers[msg_id][0] - t0) * 1000, len(answer.get("result", {}).get("items", []))


def main() -> None:
    """Run the rounds; print medians, ranges and ratios (and JSON if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: embedded model)")
    parser.add_argument("--mb", type=float, default=20.0, help="size of the large document")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    client = start_server(args.bundle)
    folder = Path(tempfile.mkdtemp(prefix="jpilot-large-"))
    small = (folder / "small.py").as_uri()
    item = {"uri": small, "languageId": "python", "version": 1, "text": SMALL}
    client.notify("textDocument/didOpen", {"textDocument": item})
    cursor = (SMALL.count("\n"), len(SMALL.rsplit("\n", 1)[1]))
    while not timed(client, small, *cursor)[1]:  # the model loads in the background
        time.sleep(0.2)
    lines = int(args.mb * 1e6 / len(LINE))
    big_text = LINE * lines
    results: dict[str, list[float]] = {"baseline": [], "open": [], "first edit": [],
                                       "next edit": [], "big": []}  # fmt: skip
    for r in range(args.rounds):
        results["baseline"].append(timed(client, small, *cursor)[0])
        big = (folder / f"generated{r}.py").as_uri()
        item = {"uri": big, "languageId": "python", "version": 1, "text": big_text}
        client.notify("textDocument/didOpen", {"textDocument": item})
        results["open"].append(timed(client, small, *cursor)[0])
        for version, case in ((2, "first edit"), (3, "next edit")):
            at = {"line": lines // 2, "character": 2 + version}
            change = {"range": {"start": at, "end": at}, "text": "x"}
            document = {"uri": big, "version": version}
            params = {"textDocument": document, "contentChanges": [change]}
            client.notify("textDocument/didChange", params)
            results[case].append(timed(client, small, *cursor)[0])
        results["big"].append(timed(client, big, lines // 2, 5)[0])
        client.notify("textDocument/didClose", {"textDocument": {"uri": big}})
    status = client.wait(client.send("workspace/executeCommand", {"command": "jpilot.status"}))
    rss, peak = client.rss_mb()
    client.wait(client.send("shutdown", None))
    client.notify("exit", None)
    client.proc.wait(30)
    base = statistics.median(results["baseline"])
    report: dict[str, Any] = {"mb": args.mb, "rounds": args.rounds}
    for name, values in results.items():
        report[name] = {"median_ms": round(statistics.median(values), 1),
                        "range_ms": [round(min(values), 1), round(max(values), 1)],
                        "ratio": round(statistics.median(values) / base, 2)}  # fmt: skip
    stats = status["result"]["stats"]
    report |= {"windowed": stats["windowed"], "whole_file_skipped": stats["whole_file_skipped"],
               "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1)}  # fmt: skip
    for key, value in report.items():
        print(f"{key:20} {value}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
