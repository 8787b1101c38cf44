"""The hooks a jpilot plugin can implement, with how the server merges their answers.

The server calls each plugin's implementation separately (see jpilot.lsp.plugins): a
plugin that raises is logged and skipped for that call, and a plugin whose
`plugins.<name>.enabled` setting is false is not called at all. Implementations run in
pluggy's order: `tryfirst` ones first, then the most recently registered.

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


@hookspec(firstresult=True)
def jpilot_ignore_document(request: CompletionRequest) -> bool | None:
    """Say whether the document must never reach the model (ignored file, secrets file).

    Args: the request. Returns True to ignore, None to let the next plugin decide.
    Merge: first non-None answer wins; no answer means "not ignored".
    """


@hookspec(firstresult=True)
def jpilot_generation_plan(request: CompletionRequest) -> GenerationPlan | None:
    """Decide how many tokens to generate, single- or multi-line, and the stop strings.

    Args: the request (its `single_line`/`max_tokens` carry the adaptive budget, which
    the plan must respect). Returns a GenerationPlan, or None to pass.
    Merge: first non-None answer wins; no answer means no completion.
    """


@hookspec(firstresult=True)
def jpilot_build_prompt(
    request: CompletionRequest, tokenizer: Tokenizer, budget: int
) -> Prompt | None:
    """Build the prompt token ids for the request, at most `budget` tokens long.

    Args: the request, the bundle's tokenizer (with `fim` ids or None), the token budget.
    Returns a Prompt, or None to pass. Must scrub secrets and honour ignore rules.
    Merge: first non-None answer wins; no answer means no completion.
    """


@hookspec
def jpilot_postprocess(request: CompletionRequest, suggestion: Suggestion) -> None:
    """Edit a model suggestion in place: cut it, trim it, or empty it to drop it.

    Args: the request and the suggestion (set `suggestion.text = ""` and
    `suggestion.dropped_by` to drop it). Returns nothing.
    Merge: every implementation runs, in order, each seeing the previous one's edits;
    once the text is empty the rest are skipped.
    """


@hookspec
def jpilot_inline_items(
    request: CompletionRequest, suggestion: Suggestion, range: types.Range
) -> list[types.InlineCompletionItem] | None:
    """Turn a final suggestion into ghost-text items for textDocument/inlineCompletion.

    Args: the request, the non-empty suggestion and its LSP range (already converted to
    the client's position encoding). Returns items, or None.
    Merge: the lists of all plugins are concatenated, in call order.
    """


@hookspec
def jpilot_completion_items(
    request: CompletionRequest, suggestion: Suggestion, range: types.Range
) -> list[types.CompletionItem] | None:
    """Turn a final suggestion into items for textDocument/completion.

    Args: as for jpilot_inline_items; `range` runs from the start of the word before
    the cursor to the end of the replaced text, so an item's textEdit must use it and
    start its new text with that word. Returns items, or None.
    Merge: the lists of all plugins are concatenated, in call order.
    """


@hookspec
def jpilot_status() -> dict[str, Any] | None:
    """Add plugin facts to the `jpilot.status` command's answer.

    Args: none. Returns a dict of JSON-able facts, or None.
    Merge: dicts are merged under the plugin's name.
    """


# ------------------------------------------------------------- docs and debugging hints
# These hooks get `engine` (None while no model is loaded: answer what needs no model)
# and, where model work can be long, a `cancel` token to pass to the engine. They run
# on the server's features thread, never on the event loop.


@hookspec(firstresult=True)
def jpilot_hover(request: CompletionRequest, engine: Engine | None, cancel: Any) -> str | None:
    """Return Markdown for a hover at `request.offset`.

    Args: the request (the cursor is `offset`), the engine or None, and a cancel token
    (an Event set when the client cancels the hover; model work should check it).
    Merge: first non-None answer wins; no answer means no hover.
    """


@hookspec
def jpilot_code_actions(
    request: CompletionRequest, start: int, end: int, diagnostics: list[types.Diagnostic]
) -> list[Action] | None:
    """Offer code actions for the selection text[start:end]; must be cheap (no model).

    Args: the request, the selection offsets, and the client's diagnostics in range.
    Returns Actions; one with `edits=None` is computed later by jpilot_resolve_action.
    Merge: the lists of all plugins are concatenated, in call order.
    """


@hookspec(firstresult=True)
def jpilot_resolve_action(
    request: CompletionRequest, data: dict[str, Any], engine: Engine | None, cancel: Any
) -> list[Edit] | None:
    """Compute the edits of an action the user picked (codeAction/resolve).

    Args: the request (a fresh snapshot at the action's document version), the action's
    `data`, the engine, a cancel token. Returns the edits ([] for "nothing to change"),
    or None if the action is not this plugin's.
    Merge: first non-None answer wins.
    """


@hookspec
def jpilot_diagnostics(
    request: CompletionRequest, engine: Engine | None, cancel: Any
) -> list[Finding] | None:
    """Return diagnostics for the whole document (run on open and save, debounced).

    Args: the request, the engine or None, a cancel token set by any edit.
    Merge: the lists are concatenated, then sorted by `Finding.score`, highest first.
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
    them, the engine, a cancel token. Returns JSON-able data, or None if not this plugin's.
    Merge: first non-None answer wins.
    """
