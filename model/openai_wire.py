"""The OpenAI completions wire format as model/remote.py reads it: SSE chunks, errors, echo.

Everything here turns a server's answer into plain values or a `PoolError` whose message
is one line that says what to fix. Fields read (docs/SERVER.md, "Using a pool"):
`choices[0].text`, `choices[0].finish_reason`, `usage.prompt_tokens`,
`usage.prompt_tokens_details.cached_tokens`, `choices[0].logprobs` (`tokens`,
`token_logprobs`, `top_logprobs`, and jpilot's `token_ids` where the server adds it) and
`error.message`; a stream ends with `data: [DONE]`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from jpilot.model.tokenizer import Tokenizer


class PoolError(Exception):
    """A completions server failed to answer; the message is one line saying why."""


def one_line(text: str, limit: int = 200) -> str:
    """Return `text` on one line, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def http_problem(response: httpx.Response, token_hint: str) -> str:
    """Describe a non-200 answer in one line (401: how to fix the token)."""
    url = str(response.request.url) if response.request is not None else "the pool"
    if response.status_code == 401:
        return f"the pool refused the request (401 at {url}): {token_hint}"
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else str(error or "")
    except (ValueError, AttributeError):
        message = response.text
    return one_line(f"the pool answered {response.status_code} at {url}: {message or '(no body)'}")


def transport_problem(exc: httpx.HTTPError, url: str) -> str:
    """Describe a connection-level failure in one line."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return one_line(
            f"the pool at {url} is not reachable ({exc or type(exc).__name__}); start it "
            "(`jpilot pool serve`) or fix the model.url setting"
        )
    if isinstance(exc, httpx.TimeoutException):
        return f"the pool at {url} stopped answering ({type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return one_line(f"the pool at {url} broke the connection ({exc})")
    return one_line(f"the pool at {url} failed: {type(exc).__name__}: {exc}")


def pick_model(models: Any, name: str) -> dict[str, Any]:
    """Return the /v1/models entry named `name`, or the first one when `name` is ""."""
    data = models.get("data") if isinstance(models, dict) else None
    if not isinstance(data, list):
        raise PoolError("the pool's /v1/models answer has no data list; is model.url a /v1 URL?")
    entries = [e for e in data if isinstance(e, dict)]
    for entry in entries:
        if not name or entry.get("id") == name:
            return entry
    return {"id": name}  # not listed: send the name anyway, the server decides


async def chunks(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Yield the JSON chunks of a server-sent-event stream up to [DONE] (or one JSON body)."""
    if "text/event-stream" not in response.headers.get("content-type", ""):
        body = await response.aread()  # a server that ignored stream=true
        yield _object(body.decode("utf-8", errors="replace"))
        return
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments, `event:` lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield _object(data)
    raise PoolError("the pool's stream ended before [DONE]")


def _object(data: str) -> dict[str, Any]:
    """Parse one chunk; raise PoolError for garbage or an error object."""
    try:
        value = json.loads(data)
    except ValueError:
        raise PoolError(one_line(f"the pool sent malformed JSON: {data[:80]!r}")) from None
    if not isinstance(value, dict):
        raise PoolError("the pool sent JSON that is not an object")
    if "error" in value:
        error = value["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise PoolError(one_line(f"the pool reported an error: {message}"))
    return value


def choice_of(chunk: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Return (new text, finish_reason or "", usage or {}) of a completion chunk."""
    try:
        choice = chunk["choices"][0] if chunk.get("choices") else {}
        text = choice.get("text") or ""
        finish = choice.get("finish_reason") or ""
        usage = chunk.get("usage") or {}
        if not isinstance(text, str) or not isinstance(finish, str) or not isinstance(usage, dict):
            raise TypeError(type(text).__name__)
    except (KeyError, IndexError, TypeError, AttributeError):
        raise PoolError("the pool sent a chunk that is not a text completion") from None
    return text, finish, usage


def token_logprobs(chunk: dict[str, Any]) -> tuple[list[str], list[float]]:
    """Return the (token texts, log-probabilities) a completion chunk carries, if any: the
    `logprobs` object's `tokens` and `token_logprobs` (a None or malformed entry: none)."""
    choices = chunk.get("choices")
    logprobs = choices[0].get("logprobs") if isinstance(choices, list) and choices else None
    if not isinstance(logprobs, dict):
        return [], []
    tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if not (isinstance(tokens, list) and isinstance(values, list) and len(tokens) == len(values)):
        return [], []
    if not all(isinstance(t, str) for t in tokens) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        return [], []
    return tokens, [float(v) for v in values]


def cut_at_stops(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string; return the text and whether one hit."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def finish_reason(server: str) -> str:
    """Map an OpenAI finish_reason to the engine's ("stop" covers eos and stop strings)."""
    return server or "stop"


def cached_tokens(usage: dict[str, Any]) -> int:
    """Return usage.prompt_tokens_details.cached_tokens, or 0."""
    details = usage.get("prompt_tokens_details")
    value = details.get("cached_tokens") if isinstance(details, dict) else 0
    return value if isinstance(value, int) else 0


def echoed_scores(
    value: Any, ids: list[int], tokenizer: Tokenizer
) -> list[tuple[float, int, float]]:
    """Per prompt token: (log p, top id, top log p) from an echo + logprobs answer.

    Raises ValueError unless the server's tokens are exactly `ids` and it gave the top
    choice at every position (`top_logprobs`).
    """
    try:
        lp = value["choices"][0]["logprobs"]
        tokens, logps, tops = lp["tokens"], lp["token_logprobs"], lp.get("top_logprobs")
    except (KeyError, IndexError, TypeError):
        raise ValueError("no choices[0].logprobs in the answer") from None
    given = lp.get("token_ids")
    if given is not None and list(given[: len(ids)]) != ids:
        raise ValueError("the pool tokenized the text differently")
    if given is None and [str(t) for t in tokens[: len(ids)]] != [
        tokenizer.decode([i]) for i in ids
    ]:
        raise ValueError("the server's tokens are not the local tokenizer's")
    if not isinstance(tops, list) or len(tops) < len(ids) or len(logps) < len(ids):
        raise ValueError("the answer has no top_logprobs for every token")
    top_ids = lp.get("top_token_ids")  # (ext) exact top choices, where the server adds them
    out = [(0.0, ids[0], 0.0)]  # the first token has no context, so no score
    for i in range(1, len(ids)):
        actual = float(logps[i])
        if isinstance(top_ids, list) and len(top_ids) > i and isinstance(top_ids[i], int):
            best_lp = max(float(next(iter(dict(tops[i] or {0: actual}).values()))), actual)
            out.append((actual, top_ids[i], best_lp))
            continue
        best, best_lp = max(dict(tops[i] or {}).items(), key=lambda kv: kv[1], default=("", actual))
        if best_lp <= actual or best == tokens[i]:
            out.append((actual, ids[i], actual))
            continue
        encoded = tokenizer.encode(best)
        out.append((actual, encoded[0] if encoded else ids[i], float(best_lp)))
    return out
