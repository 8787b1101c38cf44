"""`jpilot pool serve`: run the engine as a Ray Serve pool that every editor's jpilot can use.

Declaring the arguments imports nothing heavy; Ray is imported when the command runs, and
its absence is a message saying how to install the `pool` extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import time
from pathlib import Path
from typing import Any

from jpilot.model.errors import ModelError

LOOPBACK = "127.0.0.1"


def add_parser(commands: Any) -> None:
    """Add `pool` and `pool serve` to the top-level subparsers."""
    pool = commands.add_parser("pool", help="serve the model to a team (Ray Serve)")
    sub = pool.add_subparsers(dest="pool_command", required=True, metavar="SUBCOMMAND")
    text = "serve a bundle as an OpenAI-compatible completions pool on Ray Serve"
    serve = sub.add_parser("serve", help=text, description=text)
    add_arguments(serve)
    serve.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot pool serve`'s options."""
    parser.add_argument(
        "--bundle", help="bundle folder or installed model name (default: embedded)"
    )
    parser.add_argument("--name", help="model name clients see (default: the bundle's folder name)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, default=1, help="fixed number of replicas")
    scale.add_argument("--autoscale", metavar="MIN:MAX", help="scale replicas with the load")
    parser.add_argument("--host", default=LOOPBACK, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token-file", type=Path, help="bearer tokens, one per line")
    parser.add_argument("--address", help="join this Ray cluster (default: start a local Ray)")
    parser.add_argument("--cpus-per-replica", type=float, default=1.0, help="also its threads")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0, help="> 0 runs on CUDA")
    parser.add_argument(
        "--max-ongoing-requests",
        type=int,
        default=8,
        help="requests a replica holds before its sessions spill to the least-loaded one",
    )
    parser.add_argument("--cache-mib", type=int, default=1024, help="prefix-cache KV per replica")
    parser.add_argument("--ssl-certfile", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--ssl-keyfile", help="and this private key (PEM)")


def read_token_hashes(path: Path) -> list[str]:
    """Return the sha256 hashes of the tokens in a file (one a line; '#' comments)."""
    from jpilot.model.serve.api import hash_token

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"cannot read --token-file {path}: {exc.strerror}") from exc
    tokens = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not tokens:
        raise ModelError(f"--token-file {path} holds no token; write one token a line")
    if any(len(t) < 16 for t in tokens):
        raise ModelError(f"--token-file {path}: tokens must be 16 characters or more")
    return [hash_token(t) for t in tokens]


def parse_autoscale(text: str) -> tuple[int, int]:
    """Parse MIN:MAX replicas."""
    low, _, high = text.partition(":")
    try:
        pair = int(low), int(high)
    except ValueError:
        raise ModelError(f"--autoscale {text!r}: write MIN:MAX, e.g. 1:4") from None
    if not 0 <= pair[0] <= pair[1] or pair[1] < 1:
        raise ModelError(f"--autoscale {text!r}: need 0 <= MIN <= MAX and MAX >= 1")
    return pair


def is_loopback(host: str) -> bool:
    """Return whether `host` binds the loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(bundle: str | None) -> Path:
    """Return the bundle folder a --bundle value names (default: the embedded model)."""
    if bundle is None:
        from jpilot.model.default import default_bundle_path

        return default_bundle_path()
    try:
        from jpilot.model.store import resolve_bundle
    except ImportError:  # an older tree without the model store: a plain path
        return Path(bundle).expanduser()
    return resolve_bundle(bundle)


def run(args: argparse.Namespace) -> int:
    """Start (or join) Ray, deploy the pool, and serve until interrupted."""
    try:
        import ray
        from ray import serve

        from jpilot.model.serve.app import build_app
    except ImportError as exc:
        print(
            f"error: {exc}\nthe pool needs the pool extra: pip install -e '.[pool]'",
            file=sys.stderr,
        )
        return 2
    try:
        plan = _plan(args)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ray.init(address=args.address, include_dashboard=None if args.address else False)
    http: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.ssl_certfile:
        http |= {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile}
    serve.start(http_options=http)
    serve.run(build_app(**plan), name="jpilot", route_prefix="/")
    scheme = "https" if args.ssl_certfile else "http"
    print(f"jpilot pool: serving {plan['name']} at {scheme}://{args.host}:{args.port}/v1")
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop shuts Serve down too
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("jpilot pool: shutting down", file=sys.stderr)
        serve.shutdown()
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the pool shuts down as on Ctrl-C."""
    raise KeyboardInterrupt


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """Check the options and return build_app's arguments; say what the pool exposes."""
    from jpilot.model.bundle import load_bundle

    folder = resolve(args.bundle)
    load_bundle(folder)  # a clear message now, rather than from every replica
    hashes: list[str] = []
    if args.token_file is not None:
        hashes = read_token_hashes(args.token_file)
        print(f"jpilot pool: {len(hashes)} bearer token(s) from {args.token_file}")
    elif not is_loopback(args.host):
        raise ModelError(
            f"refusing to serve {args.host} without --token-file: anyone who reaches it could "
            "use the pool. Write tokens to a file (one a line) and pass --token-file FILE"
        )
    else:
        print(
            "jpilot pool: no --token-file, so no authentication: serving loopback "
            f"({args.host}) only",
            file=sys.stderr,
        )
    if args.ssl_certfile and not args.ssl_keyfile:
        raise ModelError("--ssl-certfile needs --ssl-keyfile as well")
    if args.replicas < 1:
        raise ModelError("--replicas must be 1 or more")
    return {
        "bundle": str(folder),
        "name": args.name or folder.name,
        "token_hashes": hashes,
        "replicas": args.replicas,
        "autoscale": parse_autoscale(args.autoscale) if args.autoscale else None,
        "cpus_per_replica": args.cpus_per_replica,
        "gpus_per_replica": args.gpus_per_replica,
        "max_ongoing_requests": args.max_ongoing_requests,
        "cache_mib": args.cache_mib,
    }
