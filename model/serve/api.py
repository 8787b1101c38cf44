"""The pool's OpenAI-compatible completions API: parse a request, shape its answers.

Pure helpers with no Ray, FastAPI or engine import, so they are unit-tested alone. The
contract both pool sides keep (fields, defaults, extensions) is in docs/POOL.md.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class RequestError(ValueError):
    """A request the pool answers with 400; the message says which field is wrong."""


@dataclass
class CompletionRequest:
    """One POST /v1/completions body, checked; defaults are OpenAI's."""

    prompt: str  # the text before the cursor (a list holding one string is accepted)
    suffix: str | None = None  # the text after it: fill-in-the-middle when the bundle has FIM
    max_tokens: int = 16  # tokens to generate at most; 0 only with echo
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0  # nucleus mass when sampling
    stop: list[str] = field(default_factory=list)  # the text ends before the first of these
    stream: bool = False  # answer as server-sent events
    logprobs: int | None = None  # set: per-token log-probabilities (natural log)
    echo: bool = False  # the prompt's own tokens come first in text and logprobs
    seed: int | None = None  # sampling seed
    debug_step_delay: float = 0.0  # (debug pools only) seconds slept after each token


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    """Return body[name] as a float in [low, high], or the default when absent or null."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise RequestError(f"'{name}' must be a number from {low} to {high}, got {value!r}")
    return float(value)


def parse_request(body: Any, max_tokens_cap: int, debug: bool = False) -> CompletionRequest:
    """Check a decoded JSON body and return the request it asks for; raise RequestError."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object with at least 'prompt'")
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise RequestError("'prompt' must be a string (or a list holding one string)")
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise RequestError("'suffix' must be a string or null")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise RequestError("'stop' must be a string or a list of non-empty strings")
    if body.get("n", 1) not in (1, None):
        raise RequestError("'n' must be 1: the pool returns one choice")
    logprobs = body.get("logprobs")
    if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int)):
        raise RequestError("'logprobs' must be an integer or null")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("'seed' must be an integer or null")
    request = CompletionRequest(
        prompt=prompt,
        suffix=suffix,
        max_tokens=int(_number(body, "max_tokens", 16, 0, max_tokens_cap)),
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        stop=stop,
        stream=bool(body.get("stream", False)),
        logprobs=logprobs,
        echo=bool(body.get("echo", False)),
        seed=seed,
        debug_step_delay=_number(body, "jpilot_debug_step_delay", 0.0, 0.0, 1.0) if debug else 0,
    )
    if request.echo and request.suffix is not None:
        raise RequestError("'echo' cannot be combined with 'suffix'")
    if request.stream and request.echo:
        raise RequestError("'echo' is not supported with 'stream'")
    if request.stream and request.logprobs:
        raise RequestError("'stream' carries the chosen tokens' logprobs only: 'logprobs' 0")
    if request.max_tokens == 0 and not request.echo:
        raise RequestError("'max_tokens' must be at least 1 (0 only with 'echo')")
    return request


def hash_token(token: str) -> str:
    """Return the sha256 hex digest the pool keeps of a bearer token."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def finish_reason(engine_reason: str) -> str:
    """Map the engine's stop reason to OpenAI's: "length" when the cap hit, else "stop"."""
    return "length" if engine_reason == "length" else "stop"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict:
    """Return the usage object, with the prompt tokens the prefix cache served."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def completion_id() -> str:
    """Return a fresh completion id."""
    return f"cmpl-{uuid.uuid4().hex[:24]}"


def completion(
    cid: str, model: str, text: str, reason: str | None, logprobs: dict | None, use: dict | None
) -> dict:
    """Return one completion object (a whole answer, or one streamed chunk)."""
    body: dict[str, Any] = {
        "id": cid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": reason, "logprobs": logprobs}],
    }
    if use is not None:
        body["usage"] = use
    return body


def sse(data: dict | str) -> bytes:
    """Return one server-sent event carrying a JSON object, or the literal [DONE]."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


def logprobs_object(
    pieces: Sequence[str],
    token_logprobs: Sequence[float | None],
    token_ids: Sequence[int],
    tops: Sequence[tuple[str, int, float] | None] | None = None,
) -> dict:
    """Return OpenAI's logprobs object for tokens whose texts are `pieces`.

    `tops` gives, per token, the model's likeliest token there (text, id, log p), or None.
    """
    offsets, at = [], 0
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    body: dict[str, Any] = {
        "tokens": list(pieces),
        "token_logprobs": [None if lp is None else float(lp) for lp in token_logprobs],
        "text_offset": offsets,
        "top_logprobs": None,
        "token_ids": [int(t) for t in token_ids],  # (ext) for clients with the tokenizer
    }
    if tops is not None:  # the likeliest token first, then the actual one, as OpenAI does
        body["top_logprobs"] = [
            None if top is None or lp is None else {top[0]: top[2], piece: lp}
            for top, piece, lp in zip(tops, pieces, token_logprobs, strict=True)
        ]
        body["top_token_ids"] = [None if top is None else top[1] for top in tops]  # (ext)
    return body


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    """Return OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def model_card(name: str, manifest: Any, created: int) -> dict:
    """Return the /v1/models entry of the bundle the pool serves."""
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "jpilot",
        "jpilot": {
            "n_positions": manifest.n_positions,
            "fim": bool(manifest.fim),
            "architecture": manifest.architecture,
            "dtype": manifest.dtype,
            # what `jpilot model eval --abilities` measured; clients gate features on it
            "abilities": dict(getattr(manifest, "abilities", None) or {}),
        },
    }
