"""The `docs` plugin's hooks: hover docs, "Generate docstring" and "Explain selection".

Hover shows what the buffer already says (signature, docstring) at once, plus a
model-written one-line summary marked as generated when a model is loaded. The code
actions are listed cheaply and computed on codeAction/resolve, where the model runs.

Each model-written feature is on only where `request.feature_on` says so: the setting
if true or false, else ("auto") the bundle's measured ability (jpilot.model.abilities).
Off, hover shows the signature and docstring only, the actions are not offered, and the
explain command answers one line saying what the model lacks. Degenerate model text is
never shown (jpilot.plugins.quality); the user is told it was dropped.

The model sees the document only through `privacy.model_text`: nothing of an ignored
file (hover keeps the signature and docstring; no model action is offered or run), and
every secret masked in place, so the line an answer is inserted at holds.
"""

from __future__ import annotations

from typing import Any

from jpilot.model.abilities import lacking_message
from jpilot.plugins.api import CompletionRequest, hookimpl
from jpilot.plugins.docs import generate
from jpilot.plugins.docs.symbols import enclosing_definition, parse, symbol_at
from jpilot.plugins.features import Action, Edit
from jpilot.plugins.privacy import ignored, model_text
from jpilot.plugins.text import line_col, line_start

GENERATED = "*jpilot, generated:*"
IGNORED = "this file is excluded from the model (.gitignore, .jpilotignore or a secrets file)"


@hookimpl
def jpilot_hover(request: CompletionRequest, engine: Any, cancel: Any) -> str | None:
    """Markdown for the function, class or name under the cursor."""
    if request.language_id != "python":
        return None
    line, col = line_col(request.text, request.offset)
    symbol = symbol_at(request.text, line, col)
    if symbol is None:
        return None
    parts = [f"```python\n{symbol.signature or symbol.name}\n```"]
    if symbol.docstring:
        parts.append(symbol.docstring)
    model = None
    if engine is not None and symbol.node is not None and request.feature_on("summary"):
        model = model_text(request)  # None: an ignored file
    if model is not None and symbol.node is not None:
        seconds = request.settings.docs.timeout_ms / 1000
        summary, rejected = generate.summary_result(engine, model, symbol.node, seconds, cancel)
        if summary and not rejected:
            parts.append(f"{GENERATED} {summary}")
        elif summary:  # degenerate: say so rather than show it
            parts.append(f"*jpilot: the model's summary was not shown ({rejected}).*")
    return "\n\n".join(parts)


@hookimpl
def jpilot_code_actions(
    request: CompletionRequest, start: int, end: int, diagnostics: list
) -> list[Action] | None:
    """Offer "Generate docstring" inside an undocumented def, "Explain" on a selection."""
    if request.language_id != "python" or ignored(request):
        return None  # an ignored file gets no model action
    text, actions = request.text, []
    first, _ = line_col(text, start)
    last, _ = line_col(text, max(start, end - 1) if end > start else start)
    node = enclosing_definition(text, first) if parse(text) is not None else None
    if (
        node is not None
        and request.feature_on("docstring")
        and generate.docstring_insert_line(node) is not None
    ):
        import ast

        if ast.get_docstring(node) is None:
            actions.append(Action(f"Generate docstring for {node.name}", "refactor.rewrite",
                                  {"action": "docstring", "line": first}))  # fmt: skip
    if end > start and request.feature_on("explain"):
        actions.append(Action("Explain selection (insert a comment)", "refactor.rewrite",
                              {"action": "explain", "first": first, "last": last}))  # fmt: skip
    return actions


@hookimpl
def jpilot_resolve_action(
    request: CompletionRequest, data: dict, engine: Any, cancel: Any
) -> list[Edit] | None:
    """Run the model for a docs action chosen by the user."""
    if engine is None or data.get("action") not in ("docstring", "explain"):
        return None
    if not request.feature_on(str(data["action"])):  # an action offered before a model change
        return []
    text = model_text(request)
    if text is None:  # an ignored file
        return []
    seconds = request.settings.docs.timeout_ms / 1000
    if data["action"] == "docstring":
        node = enclosing_definition(text, int(data["line"]))
        ins = generate.docstring(engine, text, node, seconds, cancel) if node else None
    else:
        ins = generate.explain(engine, text, int(data["first"]), int(data["last"]), seconds, cancel)
    if ins is None:
        return []
    at = line_start(text, ins.line)
    return [Edit(at, at, ins.text)]


@hookimpl
def jpilot_execute_command(
    command: str, request: CompletionRequest, arguments: list, engine: Any, cancel: Any
) -> dict | None:
    """`jpilot.explain` [uri, range]: return the explanation as text."""
    if command != "jpilot.explain" or engine is None:
        return None
    first, last = int(arguments[0]), int(arguments[1])
    if not request.feature_on("explain"):
        return {"line": first, "comment": "", "explanation": lacking_message("explain",
                request.abilities)}  # fmt: skip
    text = model_text(request)
    if text is None:
        return {"line": first, "comment": "", "explanation": IGNORED}
    seconds = request.settings.docs.timeout_ms / 1000
    ins = generate.explain(engine, text, first, last, seconds, cancel)
    comment = ins.text if ins else ""
    explanation = " ".join(ln.strip().lstrip("#").strip() for ln in comment.splitlines())
    if ins is not None and ins.rejected:
        explanation = f"the model's explanation was not shown ({ins.rejected})"
    return {"line": first, "comment": comment, "explanation": explanation}
