"""The prefix-reuse LRU: longest match, subsumed entries, count and byte bounds."""

from __future__ import annotations

from jpilot.model.prefix_cache import PrefixCache, common_prefix_len


def test_common_prefix_len() -> None:
    assert common_prefix_len([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_len([], [1]) == 0
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2


def test_best_match_picks_the_longest_prefix() -> None:
    cache = PrefixCache()
    cache.put([1, 2, 3], ["a"], 10)
    cache.put([1, 2, 9, 9], ["b"], 10)
    entry, n = cache.best_match([1, 2, 9, 7])
    assert entry is not None and entry.kv == ["b"] and n == 3
    entry, n = cache.best_match([5])
    assert entry is None and n == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_an_extension_replaces_its_prefix() -> None:
    cache = PrefixCache()
    cache.put([1, 2], ["short"], 10)
    cache.put([1, 2, 3], ["long"], 10)
    assert len(cache) == 1
    assert cache.best_match([1, 2])[0].kv == ["long"]  # type: ignore[union-attr]


def test_bounds_evict_least_recently_used() -> None:
    cache = PrefixCache(max_entries=2, max_bytes=100)
    cache.put([1], ["a"], 40)
    cache.put([2], ["b"], 40)
    cache.best_match([1])  # touch a: b is now the oldest
    cache.put([3], ["c"], 40)
    assert [e.kv for e in cache._entries.values()] == [["a"], ["c"]]
    cache.put([4], ["d"], 90)  # over the byte budget together with anything else
    assert [e.kv for e in cache._entries.values()] == [["d"]]
    cache.put([5], ["huge"], 101)  # larger than the whole budget: not kept
    assert cache.nbytes == 90
