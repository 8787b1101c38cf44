"""The data a plugin sees and returns: requests, prompts, generation plans, suggestions.

Everything here is a plain dataclass built from a snapshot of the editor's buffer, so a
hook never touches pygls objects and can be unit-tested with literals. Offsets are
Python string indexes (code points) into `CompletionRequest.text`; the server converts
them to LSP positions with the document's position codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from jpilot.plugins.settings import Settings

PROJECT = "jpilot"
hookimpl = pluggy.HookimplMarker(PROJECT)  # plugins decorate their hooks with this


@dataclass(frozen=True)
class OpenDocument:
    """Another document the editor has open (for cross-file snippets)."""

    uri: str
    language_id: str
    text: str
    path: Path | None = None  # local file path, or None for untitled/remote documents


@dataclass
class CompletionRequest:
    """One completion request: a snapshot of the buffer and where the cursor is."""

    uri: str
    language_id: str
    text: str  # the whole buffer at `version` (a window of it when `whole` is False)
    offset: int  # cursor, as an index into `text`
    version: int | None  # document version the snapshot was taken at
    settings: Settings
    path: Path | None = None  # local file path, or None
    open_documents: list[OpenDocument] = field(default_factory=list)  # the others
    workspace_roots: list[Path] = field(default_factory=list)
    single_line: bool = False  # forced by the adaptive latency budget
    max_tokens: int | None = None  # lowered by the adaptive latency budget
    branching: bool = True  # False: the adaptive latency budget turned branching off
    # the loaded bundle's measured abilities (Manifest.abilities); None: no model loaded
    abilities: dict[str, float] | None = None
    # A document over context.largeFileKb: `text` is only a window of it around the cursor
    # (`whole` False), starting `text_start` characters in, on the document's line
    # `first_line` after `first_units` code units of it. No whole-file pass (hints, the
    # syntax check) runs on such a request; offsets stay indexes into `text`.
    whole: bool = True
    text_start: int = 0
    first_line: int = 0
    first_units: int = 0

    def feature_on(self, feature: str) -> bool:
        """Return whether a model-written feature ("summary", "docstring", "explain",
        "hints") is on: its setting if true or false, else the bundle's measured ability."""
        from jpilot.model.abilities import feature_on

        setting = {
            "summary": self.settings.docs.summary,
            "docstring": self.settings.docs.docstring,
            "explain": self.settings.docs.explain,
            "hints": self.settings.hints.surprisal,
        }[feature]
        return feature_on(setting, self.abilities, feature)

    @property
    def prefix(self) -> str:
        """Return the text before the cursor."""
        return self.text[: self.offset]

    @property
    def suffix(self) -> str:
        """Return the text after the cursor."""
        return self.text[self.offset :]

    @property
    def line_prefix(self) -> str:
        """Return the cursor line's text before the cursor."""
        start = max(self.text.rfind("\n", 0, self.offset), self.text.rfind("\r", 0, self.offset))
        return self.text[start + 1 : self.offset]

    @property
    def line_suffix(self) -> str:
        """Return the cursor line's text after the cursor, without the line break."""
        ends = [i for i in (self.text.find(c, self.offset) for c in "\r\n") if i >= 0]
        return self.text[self.offset : min(ends, default=len(self.text))]


@dataclass
class Prompt:
    """The token ids sent to the model, and what went into them (no text is logged)."""

    ids: list[int]
    fim: bool  # built by Tokenizer.fim_prompt (PSM or SPM order)
    prefix_tokens: int = 0
    suffix_tokens: int = 0
    snippet_tokens: int = 0
    window_start: int = 0  # offset in the buffer where the prefix window starts
    scrubbed: int = 0  # secrets replaced
    debug_text: str = ""  # the prompt as text, kept only when debug.logPrompts is on
    heal: bytes = b""  # token healing: the prefix's last token, dropped from `ids`; the
    # completion must start with these bytes (see jpilot.model.healing)


@dataclass
class GenerationPlan:
    """How much to generate and when to stop, decided before the model runs."""

    max_tokens: int
    multiline: bool
    stop: list[str] = field(default_factory=list)
    temperature: float = 0.0
    top_p: float = 1.0
    branches: int = 1  # greedy: first tokens tried, the likeliest first line kept


@dataclass
class Suggestion:
    """A proposed insertion at the cursor; post-processors edit `text` in place.

    The suggestion replaces `text[offset:offset + replace]` of the buffer (replace is 0
    for a pure insertion). An empty `text` means "show nothing".
    """

    text: str
    offset: int
    replace: int = 0
    finish_reason: str = ""
    dropped_by: str = ""  # the post-processor that emptied it, for logs and tests
    # geometric-mean probability of the model's tokens on the first line with code (what
    # the user sees first); None where the engine does not say (a pool)
    confidence: float | None = None


def word_before(line_prefix: str) -> str:
    """Return the identifier characters just before the cursor (what a client filters on)."""
    end = len(line_prefix)
    start = end
    while start > 0 and (line_prefix[start - 1].isalnum() or line_prefix[start - 1] in "_$"):
        start -= 1
    return line_prefix[start:end]
