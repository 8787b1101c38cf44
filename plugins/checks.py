"""Check what plugins hand the server: hook results against the hookspecs' declared
return types, and hook names against the hookspecs.

The declared types are read from the annotations in jpilot.plugins.hookspecs, so the
specs stay the one source. Results are checked deeply: a list's items, a dict's keys and
values, and the fields of jpilot's own dataclasses (Finding, Action, Edit, Prompt, ...).
lsprotocol types are checked with isinstance only. Both the server's plugin host and
jpilot.plugins.testing use these checks, so a plugin's unit tests see what the server sees.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import json
import types as pytypes
import typing
from collections.abc import Callable
from typing import Any

from jpilot.plugins import hookspecs
from jpilot.plugins.api import PROJECT

_MAX_ITEMS = 10_000  # items of one list checked (a prompt's ids are the longest)


def hook_names() -> list[str]:
    """Return the names of every hookspec, in the order the module declares them."""
    return [
        name
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, f"{PROJECT}_spec")
    ]


@functools.cache
def declared_return(hook: str) -> Any:
    """Return the type a hookspec's annotation declares for its result."""
    annotation = inspect.signature(getattr(hookspecs, hook)).return_annotation
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(hookspecs))  # noqa: S307 - our own module
    return annotation


def type_name(tp: Any) -> str:
    """Return a short readable name for a type, as the hookspecs spell it."""
    if tp is None or tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = str(tp).replace("typing.", "").replace("lsprotocol.types.", "")
    return text.replace("jpilot.plugins.api.", "").replace("jpilot.plugins.features.", "")


# The parts of a result that travel to the client as JSON, per hook.
JSON_PARTS: dict[str, Callable[[Any], Any]] = {
    "jpilot_status": lambda facts: facts,
    "jpilot_execute_command": lambda answer: answer,
    "jpilot_diagnostics": lambda findings: [f.data for f in findings],
    "jpilot_code_actions": lambda actions: [a.data for a in actions],
}


def check_result(hook: str, value: Any) -> str | None:
    """Return why `value` is not a valid result of `hook`, or None if it is."""
    problem = mismatch(value, declared_return(hook), "")
    if problem is not None:
        return f"{problem}; {hook} must return {type_name(declared_return(hook))}"
    if hook in JSON_PARTS:
        try:
            json.dumps(JSON_PARTS[hook](value))
        except (TypeError, ValueError) as exc:
            return f"returned data that is not JSON-able ({exc}); {hook} sends it to the editor"
    return None


def mismatch(value: Any, tp: Any, where: str) -> str | None:
    """Return where and how `value` differs from the type `tp`, or None if it conforms."""
    if tp is Any or tp is object:
        return None
    if tp is None or tp is type(None):
        return None if value is None else _got(where, value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, pytypes.UnionType):
        problems = [mismatch(value, arg, where) for arg in args]
        if None in problems:
            return None
        shaped = [p for arg, p in zip(args, problems, strict=True) if _outer_ok(value, arg)]
        return shaped[0] if len(shaped) == 1 else _got(where, value)
    if origin in (list, tuple, dict, set):
        if not isinstance(value, origin):
            return _got(where, value)
        if origin is dict and len(args) == 2:
            for key, item in list(value.items())[:_MAX_ITEMS]:
                problem = mismatch(key, args[0], f"{where} key") or mismatch(
                    item, args[1], f"{where}[{key!r}]"
                )
                if problem:
                    return problem
        elif origin in (list, set) and args:
            for i, item in enumerate(list(value)[:_MAX_ITEMS]):
                if problem := mismatch(item, args[0], f"{where}[{i}]"):
                    return problem
        return None
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else _got(where, value)
    if isinstance(tp, type):
        if not isinstance(value, tp):
            return _got(where, value)
        if dataclasses.is_dataclass(tp) and tp.__module__.startswith("jpilot.plugins."):
            return _fields_mismatch(value, tp, where)
        return None
    return None  # a type this checker does not know: trust it


def _outer_ok(value: Any, tp: Any) -> bool:
    """Return whether `value` has the outer shape of `tp` (list for list[X], ...)."""
    outer = typing.get_origin(tp) or tp
    return isinstance(outer, type) and isinstance(value, outer)


def _fields_mismatch(value: Any, cls: type, where: str) -> str | None:
    """Return the first field of a jpilot dataclass whose value has the wrong type."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in hints:
            problem = mismatch(getattr(value, f.name), hints[f.name], f"{where}.{f.name}")
            if problem:
                return problem
    return None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Return a dataclass's evaluated field annotations ({} if they cannot be evaluated)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:
        return {}


def _got(where: str, value: Any) -> str:
    """Describe a wrong value: what it is and where it sits in the result."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"returned {type(value).__name__} {text}" + (f" at result{where}" if where else "")


# ------------------------------------------------------------------------ hook names


def hook_problems(plugin: object) -> list[str]:
    """Return what keeps a plugin's hook implementations from being called as written:
    names that match no hookspec (with the closest real one) and wrapper hooks."""
    known = hook_names()
    problems = []
    for name in dir(plugin):
        try:
            obj = getattr(plugin, name)
        except Exception:
            continue
        opts = getattr(obj, f"{PROJECT}_impl", None)
        if not isinstance(opts, dict):
            continue
        hook = opts.get("specname") or name
        if hook not in known and opts.get("optionalhook"):
            continue  # declared optional: for a hook of a newer jpilot, never called here
        if hook not in known:
            close = difflib.get_close_matches(hook, known, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"{hook} is not a jpilot hook{hint}")
        elif opts.get("hookwrapper") or opts.get("wrapper"):
            problems.append(f"{hook}: hook wrappers are not supported; use a plain @hookimpl")
    return problems
