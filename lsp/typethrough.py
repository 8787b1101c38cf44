"""Type-through: while the user types the suggestion on screen, keep showing the rest of it.

When the characters typed since a suggestion was shown are the first characters of that
suggestion, and nothing else in the document changed, the rest of it is still what the
model proposed: the server answers with the rest at once and runs no model. The ghost
text then neither flickers nor waits on the model while the user types along it, as in
VS Code's own inline suggestions. Any other edit, or a cursor elsewhere, falls through
to a normal completion, which replaces the remembered suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass

from jpilot.plugins.api import CompletionRequest, Suggestion


@dataclass
class Shown:
    """The last suggestion answered for one document, and the buffer it was made for."""

    text: str  # the document then
    offset: int  # the cursor then
    suggestion: str  # the text shown
    replace: int  # characters after the cursor it replaces


class TypeThrough:
    """Remember each document's last suggestion and continue it as the user types it."""

    def __init__(self) -> None:
        self._shown: dict[str, Shown] = {}

    def remember(self, request: CompletionRequest, suggestion: Suggestion) -> None:
        """Record the suggestion answered for `request`."""
        self._shown[request.uri] = Shown(
            request.text, request.offset, suggestion.text, suggestion.replace
        )

    def forget(self, uri: str) -> None:
        """Drop what was remembered for a document (closed, or nothing shown)."""
        self._shown.pop(uri, None)

    def rest(self, request: CompletionRequest) -> Suggestion | None:
        """Return the rest of the remembered suggestion if the user typed its start."""
        shown = self._shown.get(request.uri)
        if shown is None:
            return None
        typed = request.offset - shown.offset
        if not 0 < typed < len(shown.suggestion):
            return None
        text, old = request.text, shown.text
        if len(text) != len(old) + typed or not shown.suggestion.startswith(
            text[shown.offset : request.offset]
        ):
            return None
        # the text before and after the typed characters must be as it was
        if not (text.startswith(old[: shown.offset]) and text.endswith(old[shown.offset :])):
            return None
        rest = shown.suggestion[typed:]
        return Suggestion(rest, request.offset, shown.replace, finish_reason="typed-through")
