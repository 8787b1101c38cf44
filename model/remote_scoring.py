"""Score tokens on a pool: RemoteEngine's score_detail and score_variants, through echo.

Each scored window or variant is one POST /v1/completions with `echo`, `logprobs` 1 and
`max_tokens` 0; its text is the tokens' own bytes. The answer is used only when the
pool's tokens are exactly the ids asked about (jpilot's `token_ids`, or the token strings)
and it names the top choice at each position; otherwise `Unsupported` is raised and the
hints stay off. Windows and cut contexts follow model/scoring.py, so the numbers match
the local engine's on the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from jpilot.model import openai_wire as wire
from jpilot.model.engine import CancelledError, CancelToken, variant_context_begin
from jpilot.model.scoring import Scored, check_cuts, windows

if TYPE_CHECKING:
    from jpilot.model.remote import RemoteEngine


class Unsupported(CancelledError):
    """Raised by scoring when the pool cannot give exact log-probabilities of these ids.

    A CancelledError, so a caller that gives up on cancelled scoring gives up on this too.
    """


def score_detail(remote: RemoteEngine, ids: Sequence[int], cancel: CancelToken | None) -> Scored:
    """Score every token after the first, with the model's top choice, in windows."""
    ids = list(ids)
    logp, top, top_logp = (np.zeros(max(len(ids) - 1, 0)) for _ in range(3))
    for begin, done, end in windows(len(ids), remote.n_positions):
        echoed = echo(remote, ids[begin:end], cancel)
        for t in range(done, end):
            logp[t - 1], top[t - 1], top_logp[t - 1] = echoed[t - begin]
    return Scored(logp, top.astype(np.int64), top_logp)


def score_variants(
    remote: RemoteEngine,
    ids: Sequence[int],
    cuts: Sequence[tuple[int, Sequence[Sequence[int]]]],
    cancel: CancelToken | None,
) -> list[list[float]]:
    """Return, per (cut, variants), each variant's log-probability (nats) after ids[:cut]."""
    ids = list(ids)
    if not cuts:
        return []
    longest = check_cuts(ids, cuts, remote.n_positions)
    out: list[list[float]] = []
    for cut, variants in cuts:
        begin = variant_context_begin(cut, remote.n_positions, longest)
        out.append([])
        for variant in variants:
            echoed = echo(remote, [*ids[begin:cut], *variant], cancel)
            out[-1].append(float(sum(lp for lp, _b, _l in echoed[cut - begin :])))
    return out


def echo(
    remote: RemoteEngine, ids: list[int], cancel: CancelToken | None
) -> list[tuple[float, int, float]]:
    """Return per token (log p, top id, top log p) of `ids` as the pool scores them."""
    if not remote.exact:
        raise Unsupported("scoring needs the pool's own tokenizer; this server has none")
    text = remote.text_bytes(ids).decode("utf-8", errors="replace")
    if remote.guard(text) != text:
        raise Unsupported("text with secrets in it is not scored on the pool")
    body = {"model": remote.model, "prompt": text, "max_tokens": 0, "echo": True,
            "logprobs": 1, "temperature": 0.0}  # fmt: skip
    value, reason = remote.call(remote.post(body), cancel, None)
    if reason is not None:
        raise CancelledError("scoring was cancelled")
    if isinstance(value, wire.PoolError):
        remote.fault(str(value))
        raise Unsupported(str(value))
    try:
        return wire.echoed_scores(value, ids, remote.tokenizer)
    except ValueError as exc:
        raise Unsupported(f"the pool's log-probabilities do not fit: {exc}") from exc
