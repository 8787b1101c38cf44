"""Score token sequences with an Engine: per-token log-probabilities, and what-if variants.

- `score_detail` scores long inputs in windows of the model's context that overlap by
  half, so every token but those of the first window sees at least half a context before
  it.
- `score_variants` scores alternative token lists at cut points ("the code here, written
  this way or that way instead"). Cuts that share a context (`variant_context_begin`)
  share one prefill: its KV is computed once, then the cuts are taken from last to first,
  so each variant's forward pass only writes KV rows that no cut still to come reads (a
  static cache is updated in place; a dynamic one is cut back with `Engine._slice`).
- Both take the engine lock per forward pass (their KV is their own), so scoring a big
  file never holds a completion back for more than one pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from jpilot.model.decode import CancelToken, cancelled
from jpilot.model.sampling import log_softmax

if TYPE_CHECKING:
    from jpilot.model.engine import Engine


@dataclass
class Scored:
    """Per-token scores of a sequence; index i is about token i + 1."""

    logp: np.ndarray  # [N - 1] log-probability of the actual token, nats
    top: np.ndarray  # [N - 1] the model's most likely token at that position
    top_logp: np.ndarray  # [N - 1] its log-probability


class CancelledError(Exception):
    """Raised by score() when its cancel token is set."""


def score_detail(engine: Engine, ids: Sequence[int], cancel: CancelToken | None) -> Scored:
    """Score every token after the first, with the model's own top choice at each."""
    ids = list(ids)
    logp, top, top_logp = (np.zeros(max(len(ids) - 1, 0)) for _ in range(3))
    for begin, done, end in windows(len(ids), engine.n_positions):
        if cancelled(cancel):
            raise CancelledError("scoring was cancelled")
        chunk = ids[begin:end]
        empty = engine._empty_kv()
        with engine._lock:  # per window, so a completion can run between windows
            logits, _ = engine._forward(chunk, empty, 0, all_logits=True)
        lp = log_softmax(logits[:-1])  # [len(chunk) - 1, V]: predicts chunk[1:]
        targets = np.arange(done, begin + len(chunk))  # positions scored now
        rows = targets - begin - 1
        logp[targets - 1] = lp[rows, [ids[t] for t in targets]]
        top[targets - 1] = lp[rows].argmax(-1)
        top_logp[targets - 1] = lp[rows].max(-1)
    return Scored(logp, top.astype(np.int64), top_logp)


def score_variants(
    engine: Engine,
    ids: Sequence[int],
    cuts: Sequence[tuple[int, Sequence[Sequence[int]]]],
    cancel: CancelToken | None,
) -> list[list[float]]:
    """Return, per (cut, variants), each variant's log-probability (nats) after ids[:cut]."""
    ids = list(ids)
    if not cuts:
        return []
    longest = check_cuts(ids, cuts, engine.n_positions)
    groups: dict[int, list[int]] = {}
    for k, (cut, _variants) in enumerate(cuts):
        begin = variant_context_begin(cut, engine.n_positions, longest)
        groups.setdefault(begin, []).append(k)
    out: list[list[float]] = [[] for _ in cuts]
    for begin, members in groups.items():
        members.sort(key=lambda k: -cuts[k][0])
        full = engine._empty_kv()
        top = cuts[members[0]][0] - 1  # ids[cut - 1] is fed again: it gives the 1st logits
        if top > begin:
            with engine._lock:
                _, full = engine._forward(ids[begin:top], full, 0)
        for k in members:
            if cancelled(cancel):
                raise CancelledError("scoring was cancelled")
            cut, variants = cuts[k]
            at = cut - 1 - begin
            for variant in variants:
                with engine._lock:
                    past = engine._slice(full, at)
                    logits, _ = engine._forward([ids[cut - 1], *variant], past, at, True)
                lp = log_softmax(logits[: len(variant)])
                out[k].append(float(lp[np.arange(len(variant)), list(variant)].sum()))
    return out


def windows(n: int, window: int) -> Iterator[tuple[int, int, int]]:
    """Yield (begin, done, end): score positions done..end-1 with the context ids[begin:end].

    Each window after the first starts half a window back, so every scored token has at
    least half a window of context before it.
    """
    done = 1  # positions < done are scored
    while done < n:
        begin = 0 if done == 1 else max(0, done - window // 2)
        end = min(begin + window, n)
        yield begin, done, end
        done = end


def check_cuts(
    ids: Sequence[int], cuts: Sequence[tuple[int, Sequence[Sequence[int]]]], n_positions: int
) -> int:
    """Return the longest variant's length; raise ValueError for cuts no window can take."""
    longest = max(len(v) for _cut, variants in cuts for v in variants)
    if longest > n_positions // 2 or any(not 1 <= c <= len(ids) for c, _v in cuts):
        raise ValueError("variants must be at most half a context long, cuts in 1..len(ids)")
    return longest


class ScoringMixin:
    """The scoring half of the engine interface, shared by Engine and the pool's RemoteEngine.

    A class sets `scorer` to the module that does its scoring: this one for the local
    engine, jpilot.model.remote_scoring for a pool.
    """

    scorer: Any  # a module with score_detail(engine, ids, cancel) and score_variants(...)

    def score(self, ids: Sequence[int], cancel: CancelToken | None = None) -> np.ndarray:
        """Return log p(ids[i] | ids[:i]) for i >= 1, in nats, as a [len(ids) - 1] array."""
        return self.score_detail(ids, cancel).logp

    def score_detail(self, ids: Sequence[int], cancel: CancelToken | None = None) -> Scored:
        """Score every token after the first, with the model's own top choice at each."""
        return self.scorer.score_detail(self, ids, cancel)

    def score_variants(
        self,
        ids: Sequence[int],
        cuts: Sequence[tuple[int, Sequence[Sequence[int]]]],
        cancel: CancelToken | None = None,
    ) -> list[list[float]]:
        """Return, per (cut, variants), each variant's log-probability (nats) after ids[:cut]."""
        return self.scorer.score_variants(self, ids, cuts, cancel)


def variant_context_begin(cut: int, n_positions: int, longest: int) -> int:
    """Return where the context of a variant after ids[:cut] starts (see score_variants)."""
    # The context and the variant (at most `longest` tokens, after the re-fed token
    # ids[cut - 1]) must fit the model's window. Starts snap to multiples of a quarter of
    # the room, so that nearby cuts share one context, which keeps at least three quarters
    # of the room.
    room = n_positions - longest - 1  # context tokens before the cut, ids[cut - 1] included
    if cut <= room:
        return 0
    step = max(room // 4, 1)
    return ((cut - room) // step + 1) * step
