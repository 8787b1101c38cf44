"""An example jpilot plugin: never suggest code that leaves a TODO/FIXME behind.

Install it with `pip install ./examples/jpilot-no-todo`; its pyproject.toml registers
it in the `jpilot.plugins` entry-point group under the name `no-todo`, so the setting
`plugins.no-todo.enabled` turns it off.
"""

from __future__ import annotations

import re

from jpilot.plugins.api import CompletionRequest, Suggestion, hookimpl

BANNED = re.compile(r"\b(TODO|FIXME|XXX)\b")
dropped = 0  # suggestions dropped so far, reported by `jpilot.status`


@hookimpl(trylast=True)
def jpilot_postprocess(request: CompletionRequest, suggestion: Suggestion) -> None:
    """Cut the suggestion before its first line that mentions TODO/FIXME/XXX."""
    global dropped
    lines = suggestion.text.split("\n")
    for i, line in enumerate(lines):
        if BANNED.search(line):
            suggestion.text = "\n".join(lines[:i]).rstrip()
            if not suggestion.text:
                suggestion.dropped_by = "no-todo"
            dropped += 1
            return


@hookimpl
def jpilot_status() -> dict[str, int]:
    """Report how many suggestions this plugin has cut."""
    return {"dropped": dropped}
