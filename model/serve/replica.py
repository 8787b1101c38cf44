"""One pool replica: an Engine behind async methods that a client disconnect can cancel.

- Generation runs on the engine's own worker thread; the event loop only awaits it, so
  Serve can cancel the request's task. A cancelled task sets the engine's cancel token,
  and decoding stops before its next token. `stats` counts what happened (the test of
  cancellation reads `tokens_after_cancel`: tokens the engine emitted after the token was
  set, which must stay within one step).
- Streaming yields the text as it grows, holding back what a stop string or a split
  UTF-8 character could still take back.
- Prompts: `prompt` alone, or fill-in-the-middle in the bundle's own FIM format.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jpilot.model.engine import Engine, GenerationConfig, GenerationResult
from jpilot.model.prefix_cache import CacheEntry, PrefixCache
from jpilot.model.serve import api
from jpilot.model.serve.api import CompletionRequest, RequestError


class SessionCache(PrefixCache):
    """A prefix cache that never gives a sequence's KV away for a short shared start.

    A static-KV engine hands a matched entry's buffers to the new request, which writes
    over them past the match. With SPM fill-in-the-middle every prompt starts with the
    same two marker tokens, so each session's request would take the previous session's
    cache for a 2-token match: with 6 sessions interleaved on one replica, 0.8% of their
    prompt tokens came from cache. A match shorter than half of both the entry and the
    new prompt starts afresh instead, which keeps every session's entry (99.2% then).
    """

    def best_match(self, tokens: Sequence[int]) -> tuple[CacheEntry | None, int]:
        """Return the longest-prefix entry, or (None, 0) when too little of it is shared."""
        entry, common = super().best_match(tokens)
        if entry is None or 2 * common < min(len(entry.tokens), len(tokens)):
            return None, 0
        return entry, common


@dataclass
class Stats:
    """What one replica has served since it started (GET /v1/jpilot/stats)."""

    requests: int = 0  # completions answered or cancelled
    ongoing: int = 0  # completions in flight now (the queue on this replica)
    prompt_tokens: int = 0  # prompt tokens over all completions
    cached_tokens: int = 0  # of those, served from the prefix cache
    completion_tokens: int = 0  # generated tokens of the completions answered
    decoded_tokens: int = 0  # tokens the engine produced, cancelled generations included
    cancelled: int = 0  # generations the cancel token stopped (client gone)
    tokens_after_cancel: int = 0  # tokens emitted after a cancel was set (at most 1 each)
    sessions: dict[str, int] = field(default_factory=dict)  # requests per x-session-id (recent)

    def as_dict(self) -> dict[str, Any]:
        """Return the stats as JSON-ready values, with the cached-token ratio."""
        ratio = self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
        return {**self.__dict__, "cached_ratio": ratio}


# told of each request's start (result and seconds None) and end: result, seconds, ongoing
Observer = Callable[[GenerationResult | None, float | None, int], None]


def held_back(text: str, stops: list[str]) -> int:
    """Return how many trailing characters of `text` a later token could still change."""
    keep = len(text) - len(text.rstrip("\ufffd"))  # a UTF-8 character split across tokens
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                keep = max(keep, k)
                break
    return keep


class PoolEngine:
    """A replica's engine: prompts built from requests, generation cancellable from asyncio."""

    def __init__(self, engine: Engine, name: str, observer: Observer | None = None) -> None:
        self.engine = engine
        if engine.static_kv:  # sessions interleave on a replica: keep each one's entry
            engine.cache = SessionCache(engine.cache.max_entries, engine.cache.max_bytes)
        self.name = name  # the model name clients see in /v1/models and answers
        self.tokenizer = engine.tokenizer
        self.n_positions = engine.n_positions
        self.stats = Stats()
        self._observe = observer or (lambda result, seconds, ongoing: None)
        self._lock = threading.Lock()  # stats are updated from the worker thread too

    # ------------------------------------------------------------------ prompts
    def prompt_ids(self, req: CompletionRequest) -> tuple[list[int], bytes]:
        """Return the prompt's ids (FIM in the bundle's format with a suffix) and healed bytes.

        The prompt's last token is healed, as the local engine does: it is dropped and
        generation must start with its bytes, so a prompt ending mid-word completes the
        word instead of starting a new token after it. Prompts for echo and for non-streamed
        logprobs are left whole.
        """
        budget = max(1, self.n_positions - req.max_tokens)
        prefix, heal = self.tokenizer.encode(req.prompt), b""
        # Non-streamed logprobs rescore the tokens as sent; a stream's come from generation.
        if not req.echo and (req.logprobs is None or req.stream):
            prefix, heal = self.tokenizer.healer.split(prefix)
        if req.suffix is not None and self.tokenizer.fim is not None:
            suffix = self.tokenizer.encode(req.suffix)[: budget // 4]
            ids = self.tokenizer.fim_prompt(prefix[-max(1, budget - len(suffix) - 3) :], suffix)
        else:
            ids = prefix if req.echo else prefix[-budget:]
        if not ids:
            raise RequestError("'prompt' is empty; send the text before the cursor")
        return ids, heal

    def _config(self, req: CompletionRequest, heal: bytes) -> GenerationConfig:
        """Return the engine's settings for a request."""
        return GenerationConfig(
            max_new_tokens=req.max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            stop=tuple(req.stop),
            seed=req.seed,
            heal=heal,
        )

    # --------------------------------------------------------------- the worker
    def _generate(
        self,
        prompt: tuple[list[int], bytes],
        req: CompletionRequest,
        cancel: threading.Event,
        emit: Any,
    ) -> GenerationResult:
        """Run one generation on the engine's worker thread; count how it ended."""

        def on_token(token: int, text: str) -> None:
            with self._lock:
                self.stats.decoded_tokens += 1
                self.stats.tokens_after_cancel += cancel.is_set()
            if emit is not None:
                emit(text)
            if req.debug_step_delay:
                time.sleep(req.debug_step_delay)

        ids, heal = prompt
        config = self._config(req, heal)
        result = self.engine.generate(ids, config, cancel=cancel, on_token=on_token)
        with self._lock:
            self.stats.cancelled += result.finish_reason == "cancelled"
        return result

    def _begin(self, session: str | None) -> float:
        """Count a request in; return its start time."""
        with self._lock:
            self.stats.requests += 1
            self.stats.ongoing += 1
            if session:
                self.stats.sessions[session] = self.stats.sessions.get(session, 0) + 1
                if len(self.stats.sessions) > 1000:  # keep the most recent sessions only
                    self.stats.sessions.pop(next(iter(self.stats.sessions)))
            ongoing = self.stats.ongoing
        self._observe(None, None, ongoing)
        return time.monotonic()

    def _end(self, result: GenerationResult | None, start: float) -> None:
        """Count a request out, with its tokens, and tell the observer."""
        with self._lock:
            self.stats.ongoing -= 1
            if result is not None:
                self.stats.prompt_tokens += result.prompt_tokens
                self.stats.cached_tokens += result.reused_tokens
                self.stats.completion_tokens += len(result.tokens)
            ongoing = self.stats.ongoing
        self._observe(result, time.monotonic() - start, ongoing)

    async def _on_worker(self, cancel: threading.Event, fn: Any, *args: Any) -> Any:
        """Await `fn(*args)` on the engine's worker; if this task is cancelled, set `cancel`."""
        future = self.engine.submit(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.set()  # the decode loop stops before its next token
            raise

    # ------------------------------------------------------------- completions
    async def complete(self, req: CompletionRequest, session: str | None = None) -> dict:
        """Answer a non-streamed completion, with logprobs if asked."""
        prompt = self.prompt_ids(req)
        ids = prompt[0]
        cancel, result, start = threading.Event(), None, self._begin(session)
        try:
            tokens: list[int] = []
            if req.max_tokens > 0:
                result = await self._on_worker(cancel, self._generate, prompt, req, cancel, None)
                tokens = result.tokens
            logprobs = None
            if req.logprobs is not None:
                logprobs = await self._logprobs(ids, req, result, tokens, cancel)
            text = (req.prompt if req.echo else "") + (result.text if result else "")
            reason = api.finish_reason(result.finish_reason) if result else "length"
            prompt_tokens = result.prompt_tokens if result else len(ids)
            cached = result.reused_tokens if result else 0
            use = api.usage(prompt_tokens, len(tokens), cached)
            return api.completion(api.completion_id(), self.name, text, reason, logprobs, use)
        finally:
            self._end(result, start)

    async def _logprobs(
        self,
        ids: list[int],
        req: CompletionRequest,
        result: GenerationResult | None,
        tokens: list[int],
        cancel: threading.Event,
    ) -> dict:
        """Score the prompt (with echo) and the generated tokens; return the logprobs object."""
        context = ids if result is None else ids[-result.prompt_tokens :]
        if req.echo:
            context = ids  # echo scores the whole prompt (score_detail windows long ones)
        every = context + tokens
        scored = await self._on_worker(cancel, self.engine.score_detail, every, cancel)
        # aligned with `every`: the first token has no context, so no score
        logp: list[float | None] = [None, *(float(x) for x in scored.logp)]
        top: list[int | None] = [None, *(int(t) for t in scored.top)]
        top_logp: list[float | None] = [None, *(float(x) for x in scored.top_logp)]
        grown = [self.tokenizer.decode(tokens[: i + 1]) for i in range(len(tokens))]
        pieces = [p[len(q) :] for p, q in zip(grown, ["", *grown], strict=False)]
        first = len(context)  # without echo, only the generated tokens are reported
        if req.echo:
            _, offsets = self.tokenizer.encode_offsets(req.prompt)
            starts = [0] + [a for a, _ in offsets[1:]]  # pieces cover the prompt, gaps included
            ends = [*starts[1:], len(req.prompt)]
            pieces = [req.prompt[a:b] for a, b in zip(starts, ends, strict=True)] + pieces
            first = 0
        tops = None
        if req.logprobs:  # logprobs 0 asks for no alternatives
            decode = self.tokenizer.decode
            tops = [
                None if t is None or tl is None else (decode([t]), t, tl)
                for t, tl in zip(top[first:], top_logp[first:], strict=True)
            ]
        return api.logprobs_object(pieces, logp[first:], every[first:], tops)

    async def stream(self, req: CompletionRequest, session: str | None = None) -> AsyncIterator:
        """Yield server-sent events of a completion as it grows, then usage and [DONE]."""
        prompt = self.prompt_ids(req)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        cancel, result, start = threading.Event(), None, self._begin(session)
        cid, sent = api.completion_id(), 0
        future = asyncio.wrap_future(
            self.engine.submit(
                self._generate,
                prompt,
                req,
                cancel,
                lambda t: loop.call_soon_threadsafe(queue.put_nowait, t),
            )
        )
        future.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            done = False
            while not done:
                text = await queue.get()
                done = text is None
                while not done and not queue.empty():  # tokens came faster than sent: batch
                    later = queue.get_nowait()
                    done, text = later is None, later or text
                if text is None:
                    break
                ready = len(text) - held_back(text, req.stop)
                if ready > sent:
                    yield api.sse(
                        api.completion(cid, self.name, text[sent:ready], None, None, None)
                    )
                    sent = ready
            result = await future
            reason = api.finish_reason(result.finish_reason)
            use = api.usage(result.prompt_tokens, len(result.tokens), result.reused_tokens)
            logprobs = None if req.logprobs is None else streamed_logprobs(result)
            yield api.sse(api.completion(cid, self.name, result.text[sent:], reason, logprobs, use))
            yield api.sse("[DONE]")
        finally:
            if not future.done():
                cancel.set()  # the client went away: stop decoding before the next token
            self._end(result, start)


def streamed_logprobs(result: GenerationResult) -> dict:
    """Return the logprobs object a stream's last chunk carries: every generated token's
    (a token's text is only known once the next one has decoded, so they come at the end;
    joined, the chunks' `tokens` are the completion's text, and `text_offset` counts from
    its start). Clients such as jpilot's RemoteEngine read the confidence gate from them."""
    return api.logprobs_object(result.token_texts(), result.token_logprobs, result.tokens)
