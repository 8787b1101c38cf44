"""Model-written docs: docstrings, one-line hover summaries and comment explanations.

The prompts suit a code model, not a chat model: a docstring is the continuation of
`def ...:\\n    \"\"\"`, and an explanation is the continuation of a `# ` comment placed
above the code. With FIM, the code that follows (the function body, the selection)
is given as the suffix, so the model sees what it is describing.

Degenerate text (a line or phrase repeated, a run of one character, a copy of the code:
jpilot.plugins.quality) is never returned as an answer; the `*_result` functions also
say why it was dropped, for the plugin to tell the user and for `jpilot model eval`.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass

from jpilot.model.engine import Engine, GenerationConfig
from jpilot.plugins.docs.symbols import Definition, body_indent, docstring_insert_line
from jpilot.plugins.quality import degenerate

__all__ = ["Insertion", "docstring", "docstring_insert_line", "docstring_result", "explain",
           "summary", "summary_result"]  # fmt: skip

QUOTES = '"""'


@dataclass
class Insertion:
    """Text to insert at the start of a 0-based line."""

    line: int
    text: str  # "" when the model's text was rejected
    rejected: str | None = None  # why the model's text was not used (quality.degenerate)


def _complete(
    engine: Engine, prefix: str, suffix: str, config: GenerationConfig, cancel=None
) -> str:
    """Generate the middle between prefix and suffix (FIM when the bundle has it)."""
    budget = engine.n_positions - config.max_new_tokens
    prompt = engine.tokenizer.infill_prompt(prefix, suffix, budget)
    return engine.generate(prompt, config, cancel=cancel).text


def _docstring_context(text: str, node: Definition) -> tuple[int, str, str, str] | None:
    """Return (insert line, indent, text before, text after) for a new docstring."""
    line = docstring_insert_line(node)
    if line is None:
        return None
    lines = text.splitlines(keepends=True)
    return line, body_indent(text, node), "".join(lines[:line]), "".join(lines[line:])


def _definition_text(text: str, node: Definition) -> str:
    """Return the source lines of a definition (what its prose must not merely copy)."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[node.lineno - 1 : node.end_lineno or node.lineno])


def summary_result(
    engine: Engine, text: str, node: Definition, seconds: float = 2.0, cancel=None
) -> tuple[str, str | None]:
    """Return the model's one-line summary and why it is unusable (None if it is fine)."""
    context = _docstring_context(text, node)
    if context is None:
        return "", "the definition has a one-line body"
    _line, indent, before, after = context
    config = GenerationConfig(
        max_new_tokens=40, stop=["\n", QUOTES], deadline=time.monotonic() + seconds
    )
    out = _complete(engine, before + indent + QUOTES, QUOTES + "\n" + after, config, cancel)
    out = out.strip().strip("\"'").strip()
    return out, degenerate(out, _definition_text(text, node))


def summary(engine: Engine, text: str, node: Definition, seconds: float = 2.0, cancel=None) -> str:
    """Return a model-written one-line summary of a function or class ('' if none)."""
    out, rejected = summary_result(engine, text, node, seconds, cancel)
    return "" if rejected else out


def docstring(
    engine: Engine, text: str, node: Definition, seconds: float = 4.0, cancel=None
) -> Insertion | None:
    """Write a docstring for `node`; None if the model gives nothing usable that parses."""
    return docstring_result(engine, text, node, seconds, cancel)[0]


def docstring_result(
    engine: Engine, text: str, node: Definition, seconds: float = 4.0, cancel=None
) -> tuple[Insertion | None, str, str | None]:
    """Return (the docstring to insert or None, the model's raw text, why it was rejected)."""
    context = _docstring_context(text, node)
    if context is None:
        return None, "", "the definition has a one-line body"
    line, indent, before, after = context
    config = GenerationConfig(max_new_tokens=96, stop=[QUOTES, "'''"],
                              deadline=time.monotonic() + seconds)  # fmt: skip
    raw = _complete(engine, before + indent + QUOTES, QUOTES + "\n" + after, config, cancel)
    rejected = degenerate(raw, _definition_text(text, node))
    if rejected:
        return None, raw, rejected
    body = [ln.strip() for ln in raw.strip().splitlines()]
    while body and not body[-1]:
        body.pop()
    if not body or not body[0]:
        return None, raw, "it did not start with a sentence"
    if len(body) == 1:
        block = f"{indent}{QUOTES}{body[0]}{QUOTES}\n"
    else:
        rest = "".join(f"{indent}{ln}\n" if ln else "\n" for ln in body[1:])
        block = f"{indent}{QUOTES}{body[0]}\n{rest}{indent}{QUOTES}\n"
    try:
        ast.parse(before + block + after)
    except SyntaxError:
        return None, raw, "it would not parse"
    return Insertion(line, block), raw, None


def explain(
    engine: Engine, text: str, start: int, end: int, seconds: float = 4.0, cancel=None
) -> Insertion | None:
    """Explain lines start..end (0-based, inclusive) as a comment block to put above them.

    None if the model wrote no comment; an Insertion with `rejected` set (and no text) if
    what it wrote was degenerate.
    """
    lines = text.splitlines(keepends=True)
    if not 0 <= start <= end < len(lines):
        return None
    first = lines[start]
    indent = first[: len(first) - len(first.lstrip())]
    selection = "".join(lines[start : end + 1])
    prefix = "".join(lines[:start]) + indent + "# "
    config = GenerationConfig(max_new_tokens=80, stop=["\n\n"],
                              deadline=time.monotonic() + seconds)  # fmt: skip
    raw = _complete(engine, prefix, "\n" + selection, config, cancel)
    comment = []
    for i, ln in enumerate(raw.split("\n")):
        ln = ln.strip()
        if i and not ln.startswith("#"):
            break  # the model went back to code: the comment is over
        ln = ln.lstrip("#").strip()
        if ln:
            comment.append(f"{indent}# {ln}\n")
    if not comment:
        return None
    rejected = degenerate("\n".join(c.strip()[2:] for c in comment), selection)
    if rejected:
        return Insertion(start, "", rejected)
    return Insertion(start, "".join(comment))
