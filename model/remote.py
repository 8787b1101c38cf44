"""A remote engine: the Engine interface, served by an OpenAI-compatible completions pool.

The LSP holds either an `Engine` or a `RemoteEngine`; plugins cannot tell which. The
remote one keeps a local tokenizer (the pool's own from `GET /v1/jpilot/tokenizer`, else
the embedded default model's, an approximation for budgeting against third-party
servers), so prompts are still built and budgeted locally. `generate()` turns the prompt
ids back into text: a fill-in-the-middle prompt becomes `prompt` (the prefix, with the
token-healing bytes put back) and `suffix`; anything else is sent as `prompt` alone. The
server formats FIM its own way. Only that text, the model name, the sampling settings and
the session id (`x-session-id`, a hash of user and document) leave the machine.

- Streaming: server-sent events over httpx, on an event loop thread of its own. The
  caller's cancel token and the deadline are polled every POLL_S; either one closes the
  stream, so the pool sees the disconnect and stops decoding.
- Faults (pool down, 401, 5xx, garbage, too slow): an empty result (finish_reason
  "error"), `last_error` says why in one line and `on_error` is called; the next request
  tries again. Nothing raises out of generate() but ValueError for an empty prompt.
- Scoring (`score_detail`, `score_variants`, for the hints) asks for `echo` + `logprobs`
  with `max_tokens` 0, and is used only where the pool's tokens are the local tokenizer's
  own ids; otherwise it raises `Unsupported` and the hints stay off (`features()`).
The wire format is in model/openai_wire.py.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jpilot.model import openai_wire as wire
from jpilot.model import remote_scoring
from jpilot.model.decode import line_confidence
from jpilot.model.engine import CancelToken, GenerationConfig, GenerationResult
from jpilot.model.pool_tokenizer import fallback_tokenizer, tokenizer_from
from jpilot.model.remote_scoring import Unsupported as Unsupported  # re-exported
from jpilot.model.scoring import ScoringMixin

log = logging.getLogger(__name__)

POLL_S = 0.01  # how often a waiting call looks at its cancel token and deadline
CONNECT_S = 3.0  # TCP connect timeout
READ_S = 30.0  # the longest silence on an open connection (calls without a deadline)
HANDSHAKE_S = 5.0  # bound on learning the model and tokenizer at load
RETRY_S = 5.0  # a failed handshake is retried (before a completion) at most this often
THIRD_PARTY_POSITIONS = 2048  # assumed context of a server that does not say (GPT-J/CodeGen)


def session_id(uri: str, user: str | None = None) -> str:
    """Return the x-session-id of a document: sha256(user + uri), 16 hex digits."""
    if user is None:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no login name in the environment or passwd
            user = ""
    return hashlib.sha256((user + uri).encode("utf-8")).hexdigest()[:16]


@dataclass
class RemoteManifest:
    """The part of a bundle manifest callers read."""

    n_positions: int
    abilities: dict[str, float] = field(default_factory=dict)  # as the pool reports them


@dataclass
class RemoteBundle:
    """Stands in for Bundle: where the model is, and its context size."""

    path: str
    manifest: RemoteManifest


@dataclass
class CacheStats:
    """Prefix-cache counters as the pool reports them (usage.cached_tokens)."""

    hits: int = 0  # completions with cached prompt tokens
    misses: int = 0  # completions with none


@dataclass
class _Run:
    """One streamed completion as it arrives."""

    text: str = ""
    first_at: float = 0.0
    finish: str = ""  # the server's finish_reason, or "stop"/"callback" cut locally
    usage: dict[str, Any] = field(default_factory=dict)
    replica: str = ""
    pieces: list[str] = field(default_factory=list)  # the tokens' texts, when logprobs came
    logprobs: list[float] = field(default_factory=list)  # and their log-probabilities

    def confidence(self) -> float | None:
        """Return the first line's confidence (as the local engine's) from the streamed
        logprobs, or None if the server sent none or they do not spell the text."""
        if not self.logprobs or not "".join(self.pieces).startswith(self.text):
            return None
        ends = list(itertools.accumulate(len(p) for p in self.pieces))
        return line_confidence(self.text, ends, self.logprobs)


class RemoteEngine(ScoringMixin):
    """Generate and score through an OpenAI-compatible /v1/completions server."""

    scorer = remote_scoring  # score_detail and score_variants through echo (ScoringMixin)

    remote = True

    def __init__(
        self,
        url: str,
        token: str = "",
        model: str = "",
        fallback_tokenizer_dir: Path | None = None,
        guard: Callable[[str], str] | None = None,
        on_error: Callable[[str], None] | None = None,
        token_env: str = "JPILOT_TOKEN",
        transport: httpx.AsyncBaseTransport | None = None,  # tests: httpx.MockTransport
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.token_env = token_env
        self._has_token = bool(token)
        self.guard = guard or (lambda text: text)  # scrubs text before it leaves
        self.on_error = on_error
        self.last_error: str | None = None
        self.exact = False  # the tokenizer is the pool's own
        self.fim = True  # send `suffix` (False: the pool's model has no FIM)
        self.replica = ""  # x-jpilot-replica of the last answer
        self.requests = self.failures = 0
        self.cache = CacheStats()
        self._tried = -1e9  # when the last handshake started
        self._handshaken = False
        self.tokenizer = fallback_tokenizer(fallback_tokenizer_dir)
        self.bundle = RemoteBundle(self.url, RemoteManifest(THIRD_PARTY_POSITIONS))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.name = "jpilot-remote-io"
        self._thread.start()
        timeout = httpx.Timeout(READ_S, connect=CONNECT_S)
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jpilot-engine")

    @property
    def n_positions(self) -> int:
        """Return the model's context size (the pool's, or THIRD_PARTY_POSITIONS)."""
        return self.bundle.manifest.n_positions

    @property
    def healer(self):
        """Return the token-healing index of the local tokenizer."""
        return self.tokenizer.healer

    # --------------------------------------------------------------------- handshake
    def connect(self, timeout: float = HANDSHAKE_S) -> bool:
        """Learn the model name, context size and tokenizer from the pool; True if it answered."""
        self._tried = time.monotonic()
        value, late = self.call(self._handshake(), None, time.monotonic() + timeout)
        if late:
            value = wire.PoolError(f"the pool at {self.url} did not answer within {timeout:.0f} s")
        if isinstance(value, wire.PoolError):
            self.fault(str(value))
            return False
        self._handshaken = True
        return True

    async def _handshake(self) -> None:
        """GET /models, then the (ext) tokenizer; keep the fallback tokenizer without it."""
        try:
            await self._learn()
        except httpx.HTTPError as exc:
            raise wire.PoolError(wire.transport_problem(exc, self.url)) from exc

    async def _learn(self) -> None:
        """Read the model entry and the tokenizer (raises httpx errors and PoolError)."""
        models = await self._get_json("/models")
        entry = wire.pick_model(models, self.model)
        self.model = self.model or entry.get("id", "")
        ext = entry.get("jpilot") if isinstance(entry.get("jpilot"), dict) else {}
        response = await self._client.get("/jpilot/tokenizer")
        if response.status_code == 200:
            self.tokenizer = tokenizer_from(response.content, ext.get("fim", True))
            self.exact, self.fim = True, bool(ext.get("fim", True))
        elif response.status_code == 401:
            raise wire.PoolError(wire.http_problem(response, self._token_hint()))
        if isinstance(ext.get("n_positions"), int):
            self.bundle.manifest.n_positions = ext["n_positions"]
        if isinstance(ext.get("abilities"), dict):  # measured by `jpilot model eval`
            self.bundle.manifest.abilities = dict(ext["abilities"])

    async def _get_json(self, path: str) -> Any:
        """GET a JSON document; raise PoolError with a one-line reason."""
        response = await self._client.get(path)
        if response.status_code != 200:
            raise wire.PoolError(wire.http_problem(response, self._token_hint()))
        try:
            return response.json()
        except ValueError as exc:
            raise wire.PoolError(f"the pool at {self.url} sent malformed JSON for {path}") from exc

    def _token_hint(self) -> str:
        """Return how to fix a refused token."""
        if not self._has_token:
            return f"no token was sent: set the environment variable {self.token_env}"
        return f"the token in ${self.token_env} was refused; ask for one in the pool's token file"

    # ---------------------------------------------------------------------- generate
    def generate(
        self,
        prompt: Sequence[int],
        config: GenerationConfig | None = None,
        cancel: CancelToken | None = None,
        on_token: Callable[[int, str], bool | None] | None = None,
    ) -> GenerationResult:
        """Generate a continuation of `prompt` ids on the pool; see the module docstring."""
        cfg = config or GenerationConfig()
        if not prompt:
            raise ValueError("generate() needs at least one prompt token")
        t0 = time.monotonic()
        prefix, suffix = self.prompt_text(list(prompt), cfg.heal)
        body: dict[str, Any] = {
            "model": self.model, "prompt": self.guard(prefix), "max_tokens": cfg.max_new_tokens,
            "temperature": cfg.temperature, "top_p": cfg.top_p, "stream": True,
        }  # fmt: skip
        if suffix is not None and self.fim:
            body["suffix"] = self.guard(suffix)
        if self.exact:  # a jpilot pool: the chosen tokens' logprobs, for the confidence gate
            body["logprobs"] = 0
        if cfg.stop:
            body["stop"] = list(cfg.stop)
        headers = {"x-session-id": cfg.session} if getattr(cfg, "session", "") else {}
        run = _Run()
        self.requests += 1
        outcome, reason = self.call(
            self._stream(body, headers, run, cfg.stop, on_token, t0), cancel, cfg.deadline
        )
        if isinstance(outcome, wire.PoolError):
            self.fault(str(outcome))
            run.text, reason = "", "error"
        elif reason == "deadline" and not run.text:  # silent, or only heartbeats (queued)
            self.fault(
                f"the pool at {self.url} sent nothing before the deadline "
                "(completion.timeoutMs, docs.timeoutMs or hints.timeoutMs)"
            )
        elif reason is None or run.first_at:  # the pool answered
            self.last_error = None
        cached = wire.cached_tokens(run.usage)
        if reason is None:
            self.cache.hits += cached > 0
            self.cache.misses += cached == 0
        elapsed = time.monotonic() - t0
        return GenerationResult(
            tokens=self.tokenizer.encode(run.text) if run.text else [],
            text=run.text,
            finish_reason=reason or wire.finish_reason(run.finish),
            prompt_tokens=int(run.usage.get("prompt_tokens") or 0),
            reused_tokens=cached,
            time_to_first_token=run.first_at - t0 if run.first_at else 0.0,
            elapsed=elapsed,
            timings={"remote": elapsed},
            confidence=run.confidence(),
        )

    def prompt_text(self, ids: list[int], heal: bytes = b"") -> tuple[str, str | None]:
        """Split prompt ids into prefix text (healing bytes put back) and suffix (None: no FIM)."""
        f = self.tokenizer.fim
        suffix_ids: list[int] | None = None
        if f is not None and ids and ids[0] == f.prefix and f.suffix in ids and f.middle in ids:
            s, m = ids.index(f.suffix), ids.index(f.middle)
            if f.order == "spm":  # <pre> <suf> S <mid> P
                suffix_ids, ids = ids[s + 1 : m], ids[m + 1 :]
            else:  # <pre> P <suf> S <mid>
                suffix_ids, ids = ids[s + 1 : m], ids[1:s]
        prefix = (self.text_bytes(ids) + heal).decode("utf-8", errors="replace")
        suffix = (
            None if suffix_ids is None else self.text_bytes(suffix_ids).decode("utf-8", "replace")
        )
        return prefix, suffix

    def text_bytes(self, ids: Sequence[int]) -> bytes:
        """Return the bytes of plain-text tokens (special and virtual ids are dropped)."""
        table = self.tokenizer.healer.token_bytes
        return b"".join(table[i] or b"" for i in ids if 0 <= i < len(table))

    async def _stream(
        self,
        body: dict[str, Any],
        headers: dict[str, str],
        run: _Run,
        stops: Sequence[str],
        on_token: Callable[[int, str], bool | None] | None,
        t0: float,
    ) -> None:
        """POST a streamed completion and fill `run` until [DONE] (raises PoolError)."""
        try:
            async with self._client.stream(
                "POST", "/completions", json=body, headers=headers
            ) as response:
                run.replica = self.replica = response.headers.get("x-jpilot-replica", "")
                if response.status_code != 200:
                    await response.aread()
                    raise wire.PoolError(wire.http_problem(response, self._token_hint()))
                async for chunk in wire.chunks(response):
                    run.first_at = run.first_at or time.monotonic()
                    text, finish, usage = wire.choice_of(chunk)
                    pieces, logprobs = wire.token_logprobs(chunk)
                    run.pieces += pieces
                    run.logprobs += logprobs
                    run.usage = usage or run.usage
                    run.finish = finish or run.finish
                    run.text, stopped = wire.cut_at_stops(run.text + text, stops)
                    if stopped:
                        run.finish = "stop"
                        return
                    if on_token is not None and text and on_token(-1, run.text) is False:
                        run.finish = "callback"
                        return
        except httpx.HTTPError as exc:
            raise wire.PoolError(wire.transport_problem(exc, self.url)) from exc

    async def post(self, body: dict[str, Any]) -> Any:
        """POST a non-streamed completion; return its JSON (raises PoolError)."""
        try:
            response = await self._client.post("/completions", json=body)
            if response.status_code != 200:
                raise wire.PoolError(wire.http_problem(response, self._token_hint()))
            return response.json()
        except httpx.HTTPError as exc:
            raise wire.PoolError(wire.transport_problem(exc, self.url)) from exc
        except ValueError as exc:
            raise wire.PoolError(f"the pool at {self.url} sent malformed JSON") from exc

    # ---------------------------------------------------------------- the io thread
    def call(
        self, coro: Coroutine[Any, Any, Any], cancel: CancelToken | None, deadline: float | None
    ) -> tuple[Any, str | None]:
        """Run `coro` on the io loop; return (value or PoolError, "cancelled"/"deadline"/None)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        while True:
            try:
                return future.result(timeout=POLL_S), None
            except wire.PoolError as exc:
                return exc, None
            except FutureTimeout:
                pass
            except Exception as exc:  # a bug in parsing must not take the LSP down
                return wire.PoolError(f"the pool at {self.url}: {type(exc).__name__}: {exc}"), None
            stop = "cancelled" if cancel is not None and cancel.is_set() else None
            if stop is None and deadline is not None and time.monotonic() >= deadline:
                stop = "deadline"
            if stop:
                future.cancel()  # cancels the task: the connection is closed
                return None, stop

    def fault(self, message: str) -> None:
        """Record a failed call: last_error, the log and on_error."""
        self.failures += 1
        self.last_error = message
        log.info("%s", message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                log.exception("the error callback failed")

    # ------------------------------------------------------------- worker and status
    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run `fn(*args, **kwargs)` on the engine's worker thread (after a due handshake)."""
        return self._worker.submit(self._then, fn, args, kwargs)

    def _then(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """Retry a failed handshake at most every RETRY_S, then call `fn`."""
        if not self._handshaken and time.monotonic() - self._tried >= RETRY_S:
            self.connect(timeout=CONNECT_S)
        return fn(*args, **kwargs)

    def features(self) -> dict[str, str]:
        """Return where each model feature runs against this server, in words."""
        pool = f"on the pool ({self.url})"
        hints = pool if self.exact else "off (the server does not share its tokenizer)"
        tokenizer = "the pool's" if self.exact else "the default model's (approximate)"
        return {"completion": pool, "docs": pool, "hints": hints, "tokenizer": tokenizer}

    def status(self) -> dict[str, Any]:
        """Return the pool's state for jpilot.status."""
        return {"url": self.url, "model": self.model, "replica": self.replica,
                "requests": self.requests, "failures": self.failures,
                "error": self.last_error, "features": self.features()}  # fmt: skip

    def close(self) -> None:
        """Close the connections and stop the threads."""
        self._worker.shutdown(wait=False, cancel_futures=True)
        if self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop).result(2.0)
            except Exception:
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2.0)
