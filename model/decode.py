"""The parts of the engine's decode loop: its state, why it stops, drafts and branching.

- `Decoding` holds one request's loop state. Decoding stops before a token on a cancel
  token or a deadline (`stop_before`), and after one (`emit`) on eos, a stop string, the
  per-token callback returning False, or max tokens.
- `lookup_draft` guesses the next tokens by prompt lookup, for the engine to verify.
  Written by hand: ONNX Runtime has no speculative decoding.
- `best_start` chooses greedy decoding's first tokens by branching. Written by hand:
  ONNX Runtime has no beam search for this graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from jpilot.model.sampling import log_softmax
from jpilot.model.tokenizer import Tokenizer

if TYPE_CHECKING:
    from jpilot.model.engine import Engine, GenerationConfig


class CancelToken(Protocol):
    """Anything with `is_set()`, e.g. threading.Event; set it to stop generation."""

    def is_set(self) -> bool: ...


@dataclass
class Decoding:
    """One request's decode state: its KV cache, the logits rows not yet used, its output."""

    cfg: GenerationConfig  # what the request asked for
    prompt: list[int]  # the prompt ids, left-truncated to leave room for the output
    max_new: int  # tokens it may generate: cfg.max_new_tokens, or fewer where the context ends
    past: list[Any]  # the KV cache, one OrtValue per past_key_values input
    in_kv: list[int]  # the tokens whose keys/values `past` holds, in order
    rows: list[np.ndarray]  # [V] logits each; rows[0] predicts the next token
    reused: int  # prompt tokens whose KV came from the prefix cache
    healing: bytes  # bytes the output must still start with (token healing)
    forced: list[int] = field(default_factory=list)  # chosen by branching, emitted first
    draft: list[int] = field(default_factory=list)  # fed, unverified; rows[i + 1] follows it
    tokens: list[int] = field(default_factory=list)  # generated ids
    text: str = ""  # decoded output, cut before any stop string
    logprobs: list[float] = field(default_factory=list)  # log-prob of each of `tokens`
    ends: list[int] = field(default_factory=list)  # len(text) after each of `tokens`
    passes: int = 0  # forward passes after prefill (branches included)
    accepted: int = 0  # prompt-lookup guesses the model confirmed
    ttft: float = 0.0  # seconds from the call to the first chosen token

    @property
    def healed(self) -> int:
        """Return how many characters of the decoded output the healed bytes take."""
        return len(self.cfg.heal.decode("utf-8", errors="replace"))

    def stop_before(self, cancel: CancelToken | None) -> str | None:
        """Return why decoding stops before its next token ("cancelled", "deadline"), or None."""
        if cancelled(cancel):
            return "cancelled"
        if expired(self.cfg.deadline) and not self.forced:  # branching's tokens go out first
            return "deadline"
        return None

    def emit(
        self,
        token: int,
        tokenizer: Tokenizer,
        on_token: Callable[[int, str], bool | None] | None,
        logprob: float = 0.0,
    ) -> str | None:
        """Add `token` (chosen with `logprob`) to the output; return why decoding stops
        there, or None to go on."""
        if token == tokenizer.eos_id:
            return "eos"
        self.tokens.append(token)
        self.text, stopped = apply_stops(
            tokenizer.decode(self.tokens)[self.healed :], self.cfg.stop
        )
        self.logprobs.append(logprob)
        self.ends.append(len(self.text))
        if stopped:
            return "stop"
        if on_token is not None and on_token(token, self.text) is False:
            return "callback"
        if len(self.tokens) >= self.max_new:
            return "length"
        return None


def line_confidence(text: str, ends: Sequence[int], logprobs: Sequence[float]) -> float | None:
    """Return the geometric-mean probability of the tokens that write the first line of
    `text` with code on it (token i wrote text[ends[i-1]:ends[i]]), or None if none did.

    This is how sure the model was of what a user sees first; `completion.minConfidence`
    hides suggestions below it (docs/BENCHMARKS.md measures exact match against coverage).
    """
    begin = len(text) - len(text.lstrip())
    if begin == len(text):
        return None
    line_end = text.find("\n", begin)
    line_end = len(text) if line_end < 0 else line_end
    chosen = [
        lp
        for lp, start, end in zip(logprobs, [0, *ends[:-1]], ends, strict=True)
        if start < line_end and end > begin
    ]
    return float(np.exp(np.mean(chosen))) if chosen else None


def lookup_draft(history: Sequence[int], k: int, longest: int = 4, shortest: int = 2) -> list[int]:
    """Guess the next k tokens as what followed the latest earlier copy of the last n-gram."""
    # Code repeats itself (names, call patterns, parallel branches), so the tokens that
    # followed the most recent earlier occurrence of the last n tokens are a cheap draft.
    if k <= 0 or len(history) <= shortest:
        return []
    seq = np.asarray(history)
    for n in range(min(longest, len(seq) - 1), shortest - 1, -1):  # longest n-gram first
        tail = seq[-n:]
        starts = np.flatnonzero(seq[: len(seq) - n] == tail[0])
        for i in starts[::-1]:  # most recent first
            if np.array_equal(seq[i : i + n], tail):
                return seq[i + n : i + n + k].tolist()
    return []


def best_start(engine: Engine, run: Decoding, cancel: CancelToken | None) -> tuple[list[int], int]:
    """Return the likeliest first line among `cfg.branches` starts, and the passes it took."""
    # Greedy decoding commits to its first token, where a small model most often goes
    # wrong (which of several plausible tokens opens the line, how a half-typed word goes
    # on). Leading whitespace the model is surest of (a new line's indentation, which
    # token healing makes it regenerate) is taken first, greedily; then each of the k
    # most likely next tokens is continued greedily to the end of its first line with
    # code, a stop string, eos or `max_new`, and the branch with the highest sum of
    # log-probabilities wins (the sum, not the mean: it measured better on `jpilot model
    # eval`). Branches write the KV from `covered` on; the static cache's rows past the
    # length are scratch, and the concat cache's passes return new arrays, so `run.past`
    # still holds the prompt afterwards.
    cfg, row, covered = run.cfg, run.rows[0], len(run.in_kv)
    limit = min(run.max_new, engine.n_positions - covered)  # tokens one line may take
    eos = engine.tokenizer.eos_id

    def ends(tokens: list[int]) -> bool:
        text = engine.tokenizer.decode(tokens)[run.healed :]
        stopped = apply_stops(text, cfg.stop)[1]
        return tokens[-1] == eos or "\n" in text.lstrip() or stopped or len(tokens) >= limit

    lead: list[int] = []  # whitespace the model is surest of, shared by every branch
    healing, kv, passes = cfg.heal, run.past, 0
    while True:
        first = log_softmax(engine._constrain(row, healing))
        top = int(np.argmax(first))
        if engine.tokenizer.decode([top]).strip() or ends([*lead, top]):  # content
            break
        if len(lead) >= 4 or cancelled(cancel) or expired(cfg.deadline):
            break
        lead.append(top)
        healing = engine.healer.consume(healing, top) if healing else b""
        out, kv = engine._forward([top], kv, covered + len(lead) - 1)
        row, passes = out[-1], passes + 1
    best: list[int] = []
    best_logp = -np.inf
    for start in np.argsort(-first)[: cfg.branches]:
        if not np.isfinite(first[start]):
            break  # healing allows fewer tokens than branches
        tokens, logp = [*lead, int(start)], float(first[start])
        branch_healing, branch_kv = healing, kv
        while True:
            if branch_healing:
                branch_healing = engine.healer.consume(branch_healing, tokens[-1])
            if ends(tokens):
                break
            if cancelled(cancel):
                return [], passes  # the caller stops too
            if expired(cfg.deadline):
                return best or tokens, passes  # the caller emits these, then stops
            out, branch_kv = engine._forward([tokens[-1]], branch_kv, covered + len(tokens) - 1)
            passes += 1
            lp = log_softmax(engine._constrain(out[-1], branch_healing))
            tokens.append(int(np.argmax(lp)))
            logp += float(lp[tokens[-1]])
        if logp > best_logp:
            best, best_logp = tokens, logp
    return best, passes


def cancelled(cancel: CancelToken | None) -> bool:
    """Return whether a cancel token (None: never cancelled) has been set."""
    return cancel is not None and cancel.is_set()


def expired(deadline: float | None) -> bool:
    """Return whether a `time.monotonic()` deadline (None: no deadline) has passed."""
    return deadline is not None and time.monotonic() >= deadline


def apply_stops(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string; return the text and whether one hit."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
