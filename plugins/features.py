"""The data the docs and debug hooks exchange with the server: edits, actions, findings.

Like jpilot.plugins.api, everything is a plain dataclass with Python string offsets into
`CompletionRequest.text`; the server turns offsets into LSP ranges with the document's
position codec, and `Action.data` travels to the client and back (codeAction/resolve),
so it must be JSON-able.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Edit:
    """Replace text[start:end] with `text` (start == end inserts)."""

    start: int
    end: int
    text: str


@dataclass
class Action:
    """A code action; `edits` None means "compute on codeAction/resolve" (model work)."""

    title: str
    kind: str  # an lsprotocol CodeActionKind value, e.g. "quickfix", "refactor.rewrite"
    data: dict[str, Any]  # JSON-able; the server adds "plugin", "uri" and "version"
    edits: list[Edit] | None = None
    diagnostic_codes: list[str] = field(default_factory=list)  # the findings it fixes
    preferred: bool = False


@dataclass
class Finding:
    """A diagnostic: text[start:end] gets `message`."""

    start: int
    end: int
    message: str
    severity: int  # lsprotocol DiagnosticSeverity: 1 error, 2 warning, 3 information, 4 hint
    code: str  # e.g. "surprising-line", "syntax-error"
    data: dict[str, Any] = field(default_factory=dict)  # JSON-able; e.g. the score
    score: float = 0.0  # order: findings are published most surprising first
