"""Real headless Neovim 0.12 with a minimal config: type, then read the ghost text shown.

Recipe (docs/DESIGN.md, Testing a real Neovim): start `nvim --headless --clean -n
--listen SOCK`, drive it over RPC, give the buffer a file name, start the client with
`vim.lsp.start` and `vim.lsp.inline_completion.enable(true)`, type with nvim_input, then
poll the extmarks of the `nvim.lsp.inline_completion` namespace for their virt_text.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SERVER, expected, nvim_executable

from jpilot.model.engine import Engine

pynvim = pytest.importorskip("pynvim")

START_LSP = """
local cmd, bundle, root = ...
vim.lsp.start({
  name = "jpilot",
  cmd = cmd,
  root_dir = root,
  init_options = { model = { path = bundle } },
})
vim.lsp.inline_completion.enable(true)
"""

GHOST = """
local ns = vim.api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
if not ns then return nil end
local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
local out = {}
for _, m in ipairs(marks) do
  local text = ""
  for _, chunk in ipairs(m[4].virt_text or {}) do text = text .. chunk[1] end
  table.insert(out, { m[2], m[3], text })
end
return out
"""


@pytest.fixture
def nvim(tmp_path: Path) -> Iterator:
    """A headless Neovim listening on a socket, attached over RPC."""
    sock = tmp_path / "nvim.sock"
    proc = subprocess.Popen(
        [nvim_executable(), "--headless", "--clean", "-n", "--listen", str(sock)]
    )
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.05)
    session = pynvim.attach("socket", path=str(sock))
    yield session
    try:
        session.command("qa!")
    except Exception:
        pass
    proc.kill()
    proc.wait()


def test_ghost_text_in_neovim_equals_the_pipeline(
    nvim, tiny_bundle: Path, tiny_engine: Engine, tmp_path: Path
):
    path = tmp_path / "notes.txt"
    nvim.command(f"edit {path}")
    nvim.command("setlocal filetype=text")
    nvim.exec_lua(START_LSP, SERVER, str(tiny_bundle), str(tmp_path))
    deadline = time.monotonic() + 30
    while not nvim.exec_lua("return #vim.lsp.get_clients({bufnr = 0})") and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    nvim.input("ihello wor")
    want = expected(tiny_engine, path.as_uri(), "hello wor\n", 9, language="text")
    assert want.suggestion is not None and want.suggestion.text
    # Neovim draws control characters as ^X; strtrans() is that drawing.
    shown = nvim.call("strtrans", want.suggestion.text)
    ghost = None
    while time.monotonic() < deadline:
        ghost = nvim.exec_lua(GHOST)
        if ghost and ghost[0][2] == shown:
            break
        time.sleep(0.05)
    assert nvim.current.buffer[:] == ["hello wor"]
    assert ghost == [[0, 9, shown]]  # row, col (0-based), text
    nvim.exec_lua("vim.lsp.inline_completion.get()")  # accept it, as <Tab> would
    assert nvim.current.buffer[:] == ["hello wor" + want.suggestion.text]
