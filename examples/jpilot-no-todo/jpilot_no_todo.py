"""Example jpilot plugin: never suggest code that leaves a TODO, FIXME or XXX behind."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jpilot.plugins.api import CompletionRequest, Suggestion, hookimpl

NAME = "no-todo"  # the entry-point name: the settings key plugins.no-todo
dropped = 0


@dataclass
class NoTodoSettings:
    words: list[str] = field(default_factory=lambda: ["TODO", "FIXME", "XXX"])  # cut at these


@hookimpl
def jpilot_settings() -> NoTodoSettings:
    """Declare `plugins.no-todo.words` (a list of strings) and its default."""
    return NoTodoSettings()


@hookimpl(trylast=True)  # after the built-in clean-up, so it sees the text the user would
def jpilot_postprocess(request: CompletionRequest, suggestion: Suggestion) -> None:
    """Cut the suggestion before its first line that mentions one of the words."""
    global dropped
    words = request.settings.plugins[NAME].options.words
    banned = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b")
    lines = suggestion.text.split("\n")
    for i, line in enumerate(lines):
        if words and banned.search(line):
            suggestion.text = "\n".join(lines[:i]).rstrip()
            if not suggestion.text:
                suggestion.dropped_by = NAME
            dropped += 1
            return


@hookimpl
def jpilot_status() -> dict[str, int]:
    """Report how many suggestions this plugin has cut."""
    return {"dropped": dropped}
