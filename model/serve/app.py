"""The pool's Ray Serve application: one deployment whose replicas each hold an Engine.

The replica class is also the HTTP ingress (FastAPI through `serve.ingress`), so Serve's
proxy routes each request straight to a replica, picked by the session-affinity router
(router.py). Every answer carries `x-jpilot-replica`. Bearer tokens are checked against
sha256 hashes (the tokens themselves never reach a replica) before any model work.
"""

import hashlib
import hmac
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from ray import serve
from ray.serve.config import RequestRouterConfig

from jpilot.model.engine import Engine, EngineConfig, GenerationResult
from jpilot.model.errors import ModelError
from jpilot.model.serve import api
from jpilot.model.serve.api import RequestError
from jpilot.model.serve.replica import PoolEngine
from jpilot.model.serve.router import ROUTER_PATH

REPLICA_HEADER = b"x-jpilot-replica"


def replica_id() -> str:
    """Return the id of the Serve replica this code runs in."""
    return serve.get_replica_context().replica_id.unique_id


class ReplicaHeader:
    """ASGI middleware: add `x-jpilot-replica` to every response, streamed ones included."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.replica = b""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.replica = self.replica or replica_id().encode()

        async def send_with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REPLICA_HEADER, self.replica)]
            await send(message)

        await self.app(scope, receive, send_with_header)


web = FastAPI(title="jpilot pool", docs_url=None, redoc_url=None, openapi_url=None)
web.add_middleware(ReplicaHeader)


class ReplicaMetrics:
    """This replica's Prometheus metrics, exported through Ray Serve's metrics."""

    def __init__(self) -> None:
        from ray.serve import metrics

        self.requests = metrics.Counter(
            "jpilot_pool_requests", "completions served", tag_keys=("outcome",)
        )
        self.prompt_tokens = metrics.Counter("jpilot_pool_prompt_tokens", "prompt tokens")
        self.cached_tokens = metrics.Counter(
            "jpilot_pool_cached_tokens", "prompt tokens served from the prefix cache"
        )
        self.cached_ratio = metrics.Gauge(
            "jpilot_pool_cached_token_ratio", "cached / prompt tokens since the replica started"
        )
        self.queue = metrics.Gauge("jpilot_pool_queue_length", "completions in flight here")
        self.latency = metrics.Histogram(
            "jpilot_pool_latency_ms",
            "completion time in ms, queueing on the replica included",
            boundaries=[5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
        )
        self._prompt = self._cached = 0

    def observe(self, result: GenerationResult | None, seconds: float | None, ongoing: int) -> None:
        """Record one request's start (seconds None) or end."""
        self.queue.set(ongoing)
        if seconds is None:
            return
        cancelled = result is None or result.finish_reason == "cancelled"
        self.requests.inc(1, tags={"outcome": "cancelled" if cancelled else "ok"})
        self.latency.observe(seconds * 1000)
        if result is not None:
            self._prompt += result.prompt_tokens
            self._cached += result.reused_tokens
            self.prompt_tokens.inc(result.prompt_tokens)
            if result.reused_tokens:
                self.cached_tokens.inc(result.reused_tokens)
            self.cached_ratio.set(self._cached / max(1, self._prompt))


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    """Return an OpenAI-shaped error response."""
    return JSONResponse(api.error_body(message, kind, code), status_code=status)


@serve.deployment(name="jpilot")
@serve.ingress(web)
class PoolReplica:
    """One replica: an Engine, its prefix cache and the OpenAI-compatible endpoints."""

    def __init__(
        self,
        bundle: str,
        name: str,
        token_hashes: list[str],
        engine_config: EngineConfig,
        debug: bool = False,
    ) -> None:
        self.replica = replica_id()
        self.metrics = ReplicaMetrics()
        self.pool = PoolEngine(Engine(bundle, engine_config), name, self.metrics.observe)
        self.bundle = self.pool.engine.bundle
        self.hashes = [bytes.fromhex(h) for h in token_hashes]  # empty: no auth (loopback)
        self.debug = debug
        self.created = int(time.time())

    def _unauthorized(self, request: Request) -> JSONResponse | None:
        """Return a 401 unless the request carries one of the pool's tokens."""
        if not self.hashes:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        digest = hashlib.sha256(token.strip().encode()).digest()
        ok = False
        for known in self.hashes:  # every hash compared, in constant time each
            ok |= hmac.compare_digest(digest, known)
        if scheme.lower() == "bearer" and token and ok:
            return None
        return _error(
            401, "missing or wrong bearer token", "invalid_request_error", "invalid_api_key"
        )

    @web.get("/health")
    def health(self) -> dict:
        """Say the replica is up (no auth: it reveals nothing)."""
        return {"status": "ok"}

    @web.get("/v1/models", response_model=None)
    def models(self, request: Request) -> Response | dict:
        """List the one model this pool serves."""
        if denied := self._unauthorized(request):
            return denied
        card = api.model_card(self.pool.name, self.bundle.manifest, self.created)
        return {"object": "list", "data": [card]}

    @web.get("/v1/jpilot/tokenizer", response_model=None)
    def tokenizer(self, request: Request) -> Response:
        """Return the bundle's tokenizer.json, so clients budget prompts in its tokens."""
        if denied := self._unauthorized(request):
            return denied
        return FileResponse(self.bundle.path / "tokenizer.json", media_type="application/json")

    @web.get("/v1/jpilot/stats", response_model=None)
    def stats(self, request: Request) -> Response | dict:
        """Return this replica's counters (requests, cache, cancellations)."""
        if denied := self._unauthorized(request):
            return denied
        return {"replica": self.replica, **self.pool.stats.as_dict()}

    @web.post("/v1/completions", response_model=None)
    async def completions(self, request: Request) -> Response | dict:
        """Complete a prompt, or fill in the middle between prompt and suffix."""
        if denied := self._unauthorized(request):
            return denied
        try:
            body = json.loads(await request.body() or b"null")
            req = api.parse_request(body, self.pool.n_positions - 1, self.debug)
            session = request.headers.get("x-session-id")
            if req.stream:
                self.pool.prompt_ids(req)  # a bad prompt is a 400, not a broken stream
                events = self.pool.stream(req, session)
                return StreamingResponse(events, media_type="text/event-stream")
            return await self.pool.complete(req, session)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the body is not valid JSON", "invalid_request_error")
        except RequestError as exc:
            return _error(400, str(exc), "invalid_request_error")


def build_app(
    bundle: str,
    name: str,
    token_hashes: list[str],
    *,
    replicas: int = 1,
    autoscale: tuple[int, int] | None = None,
    cpus_per_replica: float = 1.0,
    gpus_per_replica: float = 0.0,
    max_ongoing_requests: int = 8,
    max_queued_requests: int = 256,
    cache_mib: int = 1024,
    debug: bool = False,
) -> Any:
    """Return the bound Serve application of the pool (pass it to `serve.run`)."""
    engine_config = EngineConfig(
        device="cuda" if gpus_per_replica > 0 else "cpu",
        threads=max(1, round(cpus_per_replica)),
        cache_entries=64,
        cache_bytes=cache_mib << 20,
    )
    scaling: dict[str, Any] = {"num_replicas": replicas}
    if autoscale is not None:
        low, high = autoscale
        scaling = {
            "autoscaling_config": {
                "min_replicas": low,
                "max_replicas": high,
                "target_ongoing_requests": max(1, max_ongoing_requests // 2),
            }
        }
    deployment = PoolReplica.options(  # type: ignore[attr-defined]
        **scaling,
        ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica},
        max_ongoing_requests=max_ongoing_requests,
        max_queued_requests=max_queued_requests,  # past it, the proxy answers 503
        request_router_config=RequestRouterConfig(
            request_router_class=ROUTER_PATH, request_router_kwargs={"num_fallback_replicas": 0}
        ),
    )
    return deployment.bind(str(bundle), name, list(token_hashes), engine_config, debug)


def app_builder(args: dict[str, str]) -> Any:
    """Build the pool from `serve run`/KubeRay arguments (bundle, token_file, replicas...)."""
    from pathlib import Path

    from jpilot.model.serve.cli import parse_autoscale, read_token_hashes, resolve

    folder = resolve(args.get("bundle"))
    if not args.get("token_file"):  # Serve's HTTP options, not this app, choose the host here
        raise ModelError("the pool needs token_file=FILE (bearer tokens, one a line) here")
    return build_app(
        str(folder),
        args.get("name") or folder.name,
        read_token_hashes(Path(args["token_file"])),
        replicas=int(args.get("replicas", 1)),
        autoscale=parse_autoscale(args["autoscale"]) if args.get("autoscale") else None,
        cpus_per_replica=float(args.get("cpus_per_replica", 1)),
        gpus_per_replica=float(args.get("gpus_per_replica", 0)),
        max_ongoing_requests=int(args.get("max_ongoing_requests", 8)),
        cache_mib=int(args.get("cache_mib", 1024)),
    )
