"""Load plugins from the `jpilot.plugins` entry-point group and call their hooks safely.

Each plugin is loaded on its own: one that fails to import or register is blocked and
logged, and the rest load. Hooks are called one implementation at a time, so a plugin
that raises is logged and skipped for that call (never more than once a minute per
plugin and hook in the log), and a plugin whose `plugins.<name>.enabled` is false is
never called.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from jpilot.plugins import hookspecs
from jpilot.plugins.api import PROJECT

log = logging.getLogger(__name__)
GROUP = "jpilot.plugins"


class PluginHost:
    """A pluggy manager plus per-plugin enable flags and exception isolation."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failed: dict[str, str] = {}  # plugin name -> why it was blocked
        self.disabled: set[str] = set()
        self.errors: dict[str, int] = {}  # "plugin.hook" -> exceptions so far
        self._last_logged: dict[str, float] = {}

    # ---------------------------------------------------------------- loading
    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> None:
        """Load every plugin of the `jpilot.plugins` group, blocking the ones that fail."""
        for ep in sorted(eps if eps is not None else entry_points(group=GROUP), key=_ep_key):
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            try:
                self.register(ep.load(), ep.name)
            except Exception as exc:
                self.block(ep.name, f"{type(exc).__name__}: {exc}")

    def register(self, plugin: object, name: str) -> None:
        """Register one plugin object (a module or an instance) under `name`."""
        self.pm.register(plugin, name)
        log.info("plugin %s loaded", name)

    def block(self, name: str, why: str) -> None:
        """Block a plugin that failed to load and log why."""
        self.failed[name] = why
        if not self.pm.is_blocked(name):
            self.pm.set_blocked(name)
        log.error("plugin %s failed to load and is disabled: %s", name, why)

    def names(self) -> list[str]:
        """Return the names of the loaded plugins."""
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    def set_enabled(self, enabled: dict[str, bool]) -> None:
        """Apply `plugins.<name>.enabled` settings (plugins not named stay enabled)."""
        self.disabled = {name for name, on in enabled.items() if not on}

    # ---------------------------------------------------------------- calling
    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        """Return the enabled implementations of a hook, in pluggy's call order."""
        caller = getattr(self.pm.hook, hook)
        impls = reversed(caller.get_hookimpls())
        return [impl for impl in impls if impl.plugin_name not in self.disabled]

    def _call_one(self, impl: pluggy.HookImpl, hook: str, kwargs: dict[str, Any]) -> Any:
        """Call one implementation; log and swallow its exception."""
        try:
            return impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception:
            key = f"{impl.plugin_name}.{hook}"
            self.errors[key] = self.errors.get(key, 0) + 1
            now = time.monotonic()
            if now - self._last_logged.get(key, -1e9) > 60:
                self._last_logged[key] = now
                log.exception("plugin %s raised in %s; skipped", impl.plugin_name, hook)
            return None

    def first(self, hook: str, **kwargs: Any) -> Any:
        """Call a firstresult hook: the first non-None answer wins."""
        for impl in self._impls(hook):
            result = self._call_one(impl, hook, kwargs)
            if result is not None:
                return result
        return None

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


def _ep_key(ep: EntryPoint) -> tuple[bool, str]:
    """Load built-ins first, then third-party plugins, each by name (pluggy calls the
    most recently registered first, so third-party hooks run before the built-ins)."""
    return (not ep.value.startswith("jpilot.plugins."), ep.name)


def default_host() -> PluginHost:
    """Return a host with every installed plugin loaded."""
    host = PluginHost()
    host.load_entry_points()
    return host
