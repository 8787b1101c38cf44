"""Single-token-span bug rewrites of Python source, found with the stdlib's `ast` and `tokenize`.

A `Site` is a span of the text that some rewrite can change, with every replacement the
rewrites allow there (`Site.candidates`, each with its kind). Injecting a bug picks a site
and one candidate; repairing one picks a site of the buggy text and one of its candidates.
The rewrites are symmetric: the buggy text has a site at the same start whose candidates
hold the original text (`inject` only keeps bugs for which that is true), so a detector
that localizes the bug can restore the original. Kinds (KINDS):

- comparison: `<` `>` `<=` `>=` `==` `!=` among themselves;
- boolean: `and` <-> `or`;
- arithmetic: `+` `-` `*` `/` `//` `%` of a binary operation;
- off-by-one: a decimal integer literal n -> n + 1 or n - 1;
- identity: `is` <-> `==`, `is not` <-> `!=`;
- not: `not` dropped from, or added to, the test of `if`/`elif`/`while`/`assert`;
- bool-literal: `True` <-> `False`;
- variable: a name read -> another name used in the same function (or module);
- swap-args: two adjacent positional arguments of a call swapped;
- attribute: `x.a` -> `x.b`, b another attribute name used in the file.

Hard negatives (`benign_rewrites`): the operands of `==`/`!=` swapped, which reads like a
rewrite but means the same; a detector must not flag them. No library finds these sites,
so this is written by hand on top of the stdlib's parser and tokenizer.
"""

from __future__ import annotations

import ast
import io
import keyword
import random
import tokenize
from collections import Counter
from dataclasses import dataclass

COMPARISONS = ("<", ">", "<=", ">=", "==", "!=")
ARITHMETIC = ("+", "-", "*", "/", "//", "%")
IDENTITY = {"is": "==", "==": "is", "is not": "!=", "!=": "is not"}
KINDS = ("comparison", "boolean", "arithmetic", "off-by-one", "identity", "not",
         "bool-literal", "variable", "swap-args", "attribute")  # fmt: skip
MAX_NAMES = 12  # most replacement names (variables, attributes) offered at one site
_CMP_AST = {ast.Lt: "<", ast.Gt: ">", ast.LtE: "<=", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not"}  # fmt: skip
_ARITH_AST = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
              ast.Mod: "%"}  # fmt: skip


@dataclass(frozen=True)
class Site:
    """A span some rewrite can change, and what it may become."""

    start: int  # character offset into the text
    end: int  # character offset after the span
    original: str  # text[start:end]
    candidates: tuple[tuple[str, str], ...]  # (replacement text, kind), none equal original


@dataclass(frozen=True)
class Bug:
    """One injected bug: the span in the buggy text, and what was there before."""

    kind: str
    start: int  # offset of the changed span in the buggy text
    end: int  # its end in the buggy text
    was: str  # the original text of the span
    now: str  # the buggy text of the span
    line: int  # 0-based line of the span's start


def _offsets(text: str) -> tuple[list[int], list[str]]:
    """Return the character offset of each line's start, and the lines themselves."""
    lines = text.splitlines(keepends=True)
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line)
    return starts or [0], lines or [""]


class _Source:
    """Text with conversions from ast (line, UTF-8 byte column) to character offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts, self.lines = _offsets(text)

    def at(self, line: int, byte_col: int) -> int:
        """Return the character offset of a 1-based line and a UTF-8 byte column."""
        head = self.lines[line - 1].encode("utf-8")[:byte_col]
        return self.starts[line - 1] + len(head.decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        """Return a node's (start, end) character offsets."""
        end_line, end_col = node.end_lineno or node.lineno, node.end_col_offset or 0  # type: ignore[attr-defined]
        return self.at(node.lineno, node.col_offset), self.at(end_line, end_col)  # type: ignore[attr-defined]


def _tokens(text: str) -> list[tuple[int, int, str]]:
    """Return (start, end, string) of every OP and NAME token, as character offsets."""
    starts, _lines = _offsets(text)
    out = []
    for t in tokenize.generate_tokens(io.StringIO(text).readline):
        if t.type in (tokenize.OP, tokenize.NAME) and t.start[0] == t.end[0]:
            a = starts[t.start[0] - 1] + t.start[1]
            out.append((a, a + len(t.string), t.string))
    return out


def _between(tokens: list[tuple[int, int, str]], lo: int, hi: int) -> list[tuple[int, int, str]]:
    """Return the tokens inside [lo, hi) that are not brackets."""
    return [t for t in tokens if lo <= t[0] and t[1] <= hi and t[2] not in "()"]


def _operator(tokens, lo: int, hi: int, want: str) -> tuple[int, int] | None:
    """Return the span of operator `want` (maybe two tokens, `is not`) between lo and hi."""
    inner = _between(tokens, lo, hi)
    words = want.split()
    for i in range(len(inner) - len(words) + 1):
        if [t[2] for t in inner[i : i + len(words)]] == words:
            return inner[i][0], inner[i + len(words) - 1][1]
    return None


def _scopes(tree: ast.AST) -> dict[int, Counter]:
    """Map id(node) of each Name to a Counter of the names used in its function (or module)."""
    out: dict[int, Counter] = {}

    def visit(scope: ast.AST, names: list[ast.Name]) -> None:
        counts = Counter(n.id for n in names)
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            counts.update(a.arg for a in ast.walk(scope.args) if isinstance(a, ast.arg))
        for n in names:
            out[id(n)] = counts

    def collect(node: ast.AST, names: list[ast.Name]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                inner: list[ast.Name] = []
                collect(child, inner)
                visit(child, inner)
            else:
                if isinstance(child, ast.Name):
                    names.append(child)
                collect(child, names)

    top: list[ast.Name] = []
    collect(tree, top)
    visit(tree, top)
    return out


def _name_choices(current: str, counts: Counter) -> tuple[str, ...]:
    """Return up to MAX_NAMES other names, most used first (ties by name)."""
    others = [n for n in counts if n != current and not keyword.iskeyword(n)]
    others.sort(key=lambda n: (-counts[n], n))
    return tuple(others[:MAX_NAMES])


def sites(text: str) -> list[Site]:
    """Return every rewrite site of `text`, in text order; [] if it does not parse."""
    try:
        tree = ast.parse(text)
        tokens = _tokens(text)
    except (SyntaxError, ValueError, tokenize.TokenError, IndentationError):
        return []
    src = _Source(text)
    found: dict[tuple[int, int], dict[str, str]] = {}

    def add(a: int, b: int, options: dict[str, str]) -> None:
        original = text[a:b]
        keep = {o: k for o, k in options.items() if o != original}
        if keep and a < b:
            found.setdefault((a, b), {}).update(keep)

    scopes = _scopes(tree)
    attributes = Counter(n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                name = _CMP_AST.get(type(op))
                lo, hi = src.span(left)[1], src.span(right)[0]
                span = _operator(tokens, lo, hi, name) if name else None
                if span is not None:
                    options = {c: "comparison" for c in COMPARISONS} if name in COMPARISONS else {}
                    if name in IDENTITY:
                        options[IDENTITY[name]] = "identity"
                    add(*span, options)
                left = right
        elif isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            for left, right in zip(node.values, node.values[1:], strict=False):
                span = _operator(tokens, src.span(left)[1], src.span(right)[0], word)
                if span is not None:
                    add(*span, {"or" if word == "and" else "and": "boolean"})
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH_AST:
            sym = _ARITH_AST[type(node.op)]
            span = _operator(tokens, src.span(node.left)[1], src.span(node.right)[0], sym)
            if span is not None:
                add(*span, {c: "arithmetic" for c in ARITHMETIC})
        elif isinstance(node, ast.Constant) and node.value is not None:
            a, b = src.span(node)
            if isinstance(node.value, bool):
                add(a, b, {str(not node.value): "bool-literal"})
            elif type(node.value) is int and text[a:b].isdigit() and node.value < 10**6:
                n = node.value
                add(a, b, {str(m): "off-by-one" for m in (n - 1, n + 1) if m >= 0})
        elif isinstance(node, ast.If | ast.While | ast.Assert):
            _not_site(node.test, src, text, add)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            choices = _name_choices(node.id, scopes.get(id(node), Counter()))
            add(*src.span(node), {c: "variable" for c in choices})
        elif isinstance(node, ast.Attribute) and node.end_lineno == node.lineno:
            a, b = src.span(node)
            if text[b - len(node.attr) : b] == node.attr:
                choices = _name_choices(node.attr, attributes)
                add(b - len(node.attr), b, {c: "attribute" for c in choices})
        elif isinstance(node, ast.Call):
            _swap_sites(node, src, text, add)
    return [
        Site(a, b, text[a:b], tuple(sorted(options.items())))
        for (a, b), options in sorted(found.items())
    ]


def _not_site(test: ast.expr, src: _Source, text: str, add) -> None:
    """Add the site that drops a test's leading `not`, or adds one."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        a, _ = src.span(test)
        operand = src.span(test.operand)[0]
        inner = text[operand:].split("\n", 1)[0]
        first = _first_token(inner)
        if text[a:operand] == "not " and first:
            add(a, operand + len(first), {first: "not"})
    elif not isinstance(test, ast.BoolOp | ast.Compare | ast.IfExp | ast.NamedExpr):
        a, _ = src.span(test)
        first = _first_token(text[a:].split("\n", 1)[0])
        if first:
            add(a, a + len(first), {"not " + first: "not"})


def _first_token(line: str) -> str:
    """Return the first token of a line of code, '' if it does not tokenize."""
    try:
        for t in tokenize.generate_tokens(io.StringIO(line).readline):
            return t.string if t.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER) else ""
    except (tokenize.TokenError, SyntaxError):
        pass
    return ""


def _swap_sites(node: ast.Call, src: _Source, text: str, add) -> None:
    """Add a site per pair of adjacent simple positional arguments: the pair swapped."""
    simple = ast.Name | ast.Attribute | ast.Constant
    for left, right in zip(node.args, node.args[1:], strict=False):
        if not (isinstance(left, simple) and isinstance(right, simple)):
            continue
        (a, b), (c, d) = src.span(left), src.span(right)
        sep = text[b:c]
        if sep.strip() != "," or "\n" in text[a:d] or text[a:b] == text[c:d]:
            continue
        add(a, d, {text[c:d] + sep + text[a:b]: "swap-args"})


def apply(text: str, start: int, end: int, new: str) -> str:
    """Return `text` with [start, end) replaced by `new`."""
    return text[:start] + new + text[end:]


def benign_rewrites(text: str) -> list[tuple[int, int, str]]:
    """Return (start, end, new) edits that read like a bug but keep the meaning (hard negatives)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    src, out = _Source(text), []
    simple = ast.Name | ast.Attribute | ast.Constant
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
            continue
        right = node.comparators[0]
        if (
            isinstance(node.ops[0], ast.Eq | ast.NotEq)
            and isinstance(node.left, simple)
            and (isinstance(right, simple))
        ):
            (a, b), (c, d) = src.span(node.left), src.span(right)
            if "\n" not in text[a:d] and text[a:b] != text[c:d]:
                out.append((a, d, text[c:d] + text[b:c] + text[a:b]))
    return out


def inject(
    text: str, rng: random.Random, kinds: tuple[str, ...] = KINDS, tries: int = 30
) -> tuple[str, Bug] | None:
    """Return a copy of `text` with one bug of one of `kinds` that parses and can be repaired.

    The kind is drawn first (uniformly among those the file has sites for), then the site.
    """
    by_kind: dict[str, list[tuple[Site, str]]] = {}
    for site in sites(text):
        for new, kind in site.candidates:
            if kind in kinds:
                by_kind.setdefault(kind, []).append((site, new))
    for _ in range(tries):
        if not by_kind:
            return None
        kind = rng.choice(sorted(by_kind))
        site, new = rng.choice(by_kind[kind])
        buggy = apply(text, site.start, site.end, new)
        end = site.start + len(new)
        try:
            ast.parse(buggy)
        except (SyntaxError, ValueError):
            continue
        if not any(s.start == site.start and s.end == end and site.original in dict(s.candidates)
                   for s in sites(buggy)):  # fmt: skip
            continue  # the original is not among the buggy site's repairs: skip it
        line = text.count("\n", 0, site.start)
        return buggy, Bug(kind, site.start, end, site.original, new, line)
    return None
