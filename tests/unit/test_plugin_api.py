"""The plugin API's guard rails: declared return types, hook names, plugin settings, hover
sections, the generated hook reference and the testing helpers an outside author gets."""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jpilot.lsp.plugins import HOVER_RULE, PluginHost, hover_markdown
from jpilot.plugins import reference, testing
from jpilot.plugins.api import CompletionRequest, hookimpl
from jpilot.plugins.checks import check_result, hook_names, hook_problems
from jpilot.plugins.features import Finding
from jpilot.plugins.settings import parse_settings

PLUGINS_MD = Path(__file__).resolve().parents[2] / "docs" / "PLUGINS.md"


def request(text: str = "x = ", settings=None) -> CompletionRequest:
    return testing.request(text, settings=settings)


class ListHover:
    @hookimpl
    def jpilot_hover(self, request, engine, cancel):
        return ["not", "markdown"]


class GoodHover:
    @hookimpl
    def jpilot_hover(self, request, engine, cancel):
        return "**main**"


class Section:
    @hookimpl
    def jpilot_hover_sections(self, request, engine, cancel):
        return ["*added*"]


class DictFindings:
    @hookimpl
    def jpilot_diagnostics(self, request, engine, cancel):
        return [{"start": 0, "end": 1, "message": "m"}]


class Misspelled:
    @hookimpl
    def jpilot_diagnostic(self, request, engine, cancel):
        return []


@dataclass
class Options:
    words: list = field(default_factory=lambda: ["TODO"])
    level: str = field(default="warn", metadata={"choices": ("warn", "drop")})
    limit: int = field(default=3, metadata={"range": (1, 9)})
    ratio: float = 0.5


class WithSettings:
    @hookimpl
    def jpilot_settings(self):
        return Options

    @hookimpl
    def jpilot_hover_sections(self, request, engine, cancel):
        return [f"limit {request.settings.plugins['opts'].options.limit}"]


def test_a_wrong_type_is_a_failure_of_that_plugin_and_the_next_one_answers(
    caplog: pytest.LogCaptureFixture,
):
    told: list[str] = []
    host = PluginHost()
    host.on_error = told.append
    host.register(GoodHover(), "good")
    host.register(ListHover(), "lists")  # registered last: asked first
    with caplog.at_level(logging.ERROR):
        assert host.first("jpilot_hover", request=request(), engine=None, cancel=None) == "**main**"
        host.first("jpilot_hover", request=request(), engine=None, cancel=None)
    assert host.errors == {"lists.jpilot_hover": 2}
    assert "must return str | None" in host.last_error["lists.jpilot_hover"]
    assert caplog.text.count("plugin lists failed in jpilot_hover") == 1  # once a minute
    assert len(told) == 1 and told[0].startswith("jpilot: plugin lists failed in jpilot_hover")


def test_findings_of_the_wrong_type_are_dropped_and_counted():
    host = PluginHost()
    host.register(DictFindings(), "dicts")
    host.load_entry_points()
    found = host.concat(
        "jpilot_diagnostics", request=request("def f(:\n", {}), engine=None, cancel=None
    )
    assert [f.code for f in found] == ["syntax-error"]  # the built-in debug plugin's
    assert host.errors == {"dicts.jpilot_diagnostics": 1}
    assert "returned dict" in host.last_error["dicts.jpilot_diagnostics"]


@pytest.mark.parametrize(
    ("hook", "value", "why"),
    [
        ("jpilot_postprocess", "new text", "returned str 'new text'; jpilot_postprocess must"),
        ("jpilot_diagnostics", [Finding(0, "1", "m", 1, "c")], "str '1' at result[0].end"),
        ("jpilot_status", {1: "x"}, "returned int 1 at result key"),
        ("jpilot_generation_plan", {"max_tokens": 3}, "returned dict"),
        ("jpilot_ignore_document", "yes", "must return bool | None"),
        ("jpilot_status", {"seen": {1, 2}}, "not JSON-able (Object of type set"),
        ("jpilot_diagnostics", [Finding(0, 1, "m", 1, "c", {"x": object()})], "not JSON-able"),
    ],
)
def test_check_result_names_what_is_wrong(hook: str, value: object, why: str):
    problem = check_result(hook, value)
    assert problem is not None and why in problem


def test_valid_results_pass():
    assert check_result("jpilot_diagnostics", [Finding(0, 1, "m", 1, "c", {"a": 1}, 2)]) is None
    assert check_result("jpilot_hover_sections", ["a", "b"]) is None
    assert check_result("jpilot_execute_command", {"anything": [1]}) is None


def test_a_misspelled_hook_blocks_the_plugin_naming_the_closest_hook():
    host = PluginHost()
    assert not host.register(Misspelled(), "typo")
    assert host.failed["typo"] == (
        "jpilot_diagnostic is not a jpilot hook; did you mean jpilot_diagnostics?"
    )
    assert "typo" not in host.names()
    notice = host.failure_notice()
    assert notice is not None and "typo (jpilot_diagnostic is not a jpilot hook" in notice
    host.set_enabled({"typo": False})  # turned off by the user: no more notice
    assert host.failure_notice() is None


def test_hook_wrappers_and_foreign_arguments_block_the_plugin():
    class Wrapper:
        @hookimpl(wrapper=True)
        def jpilot_hover(self, request, engine, cancel):
            return (yield)

    class ExtraArg:
        @hookimpl
        def jpilot_hover(self, request, engine, cancel, colour):
            return None

    class Optional:
        @hookimpl(optionalhook=True)
        def jpilot_from_the_future(self, request):
            return None

    assert hook_problems(Optional()) == []
    assert hook_problems(Wrapper()) == [
        "jpilot_hover: hook wrappers are not supported; use a plain @hookimpl"
    ]
    host = PluginHost()
    assert not host.register(ExtraArg(), "extra")
    assert "colour" in host.failed["extra"]


def test_hover_sections_are_added_below_the_answer():
    host = PluginHost()
    host.register(GoodHover(), "good")
    host.register(Section(), "section")
    assert hover_markdown(host, request(), None, None) == "**main**" + HOVER_RULE + "*added*"
    alone = PluginHost()
    alone.register(Section(), "section")
    assert hover_markdown(alone, request(), None, None) == "*added*"
    assert hover_markdown(PluginHost(), request(), None, None) is None


def test_plugin_settings_are_declared_parsed_and_reported():
    host = PluginHost()
    host.register(WithSettings(), "opts")
    declared = host.declared_settings()
    assert declared == {"opts": Options()}
    settings, errors = parse_settings({}, plugins=declared)
    assert errors == [] and settings.plugins["opts"].options == Options()  # defaults arrive
    data = {"plugins": {"opts": {"limit": 5, "ratio": 1, "words": ["XXX"], "enabled": True}}}
    settings, errors = parse_settings(data, plugins=declared)
    assert errors == []
    assert settings.plugins["opts"].options == Options(["XXX"], "warn", 5, 1.0)
    bad = {"plugins": {"opts": {"limit": 10, "level": "loud", "words": "TODO", "colour": 1},
                       "otps": {}, "opts2": {"enabled": "no"}}}  # fmt: skip
    settings, errors = parse_settings(bad, settings, declared)
    assert errors == [
        "plugins.opts.limit: expected an integer from 1 to 9, got 10; using 5",
        "plugins.opts.level: expected one of 'warn', 'drop', got 'loud'; using 'warn'",
        "plugins.opts.words: expected a list, got 'TODO'; using ['XXX']",
        "unknown setting plugins.opts.colour",
        "unknown plugin 'otps' in plugins (did you mean 'opts'?)",
        "unknown plugin 'opts2' in plugins (did you mean 'opts'?)",
    ]
    assert settings.plugins["opts"].options.limit == 5  # the earlier valid value is kept
    req = testing.request("x", settings=settings)
    assert hover_markdown(host, req, None, None) == "limit 5"


def test_settings_without_declarations_keep_the_old_leniency():
    settings, errors = parse_settings({"plugins": {"anything": {"enabled": False, "x": 1}}})
    assert errors == [] and settings.plugin_enabled() == {"anything": False}


def test_a_settings_hook_that_returns_no_dataclass_is_a_failure():
    class Bad:
        @hookimpl
        def jpilot_settings(self):
            return {"limit": 3}

    host = PluginHost()
    assert host.register(Bad(), "bad")
    assert host.declared_settings() == {"bad": None}
    assert "not a dataclass" in host.last_error["bad.jpilot_settings"]


# ----------------------------------------------------------------------- the reference


def test_every_hookspec_is_in_the_reference_and_the_reference_is_current():
    text = PLUGINS_MD.read_text(encoding="utf-8")
    section = text[text.index(reference.BEGIN) : text.index(reference.END)]
    for hook in hook_names():
        assert f"### `{hook}`" in section, f"{hook} is missing from docs/PLUGINS.md"
    assert reference.updated(text) == text, (
        "docs/PLUGINS.md is stale: run python -m jpilot.plugins.reference --write docs/PLUGINS.md"
    )
    assert reference.main(["--check", str(PLUGINS_MD)]) == 0


def test_every_hookspec_documents_its_parts_and_types_are_checkable():
    for hook in hook_names():
        parts = reference.docstring_parts(hook)
        assert all(parts.get(p) for p in reference.PARTS), hook
        check_result(hook, object())  # the declared type evaluates


def test_the_check_fails_on_a_stale_reference(tmp_path: Path):
    stale = tmp_path / "PLUGINS.md"
    stale.write_text(f"# x\n{reference.BEGIN}\nold\n{reference.END}\n", encoding="utf-8")
    assert reference.main(["--check", str(stale)]) == 1
    assert reference.main(["--write", str(stale)]) == 0
    assert reference.main(["--check", str(stale)]) == 0


# ---------------------------------------------------------------------- testing helpers


def test_the_testing_helpers_import_without_pytest():
    code = "import sys, jpilot.plugins.testing; assert 'pytest' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_testing_call_checks_like_the_server():
    with pytest.raises(testing.PluginError, match="must return str | None"):
        testing.call(ListHover(), "jpilot_hover", request=request(), engine=None, cancel=None)
    with pytest.raises(testing.PluginError, match="did you mean jpilot_diagnostics"):
        testing.call(Misspelled(), "jpilot_diagnostic")
    assert testing.problems(Misspelled()) == [
        "jpilot_diagnostic is not a jpilot hook; did you mean jpilot_diagnostics?"
    ]
    assert testing.call(GoodHover(), "jpilot_hover", request=request(), engine=None,
                        cancel=None) == "**main**"  # fmt: skip


def test_testing_request_carries_the_plugins_settings():
    plugin = WithSettings()
    req = testing.request("x = 1", 2, plugin=plugin, name="opts",
                          settings={"plugins": {"opts": {"limit": 7}}})  # fmt: skip
    assert req.offset == 2 and req.settings.plugins["opts"].options.limit == 7
    with pytest.raises(testing.PluginError, match="plugins.opts.limit: expected an integer"):
        testing.request(
            "x", plugin=plugin, name="opts", settings={"plugins": {"opts": {"limit": 0}}}
        )  # noqa: E501


def test_testing_engine_is_a_real_engine_for_the_docs_hooks(tiny_bundle: Path):
    from jpilot.plugins.docs import plugin as docs

    source = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'
    engine = testing.engine(str(tiny_bundle))
    assert testing.engine(str(tiny_bundle)) is engine  # loaded once
    req = testing.request(source, source.index("add") + 1)
    hover = testing.call(docs, "jpilot_hover", request=req, engine=engine, cancel=None)
    assert hover.startswith("```python\ndef add(a, b)\n```\n\nAdd two numbers.")
