"""Token healing: let a completion start in the middle of the prompt's last token.

A cursor in the middle of a word cuts the prompt at a place BPE never saw in training
("_sentence_endin" instead of "_sentence_endings"). Healing drops the prompt's last token
and constrains the first generated tokens to reproduce its bytes, so the model picks the
natural tokenization itself. Written by hand: the tokenizers library has no constrained
decoding, and transformers' version needs torch.
"""

from __future__ import annotations

import bisect
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """Return the byte-level BPE alphabet (GPT-2's bytes_to_unicode) inverted: char -> byte."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


class Healer:
    """Byte strings of every token, indexed for "which tokens fit these bytes" queries."""

    def __init__(self, tokenizer) -> None:
        decoder = byte_decoder()
        special = tokenizer.special_ids()
        self.token_bytes: list[bytes | None] = []
        for i in range(tokenizer.vocab_size):
            piece = tokenizer.id_to_token(i)
            ok = piece is not None and i not in special and all(ch in decoder for ch in piece)
            self.token_bytes.append(bytes(decoder[ch] for ch in piece) if ok else None)
        order = sorted((b, i) for i, b in enumerate(self.token_bytes) if b)
        self._sorted = [b for b, _ in order]  # token bytes, sorted, for prefix-range lookup
        self._ids = np.array([i for _, i in order], dtype=np.int64)
        self._exact = {b: i for i, b in enumerate(self.token_bytes) if b}

    def split(self, ids: list[int]) -> tuple[list[int], bytes]:
        """Drop the last token if it is plain text; return the ids and the dropped bytes."""
        if len(ids) < 2:
            return ids, b""
        last = self.token_bytes[ids[-1]] if ids[-1] < len(self.token_bytes) else None
        if not last:
            return ids, b""
        try:
            last.decode("utf-8")
        except UnicodeDecodeError:  # a partial character: leave the prompt alone
            return ids, b""
        return ids[:-1], last

    def allowed(self, remaining: bytes) -> np.ndarray:
        """Return ids of tokens that start with `remaining` or are a prefix of it."""
        lo = bisect.bisect_left(self._sorted, remaining)
        hi = bisect.bisect_left(self._sorted, remaining + b"\xff" * 8)
        ids = set(self._ids[lo:hi].tolist())
        for k in range(1, len(remaining)):
            token = self._exact.get(remaining[:k])
            if token is not None:
                ids.add(token)
        return np.fromiter(ids, dtype=np.int64)

    def consume(self, remaining: bytes, token: int) -> bytes:
        """Return what of `remaining` is still to be produced after `token`."""
        piece = self.token_bytes[token] or b""
        return remaining[len(piece) :] if remaining.startswith(piece) else b""
