"""Find Python definitions and names in a buffer with `ast`: signature, docstring, body.

Positions here are (0-based line, Python string column); the server converts LSP
positions with the document's position codec before calling in.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass
class Symbol:
    """A definition or name under the cursor, and what is known about it."""

    name: str
    kind: str  # "function", "class" or "name"
    signature: str  # e.g. "def clamp(value, low, high) -> int"; "" for names
    docstring: str | None  # the existing docstring, cleaned
    node: Definition | None  # the definition, when there is one in this buffer


def parse(text: str) -> ast.Module | None:
    """Parse a buffer, or return None if it has a syntax error."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def signature(node: Definition) -> str:
    """Return a one-line signature of a function or class definition."""
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {node.name}({bases})" if bases else f"class {node.name}"
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def definitions(tree: ast.Module) -> list[Definition]:
    """Return every function and class definition, outermost first."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n for n in ast.walk(tree) if isinstance(n, kinds)]


def _name_span(text_lines: list[str], node: Definition) -> tuple[int, int, int]:
    """Return (line, start col, end col) of a definition's name in its header."""
    line = node.lineno - 1
    header = text_lines[line]
    keyword = "class " if isinstance(node, ast.ClassDef) else "def "
    start = header.find(keyword + node.name, node.col_offset) + len(keyword)
    return line, start, start + len(node.name)


def symbol_at(text: str, line: int, column: int) -> Symbol | None:
    """Return the definition whose name, or the name whose use, is under the cursor."""
    tree = parse(text)
    if tree is None:
        return None
    lines = text.splitlines()
    defs = definitions(tree)
    for definition in defs:
        row, start, end = _name_span(lines, definition)
        if row == line and start <= column <= end:
            return _describe(definition)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute) and node.end_col_offset is not None:
            name = node.id if isinstance(node, ast.Name) else node.attr
            row = (node.end_lineno or node.lineno) - 1
            start = node.end_col_offset - len(name)
            if row == line and start <= column <= node.end_col_offset:
                target = next((d for d in defs if d.name == name), None)
                return _describe(target) if target else Symbol(name, "name", "", None, None)
    return None


def _describe(node: Definition) -> Symbol:
    """Build a Symbol for a definition."""
    kind = "class" if isinstance(node, ast.ClassDef) else "function"
    return Symbol(node.name, kind, signature(node), ast.get_docstring(node), node)


def enclosing_definition(text: str, line: int) -> Definition | None:
    """Return the innermost function or class whose header or body holds `line`."""
    tree = parse(text)
    if tree is None:
        return None
    best = None
    for node in definitions(tree):
        if node.lineno - 1 <= line <= (node.end_lineno or node.lineno) - 1:
            if best is None or node.lineno >= best.lineno:
                best = node
    return best


def body_indent(text: str, node: Definition) -> str:
    """Return the indentation of the first statement in a definition's body."""
    first = node.body[0]
    line = text.splitlines()[first.lineno - 1]
    return line[: len(line) - len(line.lstrip())]


def docstring_insert_line(node: Definition) -> int | None:
    """Return the 0-based line where a new docstring goes, or None for one-line bodies."""
    first = node.body[0].lineno - 1
    return None if first <= node.lineno - 1 else first
