"""jpilot's settings: dataclasses with defaults, read from initializationOptions and
workspace/configuration (section "jpilot").

Keys are camelCase in JSON (`completion.maxTokens`) and snake_case here. An invalid value
is reported (the caller shows it with window/showMessage) and its default is kept;
unknown keys are reported too, so a typo never silently does nothing. docs/SERVER.md
documents every setting; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelSettings:
    path: str = ""  # bundle folder; "" = the embedded default model
    device: str = "auto"  # "auto", "cpu" or "cuda"
    threads: int = 0  # ONNX Runtime intra-op threads; 0 = one per core
    url: str = ""  # OpenAI-compatible pool, e.g. http://host:8000/v1; "" = run the model here
    token_env: str = "JPILOT_TOKEN"  # environment variable holding the pool's bearer token
    name: str = ""  # model name sent to the pool; "" = the first one it lists


@dataclass
class CompletionSettings:
    max_tokens: int = 48  # most tokens generated for one suggestion
    temperature: float = 0.0  # 0 = greedy (deterministic)
    top_p: float = 0.95  # nucleus mass when temperature > 0
    multiline: str = "auto"  # "auto" (where the context calls for it), "always", "never"
    latency_budget_ms: int = 150  # above this p50, jpilot shortens suggestions (adaptive)
    timeout_ms: int = 2000  # generation stops at this deadline and returns what it has
    type_through: bool = True  # typing a suggestion's start keeps showing its rest, no model
    branches: int = 3  # greedy: first tokens tried, the likeliest first line kept (1 = off)
    # hide a suggestion when the model's geometric-mean token probability on its first line
    # is below this (0 = show all); "auto": the gate `jpilot model eval --repo --record`
    # calibrated for the loaded bundle (none recorded: show all)
    min_confidence: float | str = "auto"


@dataclass
class ContextSettings:
    max_tokens: int = 1024  # prompt budget (capped by the model's context size)
    suffix_tokens: int = 64  # part of the budget for text after the cursor (FIM)
    snippets: bool = True  # add the windows of other open documents most like the code here
    snippet_tokens: int = 192  # part of the budget for those snippets
    workspace_snippets: bool = False  # also draw them from the workspace's files (not ignored)
    large_file_kb: int = 1024  # larger documents: a window around the cursor, no whole-file passes


@dataclass
class DebugSettings:
    log_prompts: bool = False  # log prompt text (never on by default: it may hold code)


# Model-written features take "auto" (on where the bundle's measured abilities pass the
# thresholds of jpilot.model.abilities, off otherwise), true or false.
Auto = bool | str


@dataclass
class DocsSettings:
    summary: Auto = "auto"  # add a model-written one-line summary to hovers
    docstring: Auto = "auto"  # offer the "Generate docstring" action
    explain: Auto = "auto"  # offer "Explain selection" and answer the jpilot.explain command
    timeout_ms: int = 1500  # bound on model work for one hover, docstring or explanation


@dataclass
class HintsSettings:
    surprisal: Auto = "auto"  # the model's surprising-line and slip hints (syntax errors: always)
    threshold: float = 13.0  # robust z-score (against tokens of its kind) a line needs
    min_bits: float = 4.0  # and the least surprise (bits) of its worst token
    slips: bool = True  # also score comparisons, and/or and integers what-if (surprisal.py)
    max_per_file: int = 5  # most hints published per document
    severity: str = "hint"  # "hint" or "information"
    max_file_kb: int = 256  # larger files get syntax checks only, no model scoring
    debounce_ms: int = 500  # wait after open/save before scoring
    timeout_ms: int = 3000  # bound on model work for a syntax-error fix or a quick fix


@dataclass
class PluginSettings:
    enabled: bool = True
    options: Any = None  # the plugin's own settings: its jpilot_settings dataclass, or None


@dataclass
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    debug: DebugSettings = field(default_factory=DebugSettings)
    docs: DocsSettings = field(default_factory=DocsSettings)
    hints: HintsSettings = field(default_factory=HintsSettings)
    plugins: dict[str, PluginSettings] = field(default_factory=dict)

    def plugin_enabled(self) -> dict[str, bool]:
        """Return {plugin name: enabled} for the plugins named in the settings."""
        return {name: p.enabled for name, p in self.plugins.items()}


# key -> check returning an error text or None; keys are "section.field".
_CHOICES = {
    "model.device": ("auto", "cpu", "cuda"),
    "completion.multiline": ("auto", "always", "never"),
    "hints.severity": ("hint", "information"),
}
_AUTO = {"docs.summary", "docs.docstring", "docs.explain", "hints.surprisal"}  # "auto"|bool
_RANGES: dict[str, tuple[float, float]] = {
    "model.threads": (0, 256),
    "completion.max_tokens": (1, 512),
    "completion.branches": (1, 16),
    "completion.temperature": (0.0, 2.0),
    "completion.top_p": (0.01, 1.0),
    "completion.latency_budget_ms": (1, 60_000),
    "completion.timeout_ms": (10, 600_000),
    "context.max_tokens": (16, 1 << 20),
    "context.suffix_tokens": (0, 1 << 20),
    "context.snippet_tokens": (0, 1 << 20),
    "context.large_file_kb": (16, 1 << 20),
    "docs.timeout_ms": (10, 600_000),
    "hints.threshold": (0.0, 1000.0),
    "hints.min_bits": (0.0, 1000.0),
    "hints.max_per_file": (0, 1000),
    "hints.max_file_kb": (1, 1 << 20),
    "hints.debounce_ms": (0, 60_000),
    "hints.timeout_ms": (10, 600_000),
}


def snake(name: str) -> str:
    """Turn camelCase into snake_case."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def camel(name: str) -> str:
    """Turn snake_case into camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def parse_settings(
    data: Any, base: Settings | None = None, plugins: Mapping[str, Any] | None = None
) -> tuple[Settings, list[str]]:
    """Read settings from a JSON object over `base`; return them and the problems found.

    `plugins` maps each installed plugin's name to its declared settings (the defaults
    dataclass of its jpilot_settings hook, or None): with it, unknown plugin names and
    keys are reported, and every plugin with declared settings gets its `options`.
    """
    settings = dataclasses.replace(base) if base is not None else Settings()
    settings.plugins = dict(settings.plugins)
    errors: list[str] = []
    for name, defaults in (plugins or {}).items():
        if defaults is not None and name not in settings.plugins:
            settings.plugins[name] = PluginSettings(options=defaults)
    if data is None or data == []:  # an empty Lua table reaches us as a JSON list
        return settings, errors
    if not isinstance(data, dict):
        return settings, [f"settings must be an object, got {type(data).__name__}"]
    if set(data) == {"jpilot"} and data["jpilot"] in ([], {}):
        return settings, errors
    if isinstance(data.get("jpilot"), dict):  # accept {"jpilot": {...}} too
        data = data["jpilot"]
    for section, value in data.items():
        if section == "plugins":
            _parse_plugins(value, settings, errors, plugins)
            continue
        current = getattr(settings, snake(section), None)
        if not dataclasses.is_dataclass(current) or isinstance(current, type):
            errors.append(f"unknown setting {section!r}")
            continue
        if not isinstance(value, dict):
            errors.append(f"{section} must be an object, got {value!r}")
            continue
        setattr(settings, snake(section), _parse_section(snake(section), current, value, errors))
    return settings, errors


def _parse_section(section: str, current: Any, data: dict, errors: list[str]) -> Any:
    """Return a copy of one section dataclass with the valid values from `data`."""
    fields = {f.name: f for f in dataclasses.fields(current)}
    updates: dict[str, Any] = {}
    for key, value in data.items():
        name = snake(key)
        if name not in fields:
            errors.append(f"unknown setting {section}.{key}")
            continue
        default = getattr(current, name)
        problem = _check(f"{section}.{name}", value, default, fields[name].metadata)
        if problem:
            errors.append(f"{section}.{camel(name)}: {problem}, got {value!r}; using {default!r}")
        else:
            updates[name] = float(value) if isinstance(default, float) else value
    return dataclasses.replace(current, **updates)


def _check(key: str, value: Any, default: Any, meta: Mapping[str, Any] | None = None) -> str | None:
    """Return why `value` is invalid for `key` (a field's `meta` may give a plugin
    setting's "range" or "choices"), or None."""
    meta = meta or {}
    if key == "completion.min_confidence":
        ok = value == "auto" or (isinstance(value, int | float) and not isinstance(value, bool)
                                 and 0 <= value <= 1)  # fmt: skip
        return None if ok else 'expected "auto" or a number from 0 to 1'
    if key in _AUTO:
        ok = isinstance(value, bool) or value == "auto"
        return None if ok else 'expected "auto", true or false'
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int):
        lo, hi = _RANGES.get(key, meta.get("range", (-(1 << 62), 1 << 62)))
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"expected an integer from {int(lo)} to {int(hi)}"
        return None
    if isinstance(default, float):
        lo, hi = _RANGES.get(key, meta.get("range", (float("-inf"), float("inf"))))
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            return f"expected a number from {lo} to {hi}"
        return None
    if isinstance(default, list | dict):
        kind = "a list" if isinstance(default, list) else "an object"
        return None if isinstance(value, type(default)) else f"expected {kind}"
    if not isinstance(value, str):
        return "expected a string"
    if key == "model.url" and value and not value.startswith(("http://", "https://")):
        return "expected an http:// or https:// URL such as http://host:8000/v1, or nothing"
    choices = _CHOICES.get(key) or meta.get("choices")
    if choices and value not in choices:
        return "expected one of " + ", ".join(repr(c) for c in choices)
    return None


def _parse_plugins(
    value: Any, settings: Settings, errors: list[str], declared: Mapping[str, Any] | None
) -> None:
    """Read `plugins.<name>`: its `enabled` flag and the settings the plugin declared."""
    if not isinstance(value, dict):
        errors.append(f"plugins must be an object, got {value!r}")
        return
    for name, conf in value.items():
        if declared is not None and name not in declared:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "installed: " + ", ".join(declared)
            errors.append(f"unknown plugin {name!r} in plugins ({hint})")
            continue
        if not isinstance(conf, dict) or not isinstance(conf.get("enabled", True), bool):
            errors.append(f'plugins.{name}: expected {{"enabled": true|false, ...}}, got {conf!r}')
            continue
        options = (settings.plugins.get(name) or PluginSettings()).options
        if options is None and declared is not None:
            options = declared.get(name)
        rest = {key: item for key, item in conf.items() if key != "enabled"}
        if dataclasses.is_dataclass(options) and not isinstance(options, type):
            options = _parse_section(f"plugins.{name}", options, rest, errors)
        elif declared is not None:
            errors += [f"unknown setting plugins.{name}.{key}" for key in rest]
        settings.plugins[name] = PluginSettings(enabled=conf.get("enabled", True), options=options)
