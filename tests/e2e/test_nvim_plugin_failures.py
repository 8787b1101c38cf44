"""A plugin the server blocks shows in Neovim: the popup, :JpilotStatus and :checkhealth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_nvim_plugin import BEFORE, SETTINGS, running_nvim, wait_for

from jpilot.plugins import testing

PLUGINS = Path(__file__).resolve().parent / "plugins"


def test_a_blocked_plugin_shows_in_the_popup_status_and_health(
    tmp_path: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = PLUGINS / "jpilot_example_misspelled.py"
    site = testing.install(tmp_path / "site", "jpilot-typo", {"typo": module.stem}, [module])
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)  # Neovim, and the server it starts, inherit it
    workdir = (tmp_path / "project").resolve()
    workdir.mkdir()
    (workdir / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    (workdir / "demo.py").write_text(BEFORE, encoding="utf-8")
    settings = {**SETTINGS, "model": {**SETTINGS["model"], "path": str(tiny_bundle)}}
    why = "jpilot_diagnostic is not a jpilot hook; did you mean jpilot_diagnostics?"
    with running_nvim(workdir, settings, name="blocked-plugin") as vim:
        messages = wait_for(
            "the popup", lambda: "plugin not loaded: typo" in vim.command_output("messages")
        )
        assert messages
        assert why in vim.command_output("messages")
        lines = wait_for(
            "the status line of the plugin",
            lambda: [
                line
                for line in vim.exec_lua("return require('jpilot.commands').status_lines()")
                if line.startswith("plugin typo")
            ],
        )
        assert lines == [f"plugin typo not loaded: {why}"]
        vim.command("checkhealth jpilot")
        report = "\n".join(vim.current.buffer[:])
        assert f"plugin typo not loaded: {why}" in report, report
        assert 'plugins = { ["typo"] = { enabled = false } }' in report, report
        vim.command("bdelete")
