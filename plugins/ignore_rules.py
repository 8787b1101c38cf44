"""Parse gitignore lines and match paths against them exactly as git does, in bounded time.

git matches with a backtracking `wildmatch`; the Python regexes a glob usually turns into
backtrack too, and `*a*a*a*a*a*a*a*a*a*a*b` against a 40-character name takes seconds.
Here a pattern compiles to tokens run as an NFA (a set of pattern positions advanced one
byte at a time), so a match costs at most len(pattern) * len(path) steps. Every step is
charged to a `Budget`; a check that spends it raises `BudgetExceeded` (the caller then
treats the file as ignored).

The semantics follow git's dir.c and wildmatch.c (git 2.39), byte for byte on the UTF-8
path: trailing-space trimming, `!` negation, `/`-anchoring, dir-only `name/`, `**` only
between slashes, `[...]` classes with ranges and `[:alpha:]`, and the literal-prefix
quirk of `match_pathname` (the pattern part before the first wildcard is compared as text,
so `**` right after it counts as leading).
"""

from __future__ import annotations

from dataclasses import dataclass

SLASH = ord("/")
GLOB_SPECIAL = frozenset(b"*?[\\")

# wildmatch's [:name:] classes, ASCII only (git's sane_ctype)
_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    b"alpha": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset([*range(0x20), 0x7F]),
    b"digit": frozenset(b"0123456789"),
    b"graph": frozenset(range(0x21, 0x7F)),
    b"lower": frozenset(b"abcdefghijklmnopqrstuvwxyz"),
    b"print": frozenset(range(0x20, 0x7F)),
    b"punct": frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    b"space": frozenset(b" \t\n\r"),
    b"upper": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    b"xdigit": frozenset(b"0123456789ABCDEFabcdef"),
}


class BudgetExceeded(Exception):
    """A check spent more matching steps than its budget allows."""


class Budget:
    """Count matching steps; raise BudgetExceeded past `limit`."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, steps: int) -> None:
        """Charge `steps`; raise BudgetExceeded when the budget is gone."""
        self.left -= steps
        if self.left < 0:
            raise BudgetExceeded


# Token kinds. A token is (kind, arg): LIT byte, ONE table (256 bools), STAR match_slash.
LIT, ONE, STAR = 0, 1, 2
Token = tuple[int, object]


@dataclass(frozen=True)
class Glob:
    """A compiled wildmatch pattern: tokens plus, per position, its epsilon closure."""

    tokens: tuple[Token, ...]
    closures: tuple[tuple[int, ...], ...]  # closures[i]: positions reached entering i
    loops: tuple[tuple[int, ...], ...]  # loops[i]: positions after a STAR at i eats a byte
    never: bool  # a malformed class or trailing backslash: git never matches it

    def match(self, text: bytes, budget: Budget) -> bool:
        """Say whether the whole of `text` matches."""
        if self.never:
            return False
        tokens, closures, end = self.tokens, self.closures, len(self.tokens)
        states = set(closures[0])
        for byte in text:
            budget.spend(len(states) + 1)
            nxt: set[int] = set()
            for i in states:
                if i == end:
                    continue
                kind, arg = tokens[i]
                if kind == STAR:
                    if arg or byte != SLASH:
                        nxt.update(self.loops[i])
                elif (arg == byte) if kind == LIT else arg[byte]:  # type: ignore[index]
                    nxt.update(closures[i + 1])
            if not nxt:
                return False
            states = nxt
        return end in states


def compile_glob(pattern: bytes, pathname: bool) -> Glob:
    """Compile a wildmatch pattern (WM_PATHNAME when `pathname`) to an NFA."""
    tokens: list[Token] = []
    zero_dir: set[int] = set()  # STAR positions whose `**/` may also match no folder
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == ord("*"):
            start = i
            while i < n and pattern[i] == ord("*"):
                i += 1
            slash = not pathname
            if i - start >= 2 and pathname:
                before_ok = start == 0 or pattern[start - 1] == SLASH
                after = pattern[i : i + 2]
                if before_ok and (i == n or after[:1] == b"/" or after == b"\\/"):
                    slash = True
                    if after[:1] == b"/":
                        zero_dir.add(len(tokens))
            tokens.append((STAR, slash))
            continue
        if c == ord("?"):
            tokens.append((ONE, _table(frozenset(), True, pathname)))
            i += 1
            continue
        if c == ord("["):
            parsed = _parse_class(pattern, i + 1)
            if parsed is None:
                return Glob((), ((),), ((),), never=True)
            members, negated, i = parsed
            tokens.append((ONE, _table(members, negated, pathname)))
            continue
        if c == ord("\\"):
            i += 1
            if i == n:
                return Glob((), ((),), ((),), never=True)
            c = pattern[i]
        tokens.append((LIT, c))
        i += 1
    closures: list[tuple[int, ...]] = [()] * (len(tokens) + 1)
    closures[len(tokens)] = (len(tokens),)
    for j in range(len(tokens) - 1, -1, -1):
        reach = {j}
        if tokens[j][0] == STAR:
            reach.update(closures[j + 1])
            if j in zero_dir:  # skip the `**` and the `/` after it
                reach.update(closures[j + 2])
        closures[j] = tuple(sorted(reach))
    # `**/` may match no folder only where it starts, not after it has eaten a byte
    loops = tuple(tuple(sorted({j, *closures[j + 1]})) for j in range(len(tokens)))
    return Glob(tuple(tokens), tuple(closures), loops, never=False)


def _table(members: frozenset[int], negated: bool, pathname: bool) -> tuple[bool, ...]:
    """Return a 256-entry table of the bytes one class position accepts."""
    return tuple((b in members) != negated and not (pathname and b == SLASH) for b in range(256))


def _parse_class(p: bytes, i: int) -> tuple[frozenset[int], bool, int] | None:
    """Parse a `[...]` body starting after `[`; return (members, negated, next index)."""
    n = len(p)
    if i < n and p[i] in b"!^":
        negated, i = True, i + 1
    else:
        negated = False
    members: set[int] = set()
    prev = 0  # the previous literal member, 0 after a range or a [:class:]
    first = True
    while first or (i < n and p[i] != ord("]")):
        first = False
        if i >= n:
            return None
        c = p[i]
        if c == ord("\\"):
            i += 1
            if i >= n:
                return None
            c = p[i]
            members.add(c)
        elif c == ord("-") and prev and i + 1 < n and p[i + 1] != ord("]"):
            i += 1
            hi = p[i]
            if hi == ord("\\"):
                i += 1
                if i >= n:
                    return None
                hi = p[i]
            members.update(range(prev, hi + 1))
            c = 0
        elif c == ord("[") and i + 1 < n and p[i + 1] == ord(":"):
            close = p.find(b"]", i + 2)
            if close < 0:
                return None
            name = p[i + 2 : close - 1]
            if close - (i + 2) < 1 or p[close - 1] != ord(":"):
                members.add(c)  # no ":]": a plain "["
            else:
                if name not in _CLASSES:
                    return None
                members.update(_CLASSES[name])
                i, c = close, 0
        else:
            members.add(c)
        prev = c
        i += 1
    if i >= n:
        return None
    return frozenset(members), negated, i + 1


@dataclass(frozen=True)
class Pattern:
    """One gitignore line, parsed as git's parse_path_pattern does."""

    text: bytes  # without `!` and trailing `/`
    negative: bool
    dir_only: bool  # ended with `/`
    basename: bool  # no `/` inside: matched against the last component only
    prefix: int  # length of the leading part without wildcards (git's nowildcardlen)
    glob: Glob  # the whole pattern (basename) or the part after `prefix` (pathname)
    endswith: bool  # `*literal`: matched with bytes.endswith

    def matches(self, rel: bytes, name: bytes, is_dir: bool, budget: Budget) -> bool:
        """Say whether the path `rel` (relative to the ignore file's folder) matches."""
        budget.spend(1)
        if self.dir_only and not is_dir:
            return False
        text = self.text
        if self.basename:
            if self.prefix == len(text):
                return name == text
            if self.endswith:
                return name.endswith(text[1:])
            return self.glob.match(name, budget)
        if self.prefix:
            if rel[: self.prefix] != text[: self.prefix]:
                return False
            if self.prefix == len(text):
                return len(rel) == self.prefix
        return self.glob.match(rel[self.prefix :], budget)


def parse_line(line: bytes) -> Pattern | None:
    """Parse one line of an ignore file; None for blanks and comments."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line or line.startswith(b"#"):
        return None
    line = _trim_trailing_spaces(line)
    negative = line.startswith(b"!")
    if negative:
        line = line[1:]
    dir_only = line.endswith(b"/")
    if dir_only:
        line = line[:-1]
    basename = b"/" not in line
    if not basename and line.startswith(b"/"):
        line = line[1:]  # match_pathname drops a leading slash
    prefix = next((k for k, c in enumerate(line) if c in GLOB_SPECIAL), len(line))
    endswith = line.startswith(b"*") and not any(c in GLOB_SPECIAL for c in line[1:])
    glob = compile_glob(line if basename else line[prefix:], pathname=not basename)
    return Pattern(line, negative, dir_only, basename, prefix, glob, endswith)


def parse(data: bytes) -> list[Pattern]:
    """Parse an ignore file's bytes (a UTF-8 BOM is skipped, as git does)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return [p for line in data.split(b"\n") if (p := parse_line(line)) is not None]


def _trim_trailing_spaces(line: bytes) -> bytes:
    """Drop trailing spaces unless the last one is escaped with a backslash."""
    last_space = None
    i = 0
    while i < len(line):
        c = line[i]
        if c == ord(" "):
            if last_space is None:
                last_space = i
        elif c == ord("\\"):
            i += 1
            if i == len(line):
                return line
            last_space = None
        else:
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


def last_match(
    lists: list[list[Pattern]], rels: list[bytes], name: bytes, is_dir: bool, budget: Budget
) -> Pattern | None:
    """Return git's deciding pattern: deepest list first, last line first.

    `lists[k]` are the patterns of the k-th ignore file from the top; `rels[k]` is the
    path relative to that file's folder.
    """
    for patterns, rel in zip(reversed(lists), reversed(rels), strict=True):
        for pattern in reversed(patterns):
            if pattern.matches(rel, name, is_dir, budget):
                return pattern
    return None
