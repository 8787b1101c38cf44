"""Plugin loading and hook dispatch: failures are contained, flags respected, merges right."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from plugin_dists import EXAMPLE, install_fake

from jpilot.lsp.plugins import GROUP, PluginHost
from jpilot.plugins.api import CompletionRequest, Suggestion, hookimpl
from jpilot.plugins.settings import Settings, parse_settings


def request(text: str = "x = ") -> CompletionRequest:
    return CompletionRequest("file:///a.py", "python", text, len(text), 1, Settings())


class Raiser:
    @hookimpl
    def jpilot_postprocess(self, request, suggestion):
        raise RuntimeError("boom")

    @hookimpl
    def jpilot_generation_plan(self, request):
        raise RuntimeError("boom")


class Upper:
    @hookimpl
    def jpilot_postprocess(self, request, suggestion):
        suggestion.text = suggestion.text.upper()


def test_builtin_plugins_come_from_entry_points():
    names = {ep.name for ep in entry_points(group=GROUP)}
    assert {"completion", "context", "postprocess"} <= names
    host = PluginHost()
    host.load_entry_points()
    assert {"completion", "context", "postprocess"} <= set(host.names())


def test_plugin_that_fails_to_load_is_blocked_and_logged(caplog: pytest.LogCaptureFixture):
    eps = [
        EntryPoint("broken", "jpilot_no_such_module_anywhere", GROUP),
        EntryPoint("completion", "jpilot.plugins.completion", GROUP),
    ]
    host = PluginHost()
    with caplog.at_level(logging.ERROR):
        host.load_entry_points(eps)
    assert host.names() == ["completion"]
    assert "ModuleNotFoundError" in host.failed["broken"]
    assert "plugin broken failed to load" in caplog.text


def test_a_raising_hook_is_skipped_and_the_others_run(caplog: pytest.LogCaptureFixture):
    host = PluginHost()
    host.register(Upper(), "upper")
    host.register(Raiser(), "raiser")
    host.load_entry_points([EntryPoint("completion", "jpilot.plugins.completion", GROUP)])
    s = Suggestion("abc", 0)
    with caplog.at_level(logging.ERROR):
        host.each("jpilot_postprocess", request=request(), suggestion=s)
        host.each("jpilot_postprocess", request=request(), suggestion=s)
    assert s.text == "ABC"
    assert host.errors == {"raiser.jpilot_postprocess": 2}
    assert caplog.text.count("plugin raiser failed in jpilot_postprocess") == 1  # once a minute
    plan = host.first("jpilot_generation_plan", request=request())
    assert plan is not None and plan.max_tokens == 48  # the completion plugin answered


def test_disabled_plugin_is_not_called():
    host = PluginHost()
    host.register(Upper(), "upper")
    host.set_enabled({"upper": False})
    s = Suggestion("abc", 0)
    host.each("jpilot_postprocess", request=request(), suggestion=s)
    assert s.text == "abc"


def test_each_stops_once_the_suggestion_is_empty():
    class Emptier:
        @hookimpl(tryfirst=True)
        def jpilot_postprocess(self, request, suggestion):
            suggestion.text = ""

    host = PluginHost()
    host.register(Upper(), "upper")
    host.register(Emptier(), "emptier")
    s = Suggestion("abc", 0)
    calls = host.each(
        "jpilot_postprocess", until=lambda: not s.text, request=request(), suggestion=s
    )
    assert s.text == "" and calls == []


def test_example_plugin_from_the_guide_installs_and_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    site = install_fake(tmp_path, "jpilot-no-todo", {"no-todo": "jpilot_no_todo"}, [EXAMPLE])
    monkeypatch.syspath_prepend(str(site))
    host = PluginHost()
    host.load_entry_points()
    assert "no-todo" in host.names()
    settings, errors = parse_settings({}, plugins=host.declared_settings())  # as the server does
    assert errors == [] and settings.plugins["no-todo"].options.words == ["TODO", "FIXME", "XXX"]
    req = CompletionRequest("file:///a.py", "python", "", 0, 1, settings)
    s = Suggestion("total = 0\n# TODO: handle errors\nreturn total", 0)
    host.each("jpilot_postprocess", request=req, suggestion=s)
    assert s.text == "total = 0"
    assert dict(host.each("jpilot_status"))["no-todo"] == {"dropped": 1}
    assert host.errors == {}
    host.set_enabled(settings.plugin_enabled() | {"no-todo": False})
    s = Suggestion("# TODO", 0)
    host.each("jpilot_postprocess", request=req, suggestion=s)
    assert s.text == "# TODO"


def test_the_examples_own_tests_pass():
    """examples/jpilot-no-todo/test_no_todo.py uses only jpilot.plugins.testing."""
    folder = EXAMPLE.parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder, env={**os.environ, "PYTHONPATH": str(folder)}, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
