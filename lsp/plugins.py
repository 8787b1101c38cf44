"""Load plugins from the `jpilot.plugins` entry-point group and call their hooks safely.

Each plugin is loaded on its own: one that fails to import or register, or that
implements a hook no hookspec declares (a misspelling), is blocked and logged, and the
rest load. Hooks are called one implementation at a time, and each result is checked
against the hookspec's declared return type (jpilot.plugins.checks): a plugin that
raises or returns the wrong type is logged with its name, counted in `errors` (shown by
`jpilot.status`) and skipped for that call, so the other plugins' answers still go out.
A plugin whose `plugins.<name>.enabled` is false is never called.

The user hears of it too: `on_error` (the server's rate-limited popup) gets one line per
plugin and hook at most once a minute, and `failure_notice()` says which plugins were
blocked at load.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from jpilot.plugins import hookspecs
from jpilot.plugins.api import PROJECT, CompletionRequest
from jpilot.plugins.checks import check_result, hook_problems

log = logging.getLogger(__name__)
GROUP = "jpilot.plugins"
REPEAT_S = 60.0  # the same plugin and hook is logged and reported at most this often
HOVER_RULE = "\n\n---\n\n"  # between the hover's answer and each added section


class PluginHost:
    """A pluggy manager plus per-plugin enable flags, settings and failure containment."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failed: dict[str, str] = {}  # plugin name -> why it was blocked
        self.disabled: set[str] = set()
        self.errors: dict[str, int] = {}  # "plugin.hook" -> failures (raised, wrong type)
        self.last_error: dict[str, str] = {}  # "plugin.hook" -> the latest failure, one line
        self.settings: dict[str, Any] = {}  # plugin name -> declared settings defaults
        self.on_error: Callable[[str], None] | None = None  # told of failures (any thread)
        self._last_logged: dict[str, float] = {}
        self._lock = threading.Lock()  # hooks run on the engine's and features' threads

    # ---------------------------------------------------------------- loading
    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> None:
        """Load every plugin of the `jpilot.plugins` group, blocking the ones that fail."""
        for ep in sorted(eps if eps is not None else entry_points(group=GROUP), key=_ep_key):
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self.block(ep.name, f"{type(exc).__name__}: {exc}")
                continue
            self.register(plugin, ep.name)

    def register(self, plugin: object, name: str) -> bool:
        """Register one plugin object (a module or an instance) under `name`; block it
        instead if its hooks are misnamed or do not match their specs. Return whether
        it was registered."""
        problems = hook_problems(plugin)
        if problems:
            self.block(name, "; ".join(problems))
            return False
        try:
            self.pm.register(plugin, name)
        except Exception as exc:  # pluggy: an argument no hookspec offers, ...
            self.block(name, f"{type(exc).__name__}: {exc}")
            return False
        self.settings[name] = self._declared_settings(plugin, name)
        log.info("plugin %s loaded", name)
        return True

    def _declared_settings(self, plugin: object, name: str) -> Any:
        """Return the defaults a plugin declares with jpilot_settings, or None."""
        caller = self.pm.hook.jpilot_settings
        impls = [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]
        declared = self._call_one(impls[0], "jpilot_settings", {}) if impls else None
        if isinstance(declared, type) and dataclasses.is_dataclass(declared):
            try:
                declared = declared()
            except Exception as exc:
                self.fault(name, "jpilot_settings", f"its settings class needs defaults: {exc}")
                return None
        if declared is not None and not dataclasses.is_dataclass(declared):
            why = f"returned {type(declared).__name__}, not a dataclass (instance)"
            self.fault(name, "jpilot_settings", why)
            return None
        return declared

    def block(self, name: str, why: str) -> None:
        """Block a plugin that failed to load and log why."""
        self.failed[name] = why
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        if not self.pm.is_blocked(name):
            self.pm.set_blocked(name)
        log.error("plugin %s failed to load and is disabled: %s", name, why)

    def names(self) -> list[str]:
        """Return the names of the loaded plugins."""
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    def declared_settings(self) -> dict[str, Any]:
        """Return {plugin name: declared settings defaults or None} for every installed
        plugin, the blocked ones included (their `enabled` flag is still a setting)."""
        return {name: None for name in self.failed} | self.settings

    def set_enabled(self, enabled: dict[str, bool]) -> None:
        """Apply `plugins.<name>.enabled` settings (plugins not named stay enabled)."""
        self.disabled = {name for name, on in enabled.items() if not on}

    def failure_notice(self) -> str | None:
        """Return one line for the user naming the plugins blocked at load, or None."""
        failed = {name: why for name, why in self.failed.items() if name not in self.disabled}
        if not failed:
            return None
        parts = [f"{name} ({why})" for name, why in sorted(failed.items())]
        return (
            f"jpilot: plugin{'s' if len(parts) > 1 else ''} not loaded: "
            + "; ".join(parts)
            + ". Fix or uninstall it, or set plugins.<name>.enabled to false;"
            " jpilot.status lists it."
        )

    # ---------------------------------------------------------------- calling
    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        """Return the enabled implementations of a hook, in pluggy's call order."""
        caller = getattr(self.pm.hook, hook)
        impls = reversed(caller.get_hookimpls())
        return [impl for impl in impls if impl.plugin_name not in self.disabled]

    def _call_one(self, impl: pluggy.HookImpl, hook: str, kwargs: dict[str, Any]) -> Any:
        """Call one implementation and check its result; on an exception or a wrong type,
        log it, count it and return None."""
        try:
            result = impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception as exc:
            self.fault(impl.plugin_name, hook, f"raised {type(exc).__name__}: {exc}", exc)
            return None
        if result is not None and (problem := check_result(hook, result)):
            self.fault(impl.plugin_name, hook, problem)
            return None
        return result

    def fault(self, plugin: str, hook: str, why: str, exc: BaseException | None = None) -> None:
        """Count a plugin's failure in a hook; log it and tell the user (rate-limited)."""
        key = f"{plugin}.{hook}"
        with self._lock:
            self.errors[key] = self.errors.get(key, 0) + 1
            self.last_error[key] = why
            now = time.monotonic()
            if now - self._last_logged.get(key, -1e9) <= REPEAT_S:
                return
            self._last_logged[key] = now
        log.error("plugin %s failed in %s and was skipped: %s", plugin, hook, why, exc_info=exc)
        if self.on_error is not None:
            try:
                self.on_error(
                    f"jpilot: plugin {plugin} failed in {hook} and was skipped: {why}"
                    " (jpilot.status counts it)"
                )
            except Exception:
                log.exception("could not report a plugin failure")

    def first(self, hook: str, **kwargs: Any) -> Any:
        """Call a firstresult hook: the first non-None answer wins."""
        for impl in self._impls(hook):
            result = self._call_one(impl, hook, kwargs)
            if result is not None:
                return result
        return None

    def ignored(self, request: CompletionRequest) -> bool:
        """Return whether the document must stay away from the model (jpilot_ignore_document:
        the first non-None answer wins); a plugin that raises there makes it ignored (fail
        closed). A wrong-typed answer is logged and skipped, as in every hook."""
        hook = "jpilot_ignore_document"
        for impl in self._impls(hook):
            try:
                result = impl.function(*({"request": request}[name] for name in impl.argnames))
            except Exception as exc:
                why = f"raised {type(exc).__name__}: {exc}; the document counts as ignored"
                self.fault(impl.plugin_name, hook, why, exc)
                return True
            if result is not None and (problem := check_result(hook, result)):
                self.fault(impl.plugin_name, hook, problem)
                continue
            if result is not None:
                return bool(result)
        return False

    def each(
        self, hook: str, until: Callable[[], bool] | None = None, **kwargs: Any
    ) -> list[tuple[str, Any]]:
        """Call every implementation in order; stop early once `until()` is true."""
        results = []
        for impl in self._impls(hook):
            if until is not None and until():
                break
            result = self._call_one(impl, hook, kwargs)
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def concat(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call a list-returning hook and concatenate the lists."""
        return [item for _, items in self.each(hook, **kwargs) for item in items]


def hover_markdown(
    host: PluginHost, request: CompletionRequest, engine: Any, cancel: Any
) -> str | None:
    """Return the hover: the first jpilot_hover answer, then every jpilot_hover_sections
    section below it, or None when no plugin says anything."""
    args = {"request": request, "engine": engine, "cancel": cancel}
    main = host.first("jpilot_hover", **args)
    sections = [s for s in host.concat("jpilot_hover_sections", **args) if s.strip()]
    parts = ([main] if main else []) + sections
    return HOVER_RULE.join(parts) if parts else None


def _ep_key(ep: EntryPoint) -> tuple[bool, str]:
    """Load built-ins first, then third-party plugins, each by name (pluggy calls the
    most recently registered first, so third-party hooks run before the built-ins)."""
    return (not ep.value.startswith("jpilot.plugins."), ep.name)


def default_host() -> PluginHost:
    """Return a host with every installed plugin loaded."""
    host = PluginHost()
    host.load_entry_points()
    return host
