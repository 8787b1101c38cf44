"""The plugins' LRU keeps the most recently used items."""

from __future__ import annotations

from jpilot.plugins.lru import LRU


def test_the_least_recently_used_item_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    cache.put("a", 4)  # storing again replaces, and counts as use
    assert cache.get("a") == 4 and len(cache) == 2
