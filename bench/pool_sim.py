"""How many pool replicas N developers need: a SimPy simulation fed by bench/pool_load.py.

Each replica is one server that runs one generation at a time, as the engine does, so a
replica is a SimPy resource of capacity 1. A request holds its replica for a service time
drawn from the local engine's measured per-request times (the `local` phase of
pool_load.py's --json). The pool's own overhead (HTTP, proxy, routing), measured as the
1-user pool p50 minus the local p50 (at least 0), is added to its latency but does not
hold the replica. Requests are routed as the pool routes them: a developer's session
always goes to the same replica (a uniform hash), unless that replica holds
--max-ongoing requests, in which case the least-loaded replica takes it.

The simulation runs in two modes:

  - validate: it replays pool_load.py's saturating phases (--users at once, no think time,
    1 and 2 replicas) and prints the simulated completions/s and p95 beside the measured
    ones.
  - plan: each developer types in bursts. A developer is active a --active share of the
    time; while active, one completion is requested every --interval-s seconds on
    average (Poisson). For 100, 1,000 and 10,000 developers it prints the fewest replicas
    that keep p95 <= --p95-ms. --speedup divides the service times, which models faster
    replicas (a GPU, a smaller model).

Run: python bench/pool_sim.py load.json [--active 0.5] [--interval-s 2] [--speedup 1]
It is a benchmark, not a test; it needs simpy (pip install simpy).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import simpy

OVERHEAD = [0.0]  # seconds each request spends outside its replica, set from the measurement


def p95(values: list[float]) -> float:
    """Return the 95th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


class Pool:
    """c replicas with session affinity and least-loaded fallback."""

    def __init__(
        self, env: simpy.Environment, replicas: int, max_ongoing: int, overhead: float
    ) -> None:
        self.env = env
        self.overhead = overhead  # seconds outside the replica (HTTP, proxy, routing)
        self.replicas = [simpy.Resource(env, capacity=1) for _ in range(replicas)]
        self.max_ongoing = max_ongoing

    def route(self, session: int) -> simpy.Resource:
        """Return the session's replica, or the least-loaded one when that one is full."""
        owner = self.replicas[hash((session, 7919)) % len(self.replicas)]
        if len(owner.queue) + owner.count < self.max_ongoing:
            return owner
        return min(self.replicas, key=lambda r: len(r.queue) + r.count)

    def serve(self, session: int, seconds: float, done: list[float]) -> Generator:
        """Queue on the routed replica, hold it for `seconds`, record the latency."""
        start = self.env.now
        replica = self.route(session)
        with replica.request() as turn:
            yield turn
            yield self.env.timeout(seconds)
        yield self.env.timeout(self.overhead)  # it does not hold the replica
        done.append(self.env.now - start)


def closed_loop(service: Callable[[], float], users: int, replicas: int, max_ongoing: int,
                horizon: float) -> tuple[float, float]:  # fmt: skip
    """Simulate users that each send the next request on the answer; return (per s, p95 ms)."""
    env, done = simpy.Environment(), list[float]()
    pool = Pool(env, replicas, max_ongoing, OVERHEAD[0])

    def user(u: int) -> Generator:
        while True:
            yield env.process(pool.serve(u, service(), done))

    for u in range(users):
        env.process(user(u))
    env.run(until=horizon)
    return len(done) / horizon, p95(done) * 1000


def open_loop(service: Callable[[], float], developers: int, rate: float, replicas: int,
              max_ongoing: int, requests: int, rng: random.Random) -> float:  # fmt: skip
    """Simulate Poisson arrivals of `rate`/s from `developers` sessions; return p95 ms."""
    env, done = simpy.Environment(), list[float]()
    pool = Pool(env, replicas, max_ongoing, OVERHEAD[0])

    def arrivals() -> Generator:
        for _ in range(requests):
            yield env.timeout(rng.expovariate(rate))
            env.process(pool.serve(rng.randrange(developers), service(), done))

    env.process(arrivals())
    env.run()
    return p95(done[len(done) // 10 :]) * 1000  # the first tenth warms the queues up


def replicas_needed(service: Callable[[], float], mean_s: float, developers: int, rate: float,
                    args: argparse.Namespace, rng: random.Random) -> tuple[int, float]:  # fmt: skip
    """Return the fewest replicas whose p95 stays within the target, and that p95."""
    requests = max(20_000, min(50_000, int(rate * 20)))

    def p95_of(replicas: int) -> float:
        return open_loop(service, developers, rate, replicas, args.max_ongoing, requests, rng)

    low = max(1, math.ceil(rate * mean_s))  # below this the queues grow without bound
    high, step = low, 1
    while (ms := p95_of(high)) > args.p95_ms:  # double the step until the target holds
        low, high, step = high + 1, high + step, step * 2
    while low < high:  # then bisect: the fewest replicas that meet it
        mid = (low + high) // 2
        if (mid_ms := p95_of(mid)) <= args.p95_ms:
            high, ms = mid, mid_ms
        else:
            low = mid + 1
    return high, ms


def main(argv: list[str] | None = None) -> int:
    """Validate against the measured runs, then plan for 100, 1,000 and 10,000 developers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("load", type=Path, help="the --json of bench/pool_load.py")
    parser.add_argument("--active", type=float, default=0.5, help="share of developers typing")
    parser.add_argument("--interval-s", type=float, default=2.0, help="between completions")
    parser.add_argument("--speedup", type=float, default=1.0, help="replica speed vs measured")
    parser.add_argument("--p95-ms", type=float, default=200.0)
    parser.add_argument("--max-ongoing", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    load: dict[str, Any] = json.loads(args.load.read_text())
    rng = random.Random(args.seed)
    local = [r["ms"] / 1000 for r in load["local"]]
    local_p50 = statistics.median(r["ms"] for r in load["local"])
    overhead = max(0.0, load["summary"]["pool_1user"]["p50_ms"] - local_p50) / 1000
    OVERHEAD[0], samples = overhead, local

    def service() -> float:
        return rng.choice(samples) / args.speedup

    mean_s = statistics.fmean(samples) / args.speedup
    print(f"service time: mean {mean_s * 1000:.1f} ms, pool overhead {overhead * 1000:.1f} ms")
    print(f"{'validate':<16}{'measured/s':>11}{'sim/s':>8}{'measured p95':>14}{'sim p95':>9}")
    for name, replicas in (("load_1replica", 1), ("load_2replicas", 2)):
        per_s, ms = closed_loop(service, load["users"], replicas, args.max_ongoing, 300.0)
        for got in load["summary"][name]:  # one line per measured run
            print(f"{name:<16}{got['per_s']:>11}{per_s:>8.1f}{got['p95_ms']:>14}{ms:>9.1f}")
    print(
        f"plan: {args.active:.0%} of developers active, one completion per {args.interval_s} s"
        f" each, p95 <= {args.p95_ms:.0f} ms, speedup {args.speedup}"
    )
    for developers in (100, 1_000, 10_000):
        rate = developers * args.active / args.interval_s
        replicas, ms = replicas_needed(service, mean_s, developers, rate, args, rng)
        print(f"{developers:>7} developers: {rate:>7.1f} req/s -> {replicas:>4} replicas "
              f"(p95 {ms:.0f} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
