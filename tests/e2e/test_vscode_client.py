"""The VS Code extension's protocol path: run editors/vscode/test-client under `node --test`.

The Node client is built on vscode-languageserver-protocol (what vscode-languageclient uses),
spawns `jpilot serve` exactly as the extension does, sends VS Code's client capabilities and
the settings the extension derives from its schema, and asserts exact results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import converters, types
from pytest_lsp import client_capabilities

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"
NPM_TIMEOUT_S = 600
TEST_TIMEOUT_S = 300
# Tests in test-client/jpilot.test.mjs; a file that fails to load would report fewer.
NODE_TESTS = 15


def tool(name: str) -> str:
    """Return the path of a Node tool; skip without Node, except in CI where it must exist."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not on PATH; CI needs Node 20+ to test the VS Code client")
        pytest.skip(f"{name} is not on PATH (Node 20+ is needed for the VS Code client test)")
    return path


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a command in editors/vscode; fail with its output if it fails."""
    proc = subprocess.run(
        cmd, cwd=VSCODE, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-6000:]}")
    return output


def vscode_capabilities(path: Path) -> Path:
    """Write VS Code's client capabilities, plus the inline completion that
    vscode-languageclient 10+ adds, to a JSON file."""
    caps = client_capabilities("visual-studio-code")
    assert caps.text_document is not None
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(
        dynamic_registration=True
    )
    data = converters.get_converter().unstructure(caps, types.ClientCapabilities)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def node_output(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build what the client needs, run `node --test test-client/`, return its TAP output."""
    npm = tool("npm")
    node = tool("node")
    if not (VSCODE / "node_modules" / "vscode-languageserver-protocol").is_dir():
        run([npm, "ci", "--no-audit", "--no-fund"], NPM_TIMEOUT_S)  # .ci/run's build.sh does this
    run([npm, "run", "build"], NPM_TIMEOUT_S)  # dist/serverSettings.js and dist/preflight.js
    tmp = tmp_path_factory.mktemp("vscode-client")
    env = os.environ | {
        "JPILOT_PYTHON": sys.executable,
        "JPILOT_BUNDLE": str(tiny_bundle),
        "JPILOT_CAPABILITIES": str(vscode_capabilities(tmp / "capabilities.json")),
    }
    output = run([node, "--test", "--test-reporter=tap", "test-client/"], TEST_TIMEOUT_S, env)
    print(output)  # node's own summary, for the CI log
    return output


def test_node_client_drives_jpilot_serve(node_output: str) -> None:
    counts = dict(re.findall(r"^# (tests|pass|fail|skipped) (\d+)$", node_output, re.M))
    assert counts.get("fail") == "0", node_output[-6000:]
    assert counts.get("tests") == str(NODE_TESTS), node_output[-6000:]
    passed, skipped = int(counts.get("pass", 0)), int(counts.get("skipped", 0))
    assert passed + skipped == NODE_TESTS, node_output[-6000:]


@pytest.mark.parametrize(
    "name",
    [
        "hover over a name",
        "code actions for a range, and resolving one",
        "the explain command answers for a line range",
    ],
)
def test_node_client_optional_feature(node_output: str, name: str) -> None:
    """Hover, code actions and explain are asserted only where the server advertises them."""
    match = re.search(
        rf"^\s*(ok|not ok) \d+ - {re.escape(name)}(?: # SKIP (.*))?$", node_output, re.M
    )
    assert match is not None, f"the Node client did not run {name!r}"
    if match.group(2):
        pytest.skip(f"Node client: {match.group(2)}")
    assert match.group(1) == "ok", node_output[-6000:]


def test_extension_settings_schema_matches_the_server() -> None:
    """Every server setting has a `jpilot.*` VS Code setting with the same default and
    range, and no VS Code setting is unknown to the server (it would get a warning)."""
    import dataclasses

    from jpilot.plugins.settings import _CHOICES, _RANGES, Settings, camel

    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    schema = package["contributes"]["configuration"]["properties"]
    server: dict[str, tuple[str, Any]] = {}
    for section in dataclasses.fields(Settings):
        if section.name == "plugins":
            continue
        for f in dataclasses.fields(getattr(Settings(), section.name)):
            key = f"{section.name}.{f.name}"
            server[f"jpilot.{camel(section.name)}.{camel(f.name)}"] = (key, f.default)
    client_only = {"jpilot.server.command", "jpilot.server.pythonPath", "jpilot.trace.server"}
    assert set(schema) - client_only - {"jpilot.plugins"} == set(server)
    for name, (key, default) in server.items():
        entry = schema[name]
        assert entry["default"] == default, name
        if key in _CHOICES:
            assert entry["enum"] == list(_CHOICES[key]), name
        if key in _RANGES:
            lo, hi = _RANGES[key]
            assert entry.get("minimum", lo) >= lo and entry.get("maximum", hi) <= hi, name


def test_extension_sends_every_schema_setting_to_the_server() -> None:
    """src/serverSettings.ts lists every `jpilot.*` setting that is not client-only."""
    source = (VSCODE / "src" / "serverSettings.ts").read_text(encoding="utf-8")
    block = source.split("SERVER_SETTING_KEYS = [", 1)[1].split("]", 1)[0]
    keys = {"jpilot." + k for k in re.findall(r"'([\w.]+)'", block)}
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    schema = set(package["contributes"]["configuration"]["properties"])
    client_only = {"jpilot.server.command", "jpilot.server.pythonPath", "jpilot.trace.server"}
    assert keys == schema - client_only


# Settings that choose the program the extension runs, the model it loads, or where code
# and a token are sent: a repository's .vscode/settings.json must not set them.
MACHINE_ONLY = {
    "jpilot.server.command",
    "jpilot.server.pythonPath",
    "jpilot.model.path",
    "jpilot.model.url",
    "jpilot.model.tokenEnv",
}


def test_a_workspace_cannot_choose_the_program_the_model_or_the_destination() -> None:
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    schema = package["contributes"]["configuration"]["properties"]
    guarded = MACHINE_ONLY & set(schema)
    assert {"jpilot.server.command", "jpilot.server.pythonPath", "jpilot.model.path"} <= guarded
    assert {name: schema[name]["scope"] for name in guarded} == dict.fromkeys(guarded, "machine")
    trust = package["capabilities"]["untrustedWorkspaces"]
    assert trust["supported"] == "limited" and trust["description"]
    assert set(trust["restrictedConfigurations"]) == guarded


def test_extension_schema_lists_the_builtin_plugins_and_their_settings() -> None:
    """`jpilot.plugins` names every built-in plugin with `enabled` and the settings it
    declares (jpilot_settings), with the same defaults; other names stay allowed."""
    import dataclasses
    from importlib.metadata import entry_points

    from jpilot.lsp.plugins import GROUP, PluginHost
    from jpilot.plugins.settings import camel

    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    plugins = package["contributes"]["configuration"]["properties"]["jpilot.plugins"]
    builtin = [ep for ep in entry_points(group=GROUP) if ep.value.startswith("jpilot.plugins.")]
    host = PluginHost()
    host.load_entry_points(builtin)
    declared = host.declared_settings()
    assert set(plugins["properties"]) == set(declared) == {ep.name for ep in builtin}
    for name, defaults in declared.items():
        props = plugins["properties"][name]["properties"]
        want = {"enabled": True}
        if defaults is not None:
            want |= {camel(f.name): getattr(defaults, f.name) for f in dataclasses.fields(defaults)}
        assert {key: entry["default"] for key, entry in props.items()} == want, name
    assert plugins["additionalProperties"]["properties"]["enabled"]["type"] == "boolean"
    assert "additionalProperties" not in plugins["additionalProperties"]  # their own settings
    for name in declared:
        assert f"`{name}`" in plugins["markdownDescription"]
