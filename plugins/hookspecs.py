"""The hooks a jpilot plugin can implement, with how the server merges their answers.

This module is the one source of the hook reference in docs/PLUGINS.md
(`python -m jpilot.plugins.reference --write docs/PLUGINS.md` regenerates it; a test
fails when the two differ). Each docstring has the same parts: a summary line, then
`Args:`, `Returns:`, `Merge:` and `Built-ins:` paragraphs.

The server calls each plugin's implementation separately (see jpilot.lsp.plugins): a
plugin that raises, or returns something other than its hook's declared return type,
is logged, counted in `jpilot.status` and skipped for that call; a plugin whose
`plugins.<name>.enabled` setting is false is not called at all. Implementations run in
pluggy's order: `tryfirst` ones first, then the most recently registered (third-party
plugins load after the built-ins, so they are asked first), then `trylast` ones.

Hooks that build or transform a completion run on the engine's worker thread, not on
the event loop, so they may take a few milliseconds; they must not block on I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy
from lsprotocol import types

from jpilot.plugins.api import PROJECT, CompletionRequest, GenerationPlan, Prompt, Suggestion
from jpilot.plugins.features import Action, Edit, Finding

if TYPE_CHECKING:
    from jpilot.model.engine import Engine
    from jpilot.model.tokenizer import Tokenizer

hookspec = pluggy.HookspecMarker(PROJECT)

# ------------------------------------------------------------------------- completion


@hookspec(firstresult=True)
def jpilot_ignore_document(request: CompletionRequest) -> bool | None:
    """Say whether the document must never reach the model (ignored file, secrets file).

    Args: the request.
    Returns: True to ignore, None to let the next plugin decide.
    Merge: first non-None answer wins; no answer means "not ignored". Asked before
    anything else: an ignored document gets no model work from any feature (the docs
    and debug hooks get `engine=None`). Fail closed: a plugin that raises here makes
    the document ignored (a wrong-typed answer is skipped, as in every hook).
    Built-ins: `context` answers True for files matched by .gitignore/.jpilotignore and
    for secrets files (.env, keys), None otherwise.
    """


@hookspec(firstresult=True)
def jpilot_generation_plan(request: CompletionRequest) -> GenerationPlan | None:
    """Decide how many tokens to generate, single- or multi-line, and the stop strings.

    Args: the request (its `single_line`/`max_tokens` carry the adaptive budget, which
    the plan must respect).
    Returns: a GenerationPlan, or None to pass.
    Merge: first non-None answer wins; no answer means no completion.
    Built-ins: `completion` always answers (from `completion.*` settings), so a
    third-party plan, asked first, replaces it; return None to keep it.
    """


@hookspec(firstresult=True)
def jpilot_build_prompt(
    request: CompletionRequest, tokenizer: Tokenizer, budget: int
) -> Prompt | None:
    """Build the prompt token ids for the request, at most `budget` tokens long.

    Args: the request, the bundle's tokenizer (`encode`, `decode`, `fim` ids or None),
    the token budget.
    Returns: a Prompt, or None to pass. Must scrub secrets and honour ignore rules.
    Merge: first non-None answer wins; no answer means no completion.
    Built-ins: `context` always answers (prefix and suffix windows, snippets from other
    open files, secrets scrubbed), so a third-party prompt, asked first, replaces it.
    """


@hookspec
def jpilot_postprocess(request: CompletionRequest, suggestion: Suggestion) -> None:
    """Edit a model suggestion in place: cut it, trim it, or empty it to drop it.

    Args: the request and the suggestion (set `suggestion.text = ""` and
    `suggestion.dropped_by` to drop it).
    Returns: nothing (None); returning the new text instead of setting it is an error.
    Merge: every implementation runs, in order, each seeing the previous one's edits;
    once the text is empty the rest are skipped.
    Built-ins: `postprocess` (stop at the block's end, drop repeated lines, trim the
    overlap with the text after the cursor, parse check). A plain third-party hook runs
    before it and sees raw model text; mark it `@hookimpl(trylast=True)` to see the
    cleaned text.
    """


@hookspec
def jpilot_inline_items(
    request: CompletionRequest, suggestion: Suggestion, range: types.Range
) -> list[types.InlineCompletionItem] | None:
    """Turn a final suggestion into ghost-text items for textDocument/inlineCompletion.

    Args: the request, the non-empty suggestion and its LSP range (already converted to
    the client's position encoding).
    Returns: a list of lsprotocol InlineCompletionItem, or None.
    Merge: the lists of all plugins are concatenated, in call order.
    Built-ins: `completion` adds one item (the suggestion over `range`), after any
    third-party items.
    """


@hookspec
def jpilot_completion_items(
    request: CompletionRequest, suggestion: Suggestion, range: types.Range
) -> list[types.CompletionItem] | None:
    """Turn a final suggestion into items for textDocument/completion.

    Args: as for jpilot_inline_items; `range` runs from the start of the word before
    the cursor to the end of the replaced text, so an item's textEdit must use it and
    start its new text with that word.
    Returns: a list of lsprotocol CompletionItem, or None.
    Merge: the lists of all plugins are concatenated, in call order.
    Built-ins: `completion` adds one item, after any third-party items.
    """


# ------------------------------------------------------------- docs and debugging hints
# These hooks get `engine` (None while no model is loaded: answer what needs no model)
# and, where model work can be long, a `cancel` token (a threading.Event) to pass to
# the engine. They run on the server's features thread, never on the event loop.


@hookspec(firstresult=True)
def jpilot_hover(request: CompletionRequest, engine: Engine | None, cancel: Any) -> str | None:
    """Return Markdown for a hover at `request.offset`, replacing everyone after you.

    Args: the request (the cursor is `offset`), the engine or None, and a cancel token
    (an Event set when the client cancels the hover; model work should check it).
    Returns: Markdown text, or None to pass.
    Merge: first non-None answer wins; no answer means no hover unless a
    jpilot_hover_sections hook adds something. To add to the hover instead of
    replacing it, implement jpilot_hover_sections.
    Built-ins: `docs` answers in Python files (signature, docstring, a model-written
    summary); a third-party jpilot_hover is asked first and hides it.
    """


@hookspec
def jpilot_hover_sections(
    request: CompletionRequest, engine: Engine | None, cancel: Any
) -> list[str] | None:
    """Add Markdown sections to the hover at `request.offset`, below the main answer.

    Args: as for jpilot_hover.
    Returns: a list of Markdown sections (each shown as its own paragraph), or None.
    Merge: all run, in call order; the sections are appended after the jpilot_hover
    answer, separated by horizontal rules. With no jpilot_hover answer, the sections
    alone make the hover.
    Built-ins: none implement it, so every section appears below the `docs` hover.
    """


@hookspec
def jpilot_code_actions(
    request: CompletionRequest, start: int, end: int, diagnostics: list[types.Diagnostic]
) -> list[Action] | None:
    """Offer code actions for the selection text[start:end]; must be cheap (no model).

    Args: the request, the selection offsets, and the client's diagnostics in range
    (lsprotocol Diagnostic; jpilot's own have source "jpilot" and the Finding's `data`).
    Returns: a list of Action; one with `edits=None` is computed later by
    jpilot_resolve_action.
    Merge: the lists of all plugins are concatenated, in call order.
    Built-ins: `docs` ("Generate docstring", "Explain selection") and `debug` (quick
    fixes for its hints and syntax errors), after any third-party actions.
    """


@hookspec(firstresult=True)
def jpilot_resolve_action(
    request: CompletionRequest, data: dict[str, Any], engine: Engine | None, cancel: Any
) -> list[Edit] | None:
    """Compute the edits of an action the user picked (codeAction/resolve).

    Args: the request (a fresh snapshot at the action's document version), the action's
    `data` (with "plugin", "uri" and "version" added by the server), the engine, a
    cancel token.
    Returns: a list of Edit ([] for "nothing to change"), or None if the action is not
    this plugin's (check `data["plugin"]` or your own keys).
    Merge: first non-None answer wins.
    Built-ins: `docs` and `debug` answer for their own actions only.
    """


@hookspec
def jpilot_diagnostics(
    request: CompletionRequest, engine: Engine | None, cancel: Any
) -> list[Finding] | None:
    """Return diagnostics for the whole document (run on open and save, debounced).

    Args: the request, the engine or None, a cancel token set by any edit.
    Returns: a list of Finding, or None.
    Merge: the lists are concatenated, then sorted by `Finding.score`, highest first,
    and published together (source "jpilot").
    Built-ins: `debug` (Python syntax errors, score infinity; the model's surprising
    lines and slips).
    """


@hookspec(firstresult=True)
def jpilot_execute_command(
    command: str,
    request: CompletionRequest,
    arguments: list[Any],
    engine: Engine | None,
    cancel: Any,
) -> Any:
    """Run a workspace/executeCommand command the server registered (jpilot.explain).

    Args: the command name, the request, the command's arguments as the server decoded
    them, the engine, a cancel token.
    Returns: JSON-able data, or None if not this plugin's.
    Merge: first non-None answer wins. Only the server's own commands reach plugins;
    a plugin cannot register a new command.
    Built-ins: `docs` answers `jpilot.explain`.
    """


# ------------------------------------------------------------------ status and settings


@hookspec
def jpilot_status() -> dict[str, Any] | None:
    """Add plugin facts to the `jpilot.status` command's answer.

    Args: none.
    Returns: a dict of JSON-able facts, or None.
    Merge: each plugin's dict is kept under its name in `plugins.facts`.
    Built-ins: none implement it.
    """


@hookspec
def jpilot_settings() -> Any:
    """Declare this plugin's own settings: a dataclass instance holding the defaults.

    Args: none. Called once, when the plugin is loaded.
    Returns: an instance of a dataclass (or the dataclass itself) whose fields are the
    setting names (snake_case here, camelCase in JSON), types (bool, int, float, str,
    list or dict) and defaults. A field's `metadata` may hold "choices" (allowed
    values) and "range" ((low, high) for numbers). None: no settings besides `enabled`.
    Merge: kept per plugin. The user's values under `plugins.<name>` are checked
    against it like the server's own settings (a bad value keeps its default and is
    reported with window/showMessage), and every hook then finds them as
    `request.settings.plugins["<name>"].options`, an instance of that dataclass.
    Built-ins: none declare settings (theirs are the server's `completion`, `context`,
    `docs` and `hints` sections).
    """
