"""Real-client test: headless Neovim 0.12 loads editors/nvim and shows jpilot's ghost text.

Neovim runs with `--clean`, loads the plugin from the repository through 'runtimepath',
opens a named Python file and is driven over RPC with pynvim. The expected suggestion is
computed independently with `jpilot complete` on the same text (greedy, deterministic).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import nvim_executable

pynvim = pytest.importorskip("pynvim", reason="pynvim is in the dev extra")

PLUGIN = Path(__file__).resolve().parents[2] / "editors" / "nvim"
WAIT_S = 60.0  # bound on every wait
T = TypeVar("T")

BEFORE = "import os\n\n\ndef total(xs):\n    return su\n\n\nprint(total([1, 2]))\n"
TYPED = "m("  # typed at the end of line 5: "    return sum(" opens a block
TEXT = BEFORE.replace("return su\n", "return su" + TYPED + "\n")
ROW, COL = 4, len("    return sum(")  # the cursor after typing (0-based row, byte column)
SETTINGS = {
    "model": {"device": "cpu"},  # the path is added per test
    "completion": {"maxTokens": 24, "timeoutMs": 120000, "latencyBudgetMs": 60000},
}


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = WAIT_S,
    describe: Callable[[], Any] | None = None,
) -> T:
    """Poll `probe` until it returns a truthy value; fail with what was last seen on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    seen = describe() if describe is not None else last
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {seen!r}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder (root marker pyproject.toml) with nothing ignored in it."""
    root = tmp_path_factory.mktemp("nvim-project").resolve()
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def settings(tiny_bundle: Path) -> dict[str, Any]:
    """The server settings the test passes to setup{} and to `jpilot complete`."""
    return {**SETTINGS, "model": {**SETTINGS["model"], "path": str(tiny_bundle)}}


@pytest.fixture(scope="module")
def expected(workdir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The suggestion `jpilot complete` computes for TEXT with the cursor at (ROW, COL)."""
    path = workdir / "demo.py"
    path.write_text(TEXT, encoding="utf-8", newline="")
    cmd = [sys.executable, "-m", "jpilot.lsp.cli", "complete", str(path)]
    cmd += ["--line", str(ROW + 1), "--col", str(COL + 1), "--json"]
    cmd += ["--settings", json.dumps(settings)]
    proc = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=WAIT_S, check=False
    )
    assert proc.returncode == 0, proc.stderr
    want = json.loads(proc.stdout)
    assert want["status"] == "ok" and want["text"], want
    assert want["range"] == {"start": {"line": ROW, "character": COL}} | {
        "end": {"line": ROW, "character": COL}
    }
    path.write_text(BEFORE, encoding="utf-8", newline="")  # what the editor opens
    return want


@contextlib.contextmanager
def running_nvim(
    workdir: Path, settings: dict[str, Any], name: str = "", **options: Any
) -> Iterator[Any]:
    """Start headless Neovim, set up the plugin with `options`, open demo.py, wait for jpilot.

    `name` keeps its socket and state apart from other instances running at the same time.
    """
    exe = nvim_executable()
    name = name or ("ghost" if options.get("ghost_text", True) else "items")
    sock = workdir / f"nvim-{name}.sock"
    home = workdir / f"home-{name}"
    env = os.environ | {
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "NVIM_LOG_FILE": str(home / "nvim.log"),
    }
    proc = subprocess.Popen(
        [exe, "--headless", "--clean", "-n", "--listen", str(sock)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for("Neovim's socket", lambda: sock.exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        vim = pynvim.attach("socket", path=str(sock))
        version = vim.exec_lua("return vim.version().minor")
        if not vim.exec_lua("return vim.lsp.inline_completion ~= nil"):
            pytest.fail(f"Neovim 0.{version} has no vim.lsp.inline_completion; need 0.12+")
        vim.exec_lua(
            """
            local plugin, python, settings, options = ...
            vim.opt.runtimepath:prepend(plugin)
            require('jpilot').setup(vim.tbl_extend('force', {
              python = python,
              settings = settings,
              keymaps = { accept = '<Tab>' },
            }, options))
            """,
            str(PLUGIN),
            sys.executable,
            settings,
            options,
        )
        vim.command("edit demo.py")
        wait_for(
            "jpilot to attach to demo.py",
            lambda: vim.exec_lua(
                "return #vim.lsp.get_clients({ bufnr = 0, name = 'jpilot' }) == 1"
                " and vim.lsp.get_clients({ bufnr = 0, name = 'jpilot' })[1].initialized"
            ),
        )
        yield vim
        vim.exec_lua("for _, c in ipairs(vim.lsp.get_clients({ name = 'jpilot' })) do c:stop() end")
        wait_for("jpilot to stop", lambda: vim.exec_lua("return #vim.lsp.get_clients() == 0"), 15)
        vim.command("qall!", async_=True)
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def nvim(workdir: Path, settings: dict[str, Any], expected: dict) -> Iterator[Any]:
    """Headless Neovim with the plugin set up (ghost text) and demo.py open."""
    with running_nvim(workdir, settings) as vim:
        yield vim


def server_status(vim: Any) -> dict[str, Any]:
    """Return the server's jpilot.status answer, fetched through the plugin."""
    result = vim.exec_lua(
        "local s, err = require('jpilot').server_status(5000); return { s or vim.NIL, err }"
    )
    assert result[0] is not None, result[1]
    return result[0]


def capability(vim: Any, name: str) -> bool:
    """Return whether the attached jpilot server advertises a capability."""
    return bool(
        vim.exec_lua(
            "local c = vim.lsp.get_clients({ bufnr = 0, name = 'jpilot' })[1]"
            " return c.server_capabilities[...] and true or false",
            name,
        )
    )


def ghost_text(vim: Any) -> dict[str, Any] | None:
    """Return the inline-completion extmark: its position and the full text it shows."""
    return vim.exec_lua(
        """
        local ns = vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']
        if not ns then return nil end
        local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
        if #marks ~= 1 then return nil end
        local row, col, d = marks[1][2], marks[1][3], marks[1][4]
        local parts = { table.concat(vim.tbl_map(function(c) return c[1] end, d.virt_text or {})) }
        for _, line in ipairs(d.virt_lines or {}) do
          table.insert(parts, table.concat(vim.tbl_map(function(c) return c[1] end, line)))
        end
        return { row = row, col = col, text = table.concat(parts, '\\n'), pos = d.virt_text_pos }
        """
    )


def test_plugin_loads_the_tiny_model(nvim: Any, tiny_bundle: Path) -> None:
    status = wait_for(
        "the model to load",
        lambda: (s := server_status(nvim))["model"]["state"] != "loading" and s,
    )
    assert status["model"]["state"] == "ready", status["model"]
    assert Path(status["model"]["path"]).resolve() == tiny_bundle.resolve()
    assert nvim.exec_lua("return vim.lsp.inline_completion.is_enabled({ bufnr = 0 })")


def test_typing_shows_the_expected_ghost_text_and_tab_accepts_it(
    nvim: Any, expected: dict[str, Any]
) -> None:
    nvim.current.window.cursor = (ROW + 1, 0)
    nvim.input("A" + TYPED)
    wait_for("insert mode", lambda: nvim.api.get_mode()["mode"] == "i")
    assert nvim.current.buffer[ROW] == "    return sum("
    want = expected["text"]
    shown: list[Any] = []
    mark = wait_for(
        f"the ghost text {want!r}",
        lambda: (m := ghost_text(nvim), shown.append(m))[0] and m["text"] == want and m,
        describe=lambda: shown[-1] if shown else None,
    )
    # Shown at the cursor, over the (empty) range the server answered with.
    assert (mark["row"], mark["col"]) == (ROW, COL)
    assert mark["pos"] == "overlay"

    nvim.input("<Tab>")  # the plugin's accept keymap
    after = BEFORE.replace("return su\n", "return su" + TYPED + want + "\n")
    want_lines = after.split("\n")[:-1]
    wait_for(
        "the buffer to hold the suggestion",
        lambda: nvim.current.buffer[:] == want_lines,
        describe=lambda: nvim.current.buffer[:],
    )
    assert nvim.current.buffer[:] == want_lines
    inserted = want.split("\n")
    end_row = ROW + len(inserted) - 1
    end_col = (COL if len(inserted) == 1 else 0) + len(inserted[-1].encode())
    assert tuple(nvim.current.window.cursor) == (end_row + 1, end_col)
    wait_for("the ghost text to clear", lambda: ghost_text(nvim) is None, 10)
    nvim.input("<Esc>")
    wait_for("normal mode", lambda: nvim.api.get_mode()["mode"] == "n")


def test_status_and_health_report_the_latency(nvim: Any, tiny_bundle: Path) -> None:
    latency = nvim.exec_lua("return require('jpilot').state.last_latency_ms")
    assert isinstance(latency, int | float) and latency > 0
    status = nvim.exec_lua("return require('jpilot.commands').status_lines()")
    assert status[0].startswith("jpilot: running")
    assert status[1] == f"model: ready {tiny_bundle}"
    assert status[-2] == "suggestions: ghost text"
    assert status[-1].startswith("last latency: ") and status[-1].endswith(" ms")

    nvim.command("checkhealth jpilot")
    report = "\n".join(nvim.current.buffer[:])
    assert "ERROR" not in report, report
    assert f"model bundle {tiny_bundle}" in report, report
    assert "vim.lsp.inline_completion is available" in report, report
    assert "last suggestion latency: " in report, report
    nvim.command("bdelete")
    assert Path(nvim.current.buffer.name).name == "demo.py"


def reset_buffer(vim: Any) -> None:
    """Put demo.py back to BEFORE (valid Python) in normal mode, cursor on line 1."""
    vim.input("<Esc>")
    wait_for("normal mode", lambda: vim.api.get_mode()["mode"] == "n")
    vim.current.buffer[:] = BEFORE.split("\n")[:-1]
    vim.current.window.cursor = (1, 0)


def floating_lines(vim: Any) -> list[str] | None:
    """Return the lines of the first floating window, if one is open."""
    return vim.exec_lua(
        """
        for _, w in ipairs(vim.api.nvim_list_wins()) do
          if vim.api.nvim_win_get_config(w).relative ~= '' then
            return vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false)
          end
        end
        """
    )


def close_floats(vim: Any) -> None:
    """Close every floating window."""
    vim.exec_lua(
        "for _, w in ipairs(vim.api.nvim_list_wins()) do"
        " if vim.api.nvim_win_get_config(w).relative ~= '' then"
        " vim.api.nvim_win_close(w, true) end end"
    )


def test_explain_through_neovim(nvim: Any) -> None:
    reset_buffer(nvim)
    commands = nvim.exec_lua(
        "local c = vim.lsp.get_clients({ bufnr = 0, name = 'jpilot' })[1]"
        " local p = c.server_capabilities.executeCommandProvider"
        " return type(p) == 'table' and p.commands or {}"
    )
    messages: list[Any] = nvim.exec_lua(
        """
        local seen = {}
        local notify = vim.notify
        vim.notify = function(msg, level) table.insert(seen, { msg, level }) end
        local ok, err = pcall(vim.cmd, '4,5JpilotExplain')
        vim.notify = notify
        assert(ok, err)
        return seen
        """
    )
    if not any("explain" in c.lower() for c in commands):
        assert len(messages) == 1, messages
        assert "has no explain command" in messages[0][0]
        return
    lines = wait_for("the explanation float", lambda: floating_lines(nvim), 10)
    # The float shows exactly what the plugin made of the server's answer to the same call.
    explain = next(c for c in commands if "explain" in c.lower())
    answer = nvim.exec_lua(
        """
        local command = ...
        local c = vim.lsp.get_clients({ bufnr = 0, name = 'jpilot' })[1]
        local range =
          { start = { line = 3, character = 0 }, ['end'] = { line = 4, character = 12 } }
        local r = c:request_sync('workspace/executeCommand',
          { command = command, arguments = { vim.uri_from_bufnr(0), range } }, 60000, 0)
        return { r.result, require('jpilot.commands').explanation_lines(r.result) }
        """,
        explain,
    )
    assert answer[0]["line"] == 3, answer[0]
    assert lines == answer[1]
    close_floats(nvim)


def test_hover_through_neovim(nvim: Any) -> None:
    if not capability(nvim, "hoverProvider"):
        pytest.skip("the server does not advertise hoverProvider (the docs plugin is not there)")
    reset_buffer(nvim)
    nvim.current.window.cursor = (4, len("def to"))  # on "total"
    nvim.exec_lua("vim.lsp.buf.hover()")
    lines = wait_for("a hover window", lambda: floating_lines(nvim))
    assert "def total(xs)" in lines, lines  # the signature, from the buffer itself
    close_floats(nvim)


def test_code_action_through_neovim(nvim: Any) -> None:
    if not capability(nvim, "codeActionProvider"):
        pytest.skip("the server does not advertise codeActionProvider (no debug/docs plugin)")
    reset_buffer(nvim)
    # Neovim lists code actions through vim.ui.select: capture what it offers, pick none.
    titles = nvim.exec_lua(
        """
        local titles, done = nil, false
        local select = vim.ui.select
        vim.ui.select = function(items, opts, on_choice)
          titles = vim.tbl_map(function(i) return i.action.title end, items)
          done = true
          on_choice(nil)
        end
        vim.api.nvim_win_set_cursor(0, { 4, 4 })
        vim.lsp.buf.code_action({
          range = { start = { 4, 0 }, ['end'] = { 5, 15 } },
        })
        vim.wait(30000, function() return done end, 20)
        vim.ui.select = select
        return titles
        """
    )
    assert titles, "Neovim offered no code action"
    raw = nvim.exec_lua(
        """
        local c = vim.lsp.get_clients({ bufnr = 0, name = 'jpilot' })[1]
        local params =
          vim.lsp.util.make_given_range_params({ 4, 0 }, { 5, 15 }, 0, c.offset_encoding)
        local diags = {}
        for _, lnum in ipairs({ 3, 4 }) do
          vim.list_extend(diags, vim.diagnostic.get(0, { lnum = lnum }))
        end
        params.context = { diagnostics = vim.lsp.diagnostic.from(diags) }
        local r = c:request_sync('textDocument/codeAction', params, 30000, 0)
        return vim.tbl_map(function(a) return a.title end, r and r.result or {})
        """
    )
    assert titles == raw


def test_without_ghost_text_a_completion_item_inserts_the_whole_suggestion(
    workdir: Path, settings: dict[str, Any], expected: dict[str, Any]
) -> None:
    """The 0.10/0.11 path (completion items), taken on 0.12 with ghost_text = false."""
    with running_nvim(workdir, settings, ghost_text=False) as vim:
        assert not vim.exec_lua("return vim.lsp.inline_completion.is_enabled({ bufnr = 0 })")
        vim.current.window.cursor = (ROW + 1, 0)
        vim.input("A" + TYPED)
        wait_for("insert mode", lambda: vim.api.get_mode()["mode"] == "i")
        wait_for("the typed text", lambda: vim.current.buffer[ROW] == "    return sum(")
        vim.input("<M-\\>")  # the plugin's trigger keymap: vim.lsp.completion.get()
        items = wait_for(
            "jpilot's completion item",
            lambda: vim.funcs.complete_info(["items"])["items"],
            describe=lambda: vim.funcs.complete_info(),
        )
        assert len(items) == 1, items
        item = items[0]["user_data"]["nvim"]["lsp"]["completion_item"]
        assert item["textEdit"] == {"range": expected["range"], "newText": expected["text"]}
        vim.input("<C-y>")
        want_lines = BEFORE.replace("return su\n", f"return su{TYPED}{expected['text']}\n")
        wait_for(
            "the buffer to hold the whole suggestion",
            lambda: vim.current.buffer[:] == want_lines.split("\n")[:-1],
            describe=lambda: vim.current.buffer[:],
        )


def test_a_missing_model_is_reported_once(workdir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bundle"
    broken = {**SETTINGS, "model": {**SETTINGS["model"], "path": str(missing)}}
    with running_nvim(workdir, broken, name="broken") as vim:
        wait_for("the failed load", lambda: server_status(vim)["model"]["state"] == "failed")
        vim.command("doautocmd BufWritePost")  # more traffic that could repeat the popup
        server_status(vim)

        def reports() -> list[str]:
            out = vim.exec_lua("return vim.api.nvim_exec2('messages', { output = true }).output")
            return [line for line in out.splitlines() if str(missing) in line]

        wait_for("the missing-model message", reports)
        time.sleep(0.5)  # room for a second one to arrive
        assert len(reports()) == 1, reports()


def test_the_documented_minimal_setup_starts_without_warnings(workdir: Path) -> None:
    # docs/EDITORS.md: require('jpilot').setup({ python = ... }) and nothing else. An empty
    # Lua table used to reach the server as a JSON list ("settings must be an object").
    with running_nvim(workdir, {}, name="minimal") as vim:
        wait_for("the default model", lambda: server_status(vim)["model"]["state"] == "ready")
        out = vim.exec_lua("return vim.api.nvim_exec2('messages', { output = true }).output")
        assert "jpilot settings" not in out, out
        assert server_status(vim)["model"]["error"] is None
