"""The secret scrubber runs in linear time (issue 23, finding 5).

Python's `re` backtracks, so linearity is a property of how the rules are written. Two
checks, neither timing anything:

- structure: every repeat in every rule has a finite bound (the one exception scans to
  the first END line or the end of the text, and a match consumes what it scanned), and
  every rule starts at a keyword or at a line start, so each attempt costs a bounded
  number of steps and there are at most len(text) attempts;
- liveness: megabytes of adversarial text built from every rule's keywords are masked in
  a child process under a timeout far above what a linear scan needs. The old quadratic
  pattern took 4 s for 40k characters of "password"; it needs minutes for 400k.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jpilot.plugins import secrets

try:  # Python 3.11+
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_BOUND = 8192
UNBOUNDED_OK = {"private-key"}  # [\s\S]*? up to the first END line or the end of text
REPEATS = {
    sre_constants.MAX_REPEAT,
    sre_constants.MIN_REPEAT,
    getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT),
}


def repeats(tree: object, nested_in: tuple[int, ...] = ()) -> list[tuple[int, int, tuple]]:
    """Return (min, max, enclosing maxes) for every repeat in a parsed regex."""
    found: list[tuple[int, int, tuple]] = []
    items = tree.data if hasattr(tree, "data") else tree  # type: ignore[attr-defined]
    for op, arg in items:  # type: ignore[union-attr]
        if op in REPEATS:
            low, high, body = arg
            found.append((low, high, nested_in))
            found += repeats(body, (*nested_in, high))
        elif op in (sre_constants.SUBPATTERN, sre_constants.ATOMIC_GROUP):
            found += repeats(arg[-1], nested_in)
        elif op == sre_constants.BRANCH:
            for branch in arg[1]:
                found += repeats(branch, nested_in)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            found += repeats(arg[1], nested_in)
        elif op == sre_constants.GROUPREF_EXISTS:
            found += repeats(arg[1], nested_in)
            if arg[2] is not None:
                found += repeats(arg[2], nested_in)
    return found


def test_every_repeat_is_bounded_and_never_nested():
    for rule in secrets.RULES:
        tree = sre_parse.parse(rule.regex.pattern, rule.regex.flags)
        for low, high, outer in repeats(tree):
            if rule.name in UNBOUNDED_OK and high == sre_constants.MAXREPEAT:
                continue
            assert high <= MAX_BOUND, f"{rule.name}: a repeat {{{low},{high}}} is unbounded"
            # a repeat inside another repeat multiplies; only inside an optional part
            assert all(h <= 1 for h in outer), f"{rule.name}: nested repeats"


def test_every_rule_starts_at_a_keyword_or_a_line_start():
    for rule in secrets.RULES:
        if rule.anchored:
            assert rule.keywords.pattern, rule.name
            continue
        first = sre_parse.parse(rule.regex.pattern, rule.regex.flags).data[0]
        assert first == (sre_constants.AT, sre_constants.AT_BEGINNING), rule.name
        assert rule.regex.flags & re.M, rule.name


def adversarial(size: int) -> list[str]:
    """Return texts of about `size` characters that stress every rule's keywords."""
    keywords = {k for rule in secrets.RULES for k in rule.keywords.pattern.split("|")}
    keywords = {re.sub(r"\\(.)", r"\1", k) for k in keywords}
    shapes = ["{k}", "{K}" + "a1" * 32 + ".", '{k}="', "\n{k}=" + "x" * 40]
    texts = []
    for k in sorted(keywords):
        for shape in shapes:
            unit = shape.format(k=k, K=k.upper())
            texts.append(unit * (size // len(unit) + 1))
    texts += [
        "-----BEGIN PRIVATE KEY-----\n" + "A" * size,
        "eyJ" + "aaaaaaaaaa.eyJ" * (size // 14),
        "a://b:" * (size // 6),
        "://" + "a" * size,
        "x" * size,
        "token = '" + "a" * size,
        'password = """' * (size // 14),
    ]
    return texts


def hide_in_child(texts: str, timeout: float, how: str = "mask") -> None:
    """Mask (or scrub) `texts`, an expression, in a child process that must finish within
    `timeout` seconds."""
    code = f"""
        from jpilot.plugins import secrets
        from test_secrets_linear import adversarial
        for text in {texts}:
            assert secrets.{how}(text)
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, check=False,
        cwd=Path(__file__).parent,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_quadratic_cases_of_the_old_scrubber_are_linear():
    # 400k characters: about 0.3 s each here; a quadratic scan needs minutes
    shapes = ["password", "password=", 'password="', "token: ", "\npassword=x", "api_key"]
    hide_in_child(f"[s * (400_000 // len(s)) for s in {shapes!r}]", timeout=240, how="scrub")


@pytest.mark.slow
def test_adversarial_text_for_every_keyword_is_masked_in_linear_time():
    # ~440 texts of 100k characters: ~25 s linear; a quadratic rule needs minutes per text
    hide_in_child("adversarial(100_000)", timeout=600)
