"""Helpers for testing a jpilot plugin, shipped with jpilot (no pytest needed to import).

Unit tests call a hook the way the server does, with the server's checks:

    from jpilot.plugins import testing
    import my_plugin

    assert testing.problems(my_plugin) == []           # hook names, arguments, settings
    req = testing.request("x = 1  # TODO\\n", plugin=my_plugin, name="my-plugin",
                          settings={"plugins": {"my-plugin": {"maxCuts": 2}}})
    found = testing.call(my_plugin, "jpilot_diagnostics", request=req, engine=None, cancel=None)

End-to-end tests install the plugin into a throw-away site folder (an entry point, as
pip would) and drive a real `jpilot serve` over JSON-RPC (jpilot.plugins.testing_server):

    with testing.serve({"my-plugin": "path/to/my_plugin.py"}) as server:
        server.open("file:///t/a.py", "def f():\\n    pass\\n", "python")
        assert "my note" in server.hover("file:///t/a.py", 0, 4)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from jpilot.plugins import hookspecs
from jpilot.plugins.api import PROJECT, CompletionRequest
from jpilot.plugins.checks import check_result, hook_problems
from jpilot.plugins.settings import Settings, parse_settings

if TYPE_CHECKING:
    from jpilot.plugins.testing_server import TestServer

GROUP = "jpilot.plugins"


class PluginError(AssertionError):
    """What the server would log and count for a plugin mistake."""


def declared_settings(plugin: object) -> Any:
    """Return the settings defaults a plugin declares with jpilot_settings, or None."""
    hook = getattr(plugin, "jpilot_settings", None)
    declared = hook() if callable(hook) else None
    if isinstance(declared, type) and dataclasses.is_dataclass(declared):
        declared = declared()
    if declared is not None and not dataclasses.is_dataclass(declared):
        raise PluginError(f"jpilot_settings returned {type(declared).__name__}, not a dataclass")
    return declared


def problems(plugin: object) -> list[str]:
    """Return why the server would block this plugin at load ([] if it would load)."""
    found = hook_problems(plugin)
    if found:
        return found
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(plugin, "under-test")
        declared_settings(plugin)
    except Exception as exc:
        return [f"{type(exc).__name__}: {exc}"]
    return []


def make_settings(
    values: dict[str, Any] | None = None, plugins: dict[str, object] | None = None
) -> Settings:
    """Parse settings as the server does, with `plugins` ({name: plugin}) installed;
    raise PluginError with the warning the user would see if any value is invalid."""
    declared = {name: declared_settings(plugin) for name, plugin in (plugins or {}).items()}
    parsed, errors = parse_settings(values, plugins=declared)
    if errors:
        raise PluginError("jpilot settings: " + "; ".join(errors))
    return parsed


def request(
    text: str,
    offset: int | None = None,
    *,
    language_id: str = "python",
    uri: str = "file:///test/example.py",
    settings: dict[str, Any] | Settings | None = None,
    plugin: object = None,
    name: str = "under-test",
    **fields: Any,
) -> CompletionRequest:
    """Build a CompletionRequest (cursor at `offset`, default the end) whose settings hold
    `plugin`'s declared settings under `name`, with `settings` (JSON as a user writes
    it) applied. `fields` set other CompletionRequest fields (path, open_documents...)."""
    if not isinstance(settings, Settings):
        settings = make_settings(settings, {name: plugin} if plugin is not None else {})
    at = len(text) if offset is None else offset
    return CompletionRequest(uri, language_id, text, at, 1, settings, **fields)


def call(plugin: object, hook: str, **kwargs: Any) -> Any:
    """Call one plugin's hook with keyword arguments and check its result as the server
    does; raise PluginError with the server's message if it would be rejected."""
    found = problems(plugin)
    if found:
        raise PluginError(f"the server would not load this plugin: {'; '.join(found)}")
    impl = getattr(plugin, hook, None)
    if impl is None:
        raise PluginError(f"the plugin does not implement {hook}")
    spec = getattr(hookspecs, hook)
    missing = set(inspect.signature(spec).parameters) - set(kwargs)
    if missing:
        raise TypeError(f"{hook} is called with {', '.join(sorted(missing))} too")
    wanted = inspect.signature(impl).parameters
    result = impl(**{k: v for k, v in kwargs.items() if k in wanted})
    if result is not None and (why := check_result(hook, result)):
        raise PluginError(why)
    return result


@functools.cache
def engine(bundle: str = "", threads: int = 2) -> Any:
    """Return a real engine on a model bundle folder (default: the embedded model that
    ships with jpilot), loaded once per process, for hooks that take `engine`."""
    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine, EngineConfig

    return Engine(bundle or str(default_bundle_path()), EngineConfig(device="cpu", threads=threads))


# ------------------------------------------------------------------ installing and serving


def install(
    folder: Path, dist: str, plugins: dict[str, str], modules: list[Path] | None = None
) -> Path:
    """Write a fake installed distribution into `folder` (what `pip install` leaves: a
    `*.dist-info` with a `jpilot.plugins` entry point per plugin, plus the module files),
    so a Python with `folder` on its path loads the plugins; return `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / f"{dist.replace('-', '_')}-0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in plugins.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")
    for module in modules or []:
        copy = shutil.copytree if module.is_dir() else shutil.copy
        copy(module, folder / module.name)
    return folder


@contextmanager
def serve(
    plugins: dict[str, str | Path],
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[TestServer]:
    """Start `jpilot serve` with `plugins` installed ({entry-point name: a module file,
    or "module:object" already importable}) and initialized with `settings`; yield a
    client, and shut the server down on exit."""
    import tempfile

    from jpilot.plugins.testing_server import TestServer

    with tempfile.TemporaryDirectory(prefix="jpilot-plugin-test-") as tmp:
        site = Path(tmp) / "site"
        targets, modules = {}, []
        for name, where in plugins.items():
            path = Path(where)
            if str(where).endswith(".py") or path.is_dir():
                modules.append(path)
                targets[name] = path.stem if path.suffix == ".py" else path.name
            else:
                targets[name] = str(where)
        install(site, "jpilot-plugins-under-test", targets, modules)
        server = TestServer(site, env)
        try:
            server.initialize(settings)
            yield server
        finally:
            server.close()
