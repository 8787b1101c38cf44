"""The `debug` plugin's hooks: surprisal hints, syntax errors, and their quick fixes.

Diagnostics (computed on open and save, off the completion path):
- a Python syntax error, with a model-proposed fix when one makes the file parse;
- lines the model finds unusually surprising (see surprisal.py), and likely slips (a
  comparison, `and`/`or` or integer that reads better another way given the code after
  it), most surprising first, each saying what the model expected instead and carrying
  its score in `data`.
Quick fixes: "Replace with the model's suggestion" regenerates a hinted line through FIM
(prefix and suffix), computed on codeAction/resolve; a slip's hint also offers its
variant ("Replace `<` with `>`"), and "Apply jpilot's fix" for a syntax error applies the
fix found when the diagnostic was made.
A bundle with a trained bug detector (detected.py) gets its hints instead of the
surprisal and slip hints: likeliest first, at most `hints.maxPerFile`, each saying what
the detector would write instead, with that repair as its quick fix.
The surprisal and slip hints are on where `request.feature_on("hints")` says so
(`hints.surprisal`: true, false, or "auto" = the bundle's measured hint precision);
syntax errors are always reported.
The model sees the document only through `privacy.model_text`: nothing of an ignored
file (then only syntax errors are reported, with no fix), and no secret of any other. A
secret is masked in place, so the scores' offsets hold; no hint is published, and no
line regenerated, where the model saw masked characters.
"""

from __future__ import annotations

import ast
import time
from typing import Any

from jpilot.model.engine import CancelledError, GenerationConfig
from jpilot.plugins.api import CompletionRequest, hookimpl
from jpilot.plugins.debug import detected
from jpilot.plugins.debug.detected import detector_for
from jpilot.plugins.debug.surprisal import Hint, find_hints, slip_scores, token_scores
from jpilot.plugins.features import Action, Edit, Finding
from jpilot.plugins.privacy import hides, model_text
from jpilot.plugins.text import line_span

SURPRISING, SYNTAX, LIKELY_BUG = "surprising-line", "syntax-error", "likely-bug"
KIND_NAMES = {"name": "names", "attr": "attribute names", "keyword": "keywords",
              "op": "operators", "number": "numbers"}  # fmt: skip


def line_bounds(text: str, line: int) -> tuple[int, int, int]:
    """Return (line start, code start after indentation, line end) offsets of a line."""
    start, end = line_span(text, line)
    body = text[start:end]
    return start, start + len(body) - len(body.lstrip()), end


def regenerate_line(
    engine: Any, text: str, line: int, seconds: float, cancel=None, branches: int = 1
) -> Edit | None:
    """Ask the model for a line's code given everything around it (FIM); None if no change.

    `text` is what the model may see (secrets masked). `branches` > 1 keeps the likeliest
    of several line starts (completion.branches).
    """
    _start, code, end = line_bounds(text, line)
    prompt = engine.tokenizer.infill_prompt(text[:code], text[end:], engine.n_positions - 64)
    deadline = time.monotonic() + seconds
    config = GenerationConfig(max_new_tokens=64, stop=["\n"], deadline=deadline, branches=branches)
    new = engine.generate(prompt, config, cancel=cancel).text.rstrip()
    if not new.strip() or new == text[code:end].rstrip():
        return None
    return Edit(code, end, new)


def _apply(text: str, edit: Edit) -> str:
    """Return text with one edit applied."""
    return text[: edit.start] + edit.text + text[edit.end :]


def syntax_finding(
    text: str, engine: Any, seconds: float, cancel=None, model: str | None = None
) -> Finding | None:
    """Return a finding for the first syntax error, with a parsing model fix if found.

    `model` is the text the model may see (`privacy.model_text`; `text` if not given).
    """
    model = text if model is None else model
    try:
        ast.parse(text)
        return None
    except SyntaxError as err:
        error = err
    except ValueError:  # null bytes
        return None
    line = max((error.lineno or 1) - 1, 0)
    line = min(line, text.count("\n"))
    start, code, end = line_bounds(text, line)
    col = min(start + max((error.offset or 1) - 1, 0), end)
    data: dict[str, Any] = {}
    message = f"SyntaxError: {error.msg}"
    if engine is not None:
        for candidate in (line, line - 1):  # errors often surface a line late
            if candidate < 0 or hides(text, model, *line_span(text, candidate)):
                continue  # a line holding a secret is never rewritten from a masked view
            edit = regenerate_line(engine, model, candidate, seconds / 2, cancel)
            if edit is not None:
                try:
                    ast.parse(_apply(text, edit))
                except (SyntaxError, ValueError):
                    continue
                data["fix"] = {"start": edit.start, "end": edit.end, "text": edit.text}
                message += f" (jpilot suggests: {edit.text.strip()})"
                break
    first = col if col < end else code
    return Finding(first, max(end, first), message, 1, SYNTAX, data, score=float("inf"))


@hookimpl
def jpilot_diagnostics(request: CompletionRequest, engine: Any, cancel: Any) -> list[Finding]:
    """Syntax errors and surprising lines of a Python document."""
    if request.language_id != "python":
        return []
    cfg = request.settings.hints
    findings: list[Finding] = []
    text = request.text
    model = model_text(request) if engine is not None else None  # None: ignored
    engine = engine if model is not None else None
    syntax = syntax_finding(text, engine, cfg.timeout_ms / 1000, cancel, model)
    if syntax is not None:
        findings.append(syntax)
    if engine is None or model is None or len(text.encode("utf-8")) > cfg.max_file_kb * 1024:
        return findings
    if not request.feature_on("hints"):  # hints.surprisal, or the bundle's hint precision
        return findings
    severity = 3 if cfg.severity == "information" else 4
    detector = detector_for(engine)
    if detector is not None:  # the bundle's trained detector replaces surprisal and slips
        return findings + detector_findings(detector, request, engine, model, cancel, severity)
    try:
        scores = token_scores(engine, model, cancel)
        slips = slip_scores(engine, model, cancel) if cfg.slips else []
    except CancelledError:  # an edit arrived: this run's answer would be stale anyway
        return findings
    hints = find_hints(model, scores, cfg.threshold, cfg.max_per_file, cfg.min_bits, slips)
    for hint in hints:
        if hides(text, model, *line_span(text, hint.line)):
            continue  # never point into, or offer to rewrite, a line the model saw masked
        data = {"score": round(hint.score, 2), "bits": round(hint.gap_bits, 2),
                "expected": hint.expected, "line": hint.line}  # fmt: skip
        if hint.slip:
            data["fix"] = {"start": hint.start, "end": hint.end, "text": hint.expected,
                           "was": hint.actual}  # fmt: skip
        findings.append(Finding(hint.start, hint.end, hint_message(hint), severity, SURPRISING,
                                data, hint.score))  # fmt: skip
    return findings


def detector_findings(
    detector: Any, request: CompletionRequest, engine: Any, model: str, cancel: Any, severity: int
) -> list[Finding]:
    """The detector's likely bugs, likeliest first, each with its repair as the fix."""
    text = request.text
    try:
        suspects = detector.find(model, engine, cancel, request.settings.hints.max_per_file)
    except CancelledError:  # an edit arrived: this run's answer would be stale anyway
        return []
    out = []
    for s in suspects:
        if hides(text, model, *line_span(text, s.line)) or text[s.start : s.end] != s.was:
            continue  # never point into, or offer to rewrite, a line the model saw masked
        data = {"probability": round(s.probability, 3), "kind": s.kind, "line": s.line,
                "fix": {"start": s.start, "end": s.end, "text": s.new, "was": s.was}}  # fmt: skip
        out.append(Finding(s.start, s.end, detected.message(s), severity, LIKELY_BUG, data,
                           s.probability))  # fmt: skip
    return out


def hint_message(hint: Hint) -> str:
    """Say what is unusual about a hinted line and what the model would write."""
    odds = f"{2**hint.gap_bits:,.0f}" if hint.gap_bits < 40 else "over a trillion"
    if hint.slip:
        return (
            f"Possible slip: did you mean `{hint.expected}`? Given the code before and after, "
            f"the model finds it {odds} times likelier here than `{hint.actual}`"
        )
    expected = f"`{hint.expected}`" if hint.expected else "something else"
    among = KIND_NAMES.get(hint.kind, "tokens")
    return (
        f"Unusual here: the model expected {expected}, not `{hint.actual}` ({odds} times "
        f"likelier); few {among} in this file surprise it as much"
    )


@hookimpl
def jpilot_code_actions(
    request: CompletionRequest, start: int, end: int, diagnostics: list
) -> list[Action]:
    """Quick fixes for jpilot's own diagnostics in the requested range."""
    actions = []
    for diag in diagnostics:
        data = diag.data if isinstance(diag.data, dict) else {}
        if diag.source != "jpilot":
            continue
        if diag.code in (SURPRISING, LIKELY_BUG) and "fix" in data:
            actions.extend(_slip_fix(request.text, data["fix"], diag.code))
        if diag.code == SURPRISING and "line" in data:
            actions.append(Action("Replace with the model's suggestion", "quickfix",
                                  {"action": "regenerate", "line": data["line"]},
                                  diagnostic_codes=[SURPRISING]))  # fmt: skip
        elif diag.code == SYNTAX and "fix" in data:
            fix = data["fix"]
            edit = Edit(int(fix["start"]), int(fix["end"]), str(fix["text"]))
            actions.append(Action("Apply jpilot's fix", "quickfix", {"action": "syntax-fix"},
                                  [edit], [SYNTAX], preferred=True))  # fmt: skip
    return actions


def _slip_fix(text: str, fix: dict, code: str = SURPRISING) -> list[Action]:
    """The edit a slip's (or the detector's) hint proposes, if the document still holds
    the text it would replace."""
    try:
        start, end, was, new = int(fix["start"]), int(fix["end"]), str(fix["was"]), str(fix["text"])
    except (KeyError, TypeError, ValueError):  # data the client sent back mangled
        return []
    if text[start:end] != was:
        return []
    return [Action(f"Replace `{was}` with `{new}`", "quickfix", {"action": "slip-fix"},
                   [Edit(start, end, new)], [code], preferred=True)]  # fmt: skip


@hookimpl
def jpilot_resolve_action(
    request: CompletionRequest, data: dict, engine: Any, cancel: Any
) -> list[Edit] | None:
    """Regenerate a hinted line with the model."""
    if data.get("action") != "regenerate" or engine is None:
        return None
    model, line = model_text(request), int(data["line"])
    if model is None or hides(request.text, model, *line_span(request.text, line)):
        return []  # an ignored file, or a line holding a secret the model cannot see
    seconds = request.settings.hints.timeout_ms / 1000
    branches = request.settings.completion.branches
    edit = regenerate_line(engine, model, line, seconds, cancel, branches)
    return [edit] if edit else []
