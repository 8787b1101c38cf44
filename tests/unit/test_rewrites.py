"""The detector's bug rewrites: each kind parses, is one span edit, and can be repaired."""

from __future__ import annotations

import ast
import random

import pytest

from jpilot.model.detector.rewrites import KINDS, apply, benign_rewrites, inject, sites

SOURCE = '''\
import os


def pick(items, limit, fallback=None):
    """Return the items under the limit."""
    found = []
    total = 0
    for item in items:
        if item.size < limit and item.name != "":
            total = total + item.size * 2
            found.append(item)
        elif item is None or not item.ready:
            continue
        while total >= 10:
            total -= 1
    if not found:
        return None
    flag = True
    if flag:
        os.path.join(item.name, fallback)
    return found, total, flag
'''
EXPECTED = {  # kind -> one edit it can make here (was, now)
    "comparison": ("<", ">="),
    "boolean": ("and", "or"),
    "arithmetic": ("+", "-"),
    "off-by-one": ("10", "11"),
    "identity": ("is", "=="),
    "not": ("not found", "found"),
    "bool-literal": ("True", "False"),
    "variable": ("limit", "total"),
    "swap-args": ("item.name, fallback", "fallback, item.name"),
    "attribute": ("size", "name"),
}


def one_edit(before: str, after: str) -> tuple[int, str, str]:
    """Return (start, removed, inserted) of the single edit turning before into after."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end_b, end_a = len(before), len(after)
    while end_b > start and end_a > start and before[end_b - 1] == after[end_a - 1]:
        end_b, end_a = end_b - 1, end_a - 1
    return start, before[start:end_b], after[start:end_a]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_one_parsing_repairable_edit(kind: str) -> None:
    offered = {(s.original, new) for s in sites(SOURCE) for new, k in s.candidates if k == kind}
    assert EXPECTED[kind] in offered
    rng = random.Random(3)
    for _ in range(5):
        made = inject(SOURCE, rng, (kind,))
        assert made is not None
        buggy, bug = made
        ast.parse(buggy)
        assert buggy != SOURCE and bug.kind == kind
        assert buggy == SOURCE[: bug.start] + bug.now + SOURCE[bug.start + len(bug.was) :]
        start, removed, inserted = one_edit(SOURCE, buggy)
        assert bug.start <= start and removed in bug.was and inserted in bug.now
        assert bug.line == SOURCE.count("\n", 0, bug.start)
        repairs = [
            s for s in sites(buggy) if (s.start, s.end) == (bug.start, bug.end)
        ]  # the same span in the buggy text offers the original back
        assert repairs and bug.was in dict(repairs[0].candidates)
        assert apply(buggy, bug.start, bug.end, bug.was) == SOURCE


def test_sites_are_spans_of_the_text_and_never_offer_the_same_text() -> None:
    for site in sites(SOURCE):
        assert SOURCE[site.start : site.end] == site.original
        assert site.original not in dict(site.candidates)
        for new, kind in site.candidates:
            assert kind in KINDS
            ast.parse(apply(SOURCE, site.start, site.end, new))


def test_non_ascii_columns_are_characters() -> None:
    text = 's = "é€𝄞"; t = 1 < 2\n'
    (site,) = [s for s in sites(text) if s.original == "<"]
    assert text[site.start : site.end] == "<"


def test_a_file_that_does_not_parse_has_no_sites() -> None:
    assert sites("def f(:\n    return 1 < 2\n") == []
    assert inject("x = (\n", random.Random(0)) is None


def test_hard_negatives_keep_the_meaning() -> None:
    text = "def f(a, b):\n    return a == b or a != 1\n"
    assert benign_rewrites(text) == [(24, 30, "b == a"), (34, 40, "1 != a")]
    for start, end, new in benign_rewrites(text):
        ast.parse(apply(text, start, end, new))
