"""A real VS Code: the packaged .vsix in code-server, in Debian's Chromium, driven by
puppeteer-core (editors/vscode/test-real/drive.mjs), for each code-server in CODE_SERVERS.

The server runs the tiny random bundle; what it must show (ghost text, hover, quick-fix
edits) is computed in this process with the server's own pipeline and plugin hooks on the
same text, so every assertion is on exact text. On failure the screenshots, the driver's
log and VS Code's logs (jpilot's output channel holds the server's stderr) are kept in
the folder printed at the start ($JPILOT_E2E_ARTIFACTS, or a pytest temporary folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import expected
from vscode_real import (
    CHROMIUM,
    CODE_SERVERS,
    Driver,
    code_server,
    driver_modules,
    next_word,
    prerequisites,
    rendered_markdown,
    vsix,
)

from jpilot.lsp.model_host import ModelHost
from jpilot.lsp.plugins import default_host, hover_markdown
from jpilot.model.bundle import read_manifest
from jpilot.model.engine import Engine
from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.debug.plugin import jpilot_diagnostics, regenerate_line
from jpilot.plugins.settings import parse_settings

# Server settings, given to VS Code as user settings (jpilot.<section>.<key>) and to the
# in-process pipeline that computes what the server will answer.
SETTINGS: dict[str, Any] = {
    "model": {"device": "cpu"},  # + path
    "completion": {"maxTokens": 8, "timeoutMs": 120000, "latencyBudgetMs": 60000},
    "context": {"snippets": False},  # other open files would change the prompt
    "docs": {"summary": True, "timeoutMs": 60000},
    "hints": {"timeoutMs": 60000, "debounceMs": 100},
}
EDITOR = {
    "security.workspace.trust.enabled": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "extensions.autoUpdate": False,
    "update.mode": "none",
    "telemetry.telemetryLevel": "off",
    "editor.minimap.enabled": False,
    # Keep the suggest widget away: Tab must reach the ghost text, as for a user who has
    # not typed a trigger character.
    "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
    "editor.suggestOnTriggerCharacters": False,
}
PYTHON_PATH = "~/.jpilot/bin/python"  # expanded by the extension; HOME is the test's own
# A line to complete: the first of these whose suggestion suits the checks below.
HEADS = [f"def main():\n    for {w} in " for w in ("path", "size", "value", "data")]
CLAMP = (
    "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n"
    "        return hi\n    return x\n\n\nprint(clamp(5, 0, 3))\n"
)
# A server command that fails at once, saying why on stderr (preflight runs it with --version).
FAILING_SERVER = '#!/bin/sh\necho "jpilot-fails: no server here" >&2\nexit 1\n'
# One that passes the preflight but whose `serve` exits at once.
DYING_SERVER = (
    '#!/bin/sh\nif [ "$1" = --version ]; then echo 0.1.0; exit 0; fi\n'
    'echo "jpilot-dies: cannot serve" >&2\nexit 1\n'
)
# editors/vscode/src/preflight.ts: how to fix a server that cannot start.
INSTALL_HINT = (
    "Install jpilot into a Python 3.11+ environment (`python -m pip install /path/to/jpilot`, "
    "a jpilot checkout), then set jpilot.server.pythonPath to that environment's python, or "
    "jpilot.server.command to its `jpilot` executable plus `serve`."
)
HOVER = 'import os\n\n\ndef total(xs):\n    """Add the numbers."""\n    return sum(xs)\n'


def user_settings(bundle: Path, **extra: Any) -> dict[str, Any]:
    """VS Code user settings: the editor's, then SETTINGS under `jpilot.`."""
    out = dict(EDITOR) | {"jpilot.server.pythonPath": PYTHON_PATH}
    for section, values in SETTINGS.items():
        out |= {f"jpilot.{section}.{k}": v for k, v in values.items()}
    return out | {"jpilot.model.path": str(bundle)} | extra


def server_settings(bundle: Path) -> dict[str, Any]:
    return SETTINGS | {"model": SETTINGS["model"] | {"path": str(bundle)}}


def request(bundle: Path, path: Path, text: str, offset: int) -> CompletionRequest:
    """The request the server builds for `text` in `path` (for hooks called directly)."""
    settings, errors = parse_settings(server_settings(bundle))
    assert not errors
    return CompletionRequest(
        uri=path.as_uri(), language_id="python", text=text, offset=offset, version=1,
        settings=settings, path=path, abilities=read_manifest(bundle).abilities,
    )  # fmt: skip


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("JPILOT_E2E_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("vscode-real-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nreal VS Code artifacts (screenshots, logs on failure): {path}", file=sys.stderr)
    return path


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    found = prerequisites()
    driver_modules(found)
    return found


@pytest.fixture(scope="module", params=sorted(CODE_SERVERS))
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def ghost_case(tiny_engine: Engine, tiny_bundle: Path) -> dict[str, Any]:
    """A buffer whose suggestion is one printable line starting with a word of 2+ letters."""
    seen = []
    for head in HEADS:
        out = expected(tiny_engine, "file:///x/a.py", head, len(head), "python",
                       server_settings(tiny_bundle))  # fmt: skip
        text = out.suggestion.text if out.suggestion else ""
        seen.append(text)
        word = next_word(text)
        if text.isprintable() and len(word) >= 2 and word.isalpha() and len(text) > len(word):
            return {"head": head, "ghost": text, "word": word}
    pytest.fail(f"no buffer in HEADS gives a usable suggestion from the tiny model: {seen}")


def session(
    tools: dict[str, str], flavor: str, bundle: Path, base: Path, artifacts: Path,
    settings: dict[str, Any], files: dict[str, str],
) -> tuple[Driver, Path]:  # fmt: skip
    """Start VS Code on a fresh workspace of `files`, with its own HOME (~/.jpilot is this
    virtual environment) and no jpilot on PATH."""
    home, folder = base / "home", base / "workspace"
    home.mkdir(parents=True)
    (home / ".jpilot").symlink_to(Path(sys.prefix), target_is_directory=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8", newline="")
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    config = {
        "codeServer": str(code_server(CODE_SERVERS[flavor])), "vsix": str(vsix(tools)),
        "folder": str(folder), "home": str(home), "userDataDir": str(base / "user-data"),
        "extensionsDir": str(base / "extensions"), "artifacts": str(artifacts),
        "chromium": CHROMIUM, "userSettings": settings,
        "env": {"PATH": path, "VIRTUAL_ENV": "", "PYTHONPATH": ""},
    }  # fmt: skip
    return Driver(config, artifacts, tools["node"]), folder


@pytest.fixture(scope="module")
def vscode(
    tools: dict[str, str], flavor: str, tiny_bundle: Path, ghost_case: dict[str, Any],
    artifacts: Path, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """A trusted workspace with the files the tests edit, one copy of a buffer per test."""
    head = ghost_case["head"]
    files = {f"{n}.py": head[:-2] for n in ("ghost", "word", "escape", "through", "toggle")}
    files |= {"restart.py": head[:-2], "hover.py": HOVER, "slip.py": CLAMP, "regen.py": CLAMP}
    base = tmp_path_factory.mktemp(f"vscode-{flavor}")
    settings = user_settings(tiny_bundle)
    drive, folder = session(tools, flavor, tiny_bundle, base, artifacts / flavor, settings, files)
    print(f"{flavor}: {drive.version}", file=sys.stderr)
    yield {"drive": drive, "folder": folder, "base": base, "settings": settings}
    drive.close()


@pytest.fixture(autouse=True)
def evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    """On a failed test, keep a screenshot and VS Code's logs."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed and "vscode" in request.fixturenames:
        state = request.getfixturevalue("vscode")
        state["drive"].keep_evidence(request.node.name, state["base"] / "user-data")


def type_head(drive: Driver, file: str, head: str) -> None:
    """Open `file` (which holds `head` less its last 2 characters) and type them at the end,
    once the server is ready (a test run on its own starts it here: a keystroke before the
    model loaded gets no suggestion, and nothing asks again)."""
    drive("open", file=file)
    assert not drive("status", wantIcon="codicon-sparkle")["timedOut"]
    drive("keys", combo="Control+End")
    drive("type", text=head[-2:])


def ghost(drive: Driver, want: str) -> str:
    seen = drive("ghost", want=want)
    assert seen["ghost"] == want, f"ghost texts seen: {seen['seen']}"
    return str(seen["ghost"])


def test_server_starts_through_tilde_python_path_and_reports_ready(vscode: dict) -> None:
    drive = vscode["drive"]
    drive("open", file="hover.py")  # a Python file activates the extension
    status = drive("status", wantIcon="codicon-sparkle")
    assert not status["timedOut"], status
    assert status["text"] == "jpilot"
    icons = [entry.split("|")[0] for entry in status["history"]]
    assert icons[0] == "codicon-loading" and icons[-1] == "codicon-sparkle", status["history"]
    home = vscode["base"] / "home"
    starting = f"starting {home}/.jpilot/bin/python"  # ~ expanded, shown while it starts
    assert any(starting in entry for entry in status["history"]), status["history"]


def test_ghost_text_is_exact_and_tab_accepts_it(
    vscode: dict, ghost_case: dict, tiny_engine: Engine, tiny_bundle: Path
) -> None:
    drive, head, want = vscode["drive"], ghost_case["head"], ghost_case["ghost"]
    type_head(drive, "ghost.py", head)
    ghost(drive, want)
    status = drive("status", wantText=r"^jpilot \d+ ms$")
    assert not status["timedOut"], status
    drive("keys", combo="Tab")
    assert drive("save", file="ghost.py")["content"] == head + want
    # The accepted text is gone from the ghost; what shows next is the next suggestion.
    text = head + want
    after = expected(tiny_engine, (vscode["folder"] / "ghost.py").as_uri(), text, len(text),
                     "python", server_settings(tiny_bundle)).suggestion  # fmt: skip
    if after is None or not after.text:
        assert drive("noGhost")["ghost"] is None
    else:
        ghost(drive, after.text)
    drive("keys", combo="Escape")


def test_accept_next_word(vscode: dict, ghost_case: dict) -> None:
    drive, head, want, word = (vscode["drive"], ghost_case["head"], ghost_case["ghost"],
                               ghost_case["word"])  # fmt: skip
    type_head(drive, "word.py", head)
    ghost(drive, want)
    drive("keys", combo="Control+ArrowRight")  # editor.action.inlineSuggest.acceptNextWord
    ghost(drive, want[len(word) :])  # the rest stays on show
    assert drive("save", file="word.py")["content"] == head + word
    drive("keys", combo="Escape")


def test_escape_dismisses_the_ghost_text(vscode: dict, ghost_case: dict) -> None:
    drive, head = vscode["drive"], ghost_case["head"]
    type_head(drive, "escape.py", head)
    ghost(drive, ghost_case["ghost"])
    drive("keys", combo="Escape")
    assert drive("noGhost")["ghost"] is None
    assert drive("save", file="escape.py")["content"] == head


def test_typing_through_keeps_the_rest_of_the_suggestion(vscode: dict, ghost_case: dict) -> None:
    drive, head, want, word = (vscode["drive"], ghost_case["head"], ghost_case["ghost"],
                               ghost_case["word"])  # fmt: skip
    type_head(drive, "through.py", head)
    ghost(drive, want)
    drive("type", text=word)
    ghost(drive, want[len(word) :])
    assert drive("noGhost", forMs=1000, timeoutMs=1500)["ghost"] == want[len(word) :]
    drive("keys", combo="Tab")
    assert drive("save", file="through.py")["content"] == head + want


def test_hover_shows_signature_docstring_and_summary_line(
    vscode: dict, tiny_engine: Engine, tiny_bundle: Path
) -> None:
    drive, path = vscode["drive"], vscode["folder"] / "hover.py"
    offset = HOVER.index("total")
    req = request(tiny_bundle, path, HOVER, offset + 2)
    markdown = hover_markdown(default_host(), req, tiny_engine, threading.Event())
    assert markdown is not None and markdown.startswith("```python\ndef total(xs)\n```")
    drive("open", file="hover.py")
    drive("goto", line=4, column=7)
    shown = [ln.strip() for ln in drive("hover")["text"].splitlines() if ln.strip()]
    lines = rendered_markdown(markdown)
    if lines is None:  # the model's summary holds markdown: check the rest exactly
        assert shown[:2] == ["def total(xs)", "Add the numbers."], shown
        assert shown[2].startswith("jpilot, generated:"), shown
    else:
        assert shown == lines, markdown


def slip_fix(bundle: Path, engine: Engine, path: Path) -> dict[str, Any]:
    """The first slip hint the server publishes for CLAMP: its line and replacement."""
    req = request(bundle, path, CLAMP, 0)
    findings = jpilot_diagnostics(req, engine, threading.Event())
    slips = [f for f in findings if "fix" in f.data]
    assert slips, f"the tiny model finds no slip in CLAMP: {findings}"
    return slips[0].data | {"start": slips[0].start}


def test_slip_quick_fix_applies_its_exact_edit(
    vscode: dict, tiny_engine: Engine, tiny_bundle: Path
) -> None:
    drive, path = vscode["drive"], vscode["folder"] / "slip.py"
    fix = slip_fix(tiny_bundle, tiny_engine, path)["fix"]
    start, end, was, new = int(fix["start"]), int(fix["end"]), fix["was"], fix["text"]
    line = CLAMP[:start].count("\n")
    drive("open", file="slip.py")
    drive("goto", line=2, column=5)  # in clamp, which has no docstring: the docs plugin
    assert "Generate docstring for clamp" in drive("codeActions")["titles"]
    drive("goto", line=line + 1, column=start - CLAMP.rfind("\n", 0, start))
    title = f"Replace `{was}` with `{new}`"
    menu = drive("codeActions", pick=title)
    assert menu["picked"] == title, menu["titles"]
    want = CLAMP[:start] + new + CLAMP[end:]
    assert drive("waitFile", file="slip.py", want=want)["content"] == want


def test_regenerate_quick_fix_applies_the_models_line(
    vscode: dict, tiny_engine: Engine, tiny_bundle: Path
) -> None:
    drive, path = vscode["drive"], vscode["folder"] / "regen.py"
    hint = slip_fix(tiny_bundle, tiny_engine, path)
    line = int(hint["line"])
    branches = SETTINGS.get("completion", {}).get("branches", 3)
    edit = regenerate_line(tiny_engine, CLAMP, line, 60.0, None, branches)
    want = CLAMP if edit is None else CLAMP[: edit.start] + edit.text + CLAMP[edit.end :]
    drive("open", file="regen.py")
    drive("goto", line=line + 1, column=hint["start"] - CLAMP.rfind("\n", 0, hint["start"]))
    title = "Replace with the model's suggestion"
    menu = drive("codeActions", pick=title)
    assert menu["picked"] == title, menu["titles"]
    assert drive("waitFile", file="regen.py", want=want)["content"] == want


def test_toggle_pauses_suggestions(vscode: dict, ghost_case: dict) -> None:
    drive, head = vscode["drive"], ghost_case["head"]
    drive("open", file="toggle.py")
    drive("command", title="jpilot: Toggle inline suggestions")
    assert not drive("status", wantText=r"\(paused\)$")["timedOut"]
    drive("keys", combo="Control+End")
    drive("type", text=head[-2:])
    assert drive("noGhost", forMs=3000)["ghost"] is None
    drive("command", title="jpilot: Toggle inline suggestions")
    assert not drive("status", wantText=r"^jpilot( \d+ ms)?$")["timedOut"]
    drive("type", text=" ")
    drive("keys", combo="Backspace")  # an edit asks again
    ghost(drive, ghost_case["ghost"])
    drive("keys", combo="Escape")


def test_show_log_opens_the_jpilot_channel(vscode: dict) -> None:
    drive = vscode["drive"]
    drive("command", title="jpilot: Show log")
    seen = drive("output", want="jpilot")
    assert seen["visible"] and seen["channel"] == "jpilot", seen


def test_restart_brings_the_server_back(vscode: dict, ghost_case: dict) -> None:
    drive = vscode["drive"]
    before = len(drive("status")["history"])
    drive("command", title="jpilot: Restart server")
    status = drive("status", wantIcon="codicon-sparkle")
    again = [e.split("|")[0] for e in status["history"][before:]]
    assert "codicon-loading" in again and again[-1] == "codicon-sparkle", status["history"]
    type_head(drive, "restart.py", ghost_case["head"])
    ghost(drive, ghost_case["ghost"])
    drive("keys", combo="Escape")


@contextlib.contextmanager
def broken_session(
    tools: dict[str, str], flavor: str, bundle: Path, artifacts: Path, base: Path,
    name: str, extra: dict[str, Any],
) -> Iterator[Driver]:  # fmt: skip
    """A session of its own whose user settings hold `extra` from the start (settings
    changed mid-session are a separate matter), with the extension active on a.py; on a
    failure it keeps the evidence, and it always closes."""
    settings = user_settings(bundle, **extra)
    files = {"a.py": "x = 1\n"}
    drive, _ = session(tools, flavor, bundle, base, artifacts / f"{flavor}-{name}", settings, files)
    try:
        drive("open", file="a.py")  # a Python file activates the extension
        yield drive
    except BaseException:
        drive.keep_evidence(name, base / "user-data")
        raise
    finally:
        drive.close()


def shown(drive: Driver, message: str) -> None:
    """`message` is a notification of its own, and the red status item's reason."""
    seen = drive("notifications", want=message, timeoutMs=60000)["seen"]
    assert message in seen, seen
    status = drive("status", wantIcon="codicon-error", wantLabel=f"jpilot: error\n{message}\n")
    assert not status["timedOut"], status
    assert status["text"] == "jpilot", status


def test_a_missing_model_shows_an_error(
    tools: dict[str, str], flavor: str, tiny_bundle: Path, artifacts: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-bundle"
    settings, errors = parse_settings(server_settings(missing))
    assert not errors
    host = ModelHost()
    host.load(settings.model).result(timeout=60)
    message = host.error  # what the server shows: its own ModelHost's words
    assert message and message.startswith("jpilot has no model") and str(missing) in message
    with broken_session(tools, flavor, tiny_bundle, artifacts, tmp_path / "vscode", "no-model",
                        {"jpilot.model.path": str(missing)}) as drive:  # fmt: skip
        shown(drive, message)


def test_a_server_that_cannot_start_shows_a_message(
    tools: dict[str, str], flavor: str, tiny_bundle: Path, artifacts: Path, tmp_path: Path
) -> None:
    script = tmp_path / "jpilot-fails"
    script.write_text(FAILING_SERVER, encoding="utf-8")
    script.chmod(0o755)
    message = (f"jpilot: `{script} --version` failed (1): jpilot-fails: no server here. "
               f"{INSTALL_HINT}")  # fmt: skip
    command = {"jpilot.server.command": [str(script), "serve"]}
    with broken_session(tools, flavor, tiny_bundle, artifacts, tmp_path / "vscode",
                        "cannot-start", command) as drive:  # fmt: skip
        shown(drive, message)


def test_a_server_that_exits_at_start_turns_the_status_red(
    tools: dict[str, str], flavor: str, tiny_bundle: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Past the preflight (--version works), `serve` exits at once: the client restarts it
    until the crash limit (MAX_RESTARTS in extension.ts), then the item turns red with the
    reason. Not asserted: a notification. vscode-languageclient's own errors ("Server
    initialization failed. ...") land in the notification centre, but neither jpilot's
    "the server crashed 5 times" nor its "the server did not start" message was ever shown
    on code-server 4.99.4 (checked with the notification recorder and the centre)."""
    script = tmp_path / "jpilot-dies"
    script.write_text(DYING_SERVER, encoding="utf-8")
    script.chmod(0o755)
    command = {"jpilot.server.command": [str(script), "serve"]}
    with broken_session(tools, flavor, tiny_bundle, artifacts, tmp_path / "vscode",
                        "exits", command) as drive:  # fmt: skip
        reason = "jpilot: error\nthe server crashed repeatedly\n"
        status = drive("status", wantIcon="codicon-error", wantLabel=reason)
        assert not status["timedOut"], status
        assert status["text"] == "jpilot", status


def test_untrusted_folder_settings_do_not_choose_the_server(
    tools: dict[str, str], flavor: str, tiny_bundle: Path, ghost_case: dict,
    artifacts: Path, tmp_path: Path,
) -> None:  # fmt: skip
    marker = tmp_path / "ran"
    impostor = tmp_path / "impostor.sh"
    impostor.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n", encoding="utf-8")
    impostor.chmod(0o755)
    folder_settings = {"jpilot.server.command": [str(impostor)],
                       "jpilot.server.pythonPath": str(impostor),
                       "jpilot.model.path": str(tmp_path / "not-a-bundle")}  # fmt: skip
    head = ghost_case["head"]
    files = {".vscode/settings.json": json.dumps(folder_settings), "a.py": head[:-2]}
    settings = user_settings(tiny_bundle) | {
        "security.workspace.trust.enabled": True,
        "security.workspace.trust.startupPrompt": "never",
    }
    kept = artifacts / f"{flavor}-untrusted"
    drive, _ = session(tools, flavor, tiny_bundle, tmp_path / "vscode", kept, settings, files)
    try:
        assert drive("restricted")["restricted"], "the folder opened trusted"
        drive("open", file="a.py")
        assert not drive("status", wantIcon="codicon-sparkle")["timedOut"]
        drive("keys", combo="Control+End")
        drive("type", text=head[-2:])
        ghost(drive, ghost_case["ghost"])  # the user's server and model answered
        status = drive("status", wantIcon="codicon-sparkle")
        assert any(f"starting {tmp_path}/vscode/home/.jpilot/bin/python" in e
                   for e in status["history"]), status["history"]  # fmt: skip
        assert not marker.exists(), "the folder's jpilot.server.command ran"
    except BaseException:
        drive.keep_evidence("untrusted", tmp_path / "vscode" / "user-data")
        raise
    finally:
        drive.close()
