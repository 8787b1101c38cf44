"""Replay typing users against the pool on loopback: latency, cache hits, completions/s.

Each user retypes a stretch ("hole") of a real stdlib file: the text after the hole stays
put as the suffix, the prefix grows a few characters per request, and every request is a
fill-in-the-middle completion with the user's own `x-session-id`, as the language server
sends them. The script starts one local Ray and, in turn:

  1. the local engine in this process, one user, requests one after another (the baseline);
  2. a 1-replica pool, the same single user (what the pool adds to each request);
  3. 1 and 2 replicas under saturating load (--users at once, no think time), with
     session affinity, and 2 replicas again with a random session per request (what
     random routing gives).

It reports p50/p95 latency, the cached-token ratio of each document's 2nd and later
requests, completions/s, and writes every request's figures to --json for
bench/pool_sim.py. Bounded: --requests per user and --max-seconds per phase.

Run: python bench/pool_load.py [--bundle DIR] [--users 6] [--requests 20] [--json F]
It is a benchmark, not a test; it needs the pool extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import sysconfig
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from jpilot.model.default import default_bundle_path
from jpilot.model.engine import Engine, EngineConfig, GenerationConfig
from jpilot.model.serve.api import parse_request
from jpilot.model.serve.replica import PoolEngine

FILES = ["textwrap.py", "difflib.py", "argparse.py", "shutil.py", "csv.py", "heapq.py"]
CONTEXT, SUFFIX, HOLE = 600, 300, 240  # characters before the hole, after it, retyped


def users(n: int, requests: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """Return each user's requests as (prefix, suffix) pairs: retyping one hole."""
    rng, lib = random.Random(seed), Path(sysconfig.get_paths()["stdlib"])
    out = []
    for u in range(n):
        text = (lib / FILES[u % len(FILES)]).read_text(encoding="utf-8")
        start = rng.randrange(CONTEXT, len(text) - HOLE - SUFFIX)
        start = text.index("\n", start) + 1  # the hole starts at a line start
        suffix = text[start + HOLE : start + HOLE + SUFFIX]
        pos, steps = start, []
        for _ in range(requests):
            pos += rng.randint(2, 10)  # a few keystrokes between requests
            steps.append((text[start - CONTEXT : pos], suffix))
        out.append(steps)
    return out


def summary(rows: list[dict], seconds: float) -> dict:
    """Return p50/p95 ms, completions/s and the cached ratio of 2nd and later requests."""
    ms = sorted(r["ms"] for r in rows)
    later = [r for r in rows if r["step"] > 0]
    prompt = sum(r["prompt_tokens"] for r in later)
    return {
        "requests": len(rows),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
        "per_s": round(len(rows) / seconds, 2),
        "cached_ratio": round(sum(r["cached_tokens"] for r in later) / max(1, prompt), 3),
    }


def paired_run(bundle: Path, url: str, plan: list[tuple[str, str]], max_tokens: int) -> dict:
    """Send one user's requests to a local engine and to the pool in turn; return both rows."""
    # Alternating request by request keeps the two sides under the same machine load.
    engine = Engine(bundle, EngineConfig(device="cpu", threads=1, cache_entries=64))
    pool, budget = PoolEngine(engine, "local"), engine.n_positions - 1
    rows: dict[str, list[dict]] = {"local": [], "pool_1user": []}
    with httpx.Client(timeout=120) as client:
        for step, (prefix, suffix) in enumerate(plan):
            body = {"prompt": prefix, "suffix": suffix, "max_tokens": max_tokens, "temperature": 0}
            t0 = time.perf_counter()
            ids, heal = pool.prompt_ids(parse_request(body, budget))  # as a replica builds it
            result = engine.generate(ids, GenerationConfig(max_new_tokens=max_tokens, heal=heal))
            ms = (time.perf_counter() - t0) * 1000
            rows["local"].append(
                {"step": step, "ms": ms, "prompt_tokens": result.prompt_tokens,
                 "cached_tokens": result.reused_tokens}
            )  # fmt: skip
            t0 = time.perf_counter()
            answer = client.post(f"{url}/v1/completions", json=body, headers={"x-session-id": "p"})
            ms = (time.perf_counter() - t0) * 1000
            use = answer.raise_for_status().json()["usage"]
            rows["pool_1user"].append(
                {"step": step, "ms": ms, "prompt_tokens": use["prompt_tokens"],
                 "cached_tokens": use["prompt_tokens_details"]["cached_tokens"]}
            )  # fmt: skip
    engine.close()
    return rows


async def replay(
    url: str, plans: list[list[tuple[str, str]]], max_tokens: int, limit: float, affinity: bool
) -> tuple[list[dict], float]:
    """Send every user's requests, each after the previous answer; return rows and seconds."""
    rows: list[dict] = []
    t_end = time.monotonic() + limit

    async def user(u: int, plan: list[tuple[str, str]], client: httpx.AsyncClient) -> None:
        session = f"user-{u}"
        for step, (prefix, suffix) in enumerate(plan):
            if time.monotonic() > t_end:
                return
            body = {"prompt": prefix, "suffix": suffix, "max_tokens": max_tokens, "temperature": 0}
            headers = {"x-session-id": session if affinity else uuid.uuid4().hex}
            t0 = time.perf_counter()
            answer = await client.post(f"{url}/v1/completions", json=body, headers=headers)
            answer.raise_for_status()
            use = answer.json()["usage"]
            rows.append(
                {
                    "user": u,
                    "step": step,
                    "ms": (time.perf_counter() - t0) * 1000,
                    "prompt_tokens": use["prompt_tokens"],
                    "cached_tokens": use["prompt_tokens_details"]["cached_tokens"],
                    "replica": answer.headers["x-jpilot-replica"],
                }
            )

    limits = httpx.Limits(max_connections=len(plans) + 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        start = time.monotonic()
        await asyncio.gather(*(user(u, plan, client) for u, plan in enumerate(plans)))
        return rows, time.monotonic() - start


def deploy(bundle: Path, replicas: int) -> None:
    """(Re)deploy the pool with `replicas` one-thread replicas and empty caches."""
    from ray import serve

    from jpilot.model.serve.app import build_app

    serve.delete("jpilot")
    time.sleep(2)  # let the old replicas release their CPUs
    app = build_app(str(bundle), "bench", [], replicas=replicas, cpus_per_replica=1)
    serve.run(app, name="jpilot", route_prefix="/")


def main(argv: list[str] | None = None) -> int:
    """Run the phases and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--users", type=int, default=6, help="users at once under load")
    parser.add_argument("--requests", type=int, default=20, help="requests per user")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60, help="per phase")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rounds", type=int, default=2, help="1- and 2-replica runs each")
    parser.add_argument("--json", type=Path, help="write every request's figures here")
    args = parser.parse_args(argv)
    bundle = args.bundle or default_bundle_path()

    import ray
    from ray import serve

    report: dict[str, Any] = {"bundle": str(bundle), "users": args.users}
    url, one = f"http://127.0.0.1:{args.port}", users(1, args.requests * 2, seed=1)[0]
    many = users(args.users, args.requests)
    runs: list[tuple[str, int, bool]] = []
    for _ in range(args.rounds):  # alternated, so a change in machine load hits both
        runs += [("load_1replica", 1, True), ("load_2replicas", 2, True)]
    runs.append(("load_2replicas_random", 2, False))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        deploy(bundle, 1)
        report |= paired_run(bundle, url, one, args.max_tokens)
        for name, replicas, affinity in runs:
            deploy(bundle, replicas)  # empty caches for every run
            rows, seconds = asyncio.run(
                replay(url, many, args.max_tokens, args.max_seconds, affinity)
            )
            report.setdefault(name, []).append({"rows": rows, "seconds": seconds})
    finally:
        serve.shutdown()
        ray.shutdown()
    figures: dict[str, Any] = {
        name: summary(report[name], sum(r["ms"] for r in report[name]) / 1000)
        for name in ("local", "pool_1user")
    }
    for name, _, _ in runs:
        figures[name] = [summary(run["rows"], run["seconds"]) for run in report[name]]
    print(
        f"{'phase':<24}"
        + "".join(f"{h:>9}" for h in ("requests", "p50 ms", "p95 ms", "per s", "cached"))
    )
    for name, f in figures.items():
        for one_run in f if isinstance(f, list) else [f]:
            cells = [one_run[k] for k in ("requests", "p50_ms", "p95_ms", "per_s", "cached_ratio")]
            print(f"{name:<24}" + "".join(f"{c:>9}" for c in cells))
    added = statistics.median(
        p["ms"] - q["ms"] for p, q in zip(report["pool_1user"], report["local"], strict=True)
    )
    ratios = [
        two["per_s"] / one["per_s"]
        for one, two in zip(figures["load_1replica"], figures["load_2replicas"], strict=True)
    ]
    scaling = ", ".join(f"{r:.2f}x" for r in ratios)
    print(f"the pool adds {added:.1f} ms per request (median of paired differences)")
    print(f"2 replicas give {scaling} the completions/s of 1 replica")
    figures["pool_added_ms"], figures["scaling"] = added, ratios
    report["summary"] = figures
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
