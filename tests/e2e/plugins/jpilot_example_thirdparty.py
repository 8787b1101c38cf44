"""A third-party plugin as an outside author would write it, implementing every hook.

Its settings (`plugins.example.*`) choose how it behaves: "good" answers correctly and
adds to what the built-ins do; "wrong-types" returns the wrong type from every hook that
returns something (and text from jpilot_postprocess), so a test can check that the
server rejects each answer and the built-ins still answer. It counts its calls per hook
and reports them with jpilot_status.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lsprotocol import types

from jpilot.plugins.api import hookimpl
from jpilot.plugins.features import Action, Edit, Finding

NAME = "example"
calls: Counter[str] = Counter()


@dataclass
class ExampleSettings:
    mode: str = field(default="good", metadata={"choices": ("good", "wrong-types")})
    note: str = "third-party note"  # added to every hover
    max_findings: int = field(default=1, metadata={"range": (0, 10)})


def options(request) -> ExampleSettings:
    """Return this plugin's settings as the server parsed them."""
    return request.settings.plugins[NAME].options


def wrong(request) -> bool:
    """Return whether the settings ask for wrong answers."""
    return options(request).mode == "wrong-types"


@hookimpl
def jpilot_settings() -> ExampleSettings:
    calls["jpilot_settings"] += 1
    return ExampleSettings()


@hookimpl
def jpilot_ignore_document(request):
    calls["jpilot_ignore_document"] += 1
    return "no" if wrong(request) else None


@hookimpl
def jpilot_generation_plan(request):
    calls["jpilot_generation_plan"] += 1
    return {"max_tokens": 3} if wrong(request) else None


@hookimpl
def jpilot_build_prompt(request, tokenizer, budget):
    calls["jpilot_build_prompt"] += 1
    return [1, 2, 3] if wrong(request) else None


@hookimpl(trylast=True)
def jpilot_postprocess(request, suggestion):
    calls["jpilot_postprocess"] += 1
    if wrong(request):
        return "replaced text"
    suggestion.text = suggestion.text.replace("TODO", "")
    return None


@hookimpl
def jpilot_inline_items(request, suggestion, range):
    calls["jpilot_inline_items"] += 1
    if wrong(request):
        return {"insertText": "x"}
    return None


@hookimpl
def jpilot_completion_items(request, suggestion, range):
    calls["jpilot_completion_items"] += 1
    if wrong(request):
        return [{"label": "x"}]
    return [types.CompletionItem(label="example item", sort_text="1")]


@hookimpl
def jpilot_hover(request, engine, cancel):
    calls["jpilot_hover"] += 1
    return ["a list, not Markdown"] if wrong(request) else None


@hookimpl
def jpilot_hover_sections(request, engine, cancel):
    calls["jpilot_hover_sections"] += 1
    return "a string, not a list" if wrong(request) else [f"**example:** {options(request).note}"]


@hookimpl
def jpilot_code_actions(request, start, end, diagnostics):
    calls["jpilot_code_actions"] += 1
    if wrong(request):
        return [Action("bad", "quickfix", data="not a dict")]  # type: ignore[arg-type]
    return [Action("Example: add a marker", "quickfix", {"action": "example-marker"})]


@hookimpl
def jpilot_resolve_action(request, data, engine, cancel):
    calls["jpilot_resolve_action"] += 1
    if data.get("action") != "example-marker":
        return None
    return "edit" if wrong(request) else [Edit(0, 0, "# example\n")]


@hookimpl
def jpilot_diagnostics(request, engine, cancel):
    calls["jpilot_diagnostics"] += 1
    if wrong(request):
        return [{"start": 0, "end": 1, "message": "a dict, not a Finding"}]
    limit = options(request).max_findings
    return [Finding(0, 1, "example: first character", 3, "example-first", score=-1.0)][:limit]


@hookimpl
def jpilot_execute_command(command, request, arguments, engine, cancel):
    calls["jpilot_execute_command"] += 1
    return None


@hookimpl
def jpilot_status():
    calls["jpilot_status"] += 1
    return dict(calls)
