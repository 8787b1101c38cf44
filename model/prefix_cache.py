"""A small LRU of KV caches keyed by token sequence, for reuse of the longest common prefix.

While a user types, each new prompt shares almost all of its tokens with the previous one.
Keeping the KV cache of recent sequences lets the engine feed only the new tokens.
Entries are bounded both in count and in bytes. Written by hand: no library keeps
ONNX Runtime OrtValues by token prefix.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class CacheEntry:
    """The KV cache of one token sequence: one OrtValue per past input, [1, H, T, D] each."""

    tokens: tuple[int, ...]  # the T tokens whose keys and values the cache holds
    kv: list[Any]  # OrtValues in the session's past-input order
    nbytes: int  # memory the OrtValues use


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Return the length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PrefixCache:
    """LRU of CacheEntry, bounded by entry count and total bytes."""

    def __init__(self, max_entries: int = 8, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, CacheEntry] = OrderedDict()
        self._next_key = 0
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        """Return the bytes held by all entries."""
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def best_match(self, tokens: Sequence[int]) -> tuple[CacheEntry | None, int]:
        """Return the entry sharing the longest prefix with `tokens`, and that length."""
        best, best_len, best_key = None, 0, None
        for key, entry in self._entries.items():
            n = common_prefix_len(entry.tokens, tokens)
            if n > best_len:
                best, best_len, best_key = entry, n, key
        if best_key is not None:
            self._entries.move_to_end(best_key)
            self.hits += 1
        else:
            self.misses += 1
        return best, best_len

    def take(self, entry: CacheEntry) -> None:
        """Remove `entry`: its caller is about to overwrite its KV (static buffers)."""
        for key in [k for k, e in self._entries.items() if e is entry]:
            del self._entries[key]

    def put(self, tokens: Sequence[int], kv: list[Any], nbytes: int) -> None:
        """Store a sequence's cache, dropping entries it extends, then evict to the bounds."""
        new = CacheEntry(tuple(tokens), kv, nbytes)
        if nbytes > self.max_bytes or not new.tokens:
            return
        for key in [k for k, e in self._entries.items() if _is_prefix(e.tokens, new.tokens)]:
            del self._entries[key]
        self._entries[self._next_key] = new
        self._next_key += 1
        while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()


def _is_prefix(short: tuple[int, ...], long: tuple[int, ...]) -> bool:
    """Return whether `short` is a prefix of `long`."""
    return len(short) <= len(long) and long[: len(short)] == short
