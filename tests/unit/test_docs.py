"""Docs helpers: symbols under the cursor, and docstring/explain formatting around the model."""

from __future__ import annotations

import ast
import threading

from fake_engine import FakeEngine, Result

from jpilot.plugins.api import CompletionRequest
from jpilot.plugins.docs import generate
from jpilot.plugins.docs.plugin import GENERATED, jpilot_hover
from jpilot.plugins.docs.symbols import enclosing_definition, symbol_at
from jpilot.plugins.settings import parse_settings

SOURCE = '''import math


@cache
def area(radius: float) -> float:
    return math.pi * radius**2


class Shape(Base):
    """A shape."""

    def grow(self, k):
        total = area(k)
        return total
'''


def test_symbol_at_definition_and_use() -> None:
    sym = symbol_at(SOURCE, 4, 5)  # on "area" in its def line
    assert sym is not None and sym.kind == "function"
    assert sym.signature == "def area(radius: float) -> float" and sym.docstring is None
    use = symbol_at(SOURCE, 12, 17)  # "area" in `total = area(k)`
    assert use is not None and use.name == "area" and use.kind == "function"
    cls = symbol_at(SOURCE, 8, 7)
    assert cls is not None and cls.signature == "class Shape(Base)" and cls.docstring == "A shape."
    plain = symbol_at(SOURCE, 13, 16)  # "total"
    assert plain is not None and (plain.name, plain.kind) == ("total", "name")
    assert symbol_at(SOURCE, 1, 0) is None
    assert symbol_at("def broken(:\n", 0, 5) is None


def test_enclosing_definition_is_the_innermost() -> None:
    node = enclosing_definition(SOURCE, 13)
    assert node is not None and node.name == "grow"
    assert enclosing_definition(SOURCE, 0) is None


def test_docstring_one_line_goes_before_the_body() -> None:
    node = enclosing_definition(SOURCE, 5)
    engine = FakeEngine("Return the area of a circle.")
    ins = generate.docstring(engine, SOURCE, node)  # type: ignore[arg-type]
    assert ins is not None and ins.line == 5
    assert ins.text == '    """Return the area of a circle."""\n'
    assert engine.prompts[0].endswith('def area(radius: float) -> float:\n    """')
    lines = SOURCE.splitlines(keepends=True)
    ast.parse("".join(lines[:5]) + ins.text + "".join(lines[5:]))


def test_docstring_multi_line_is_reindented() -> None:
    node = enclosing_definition(SOURCE, 13)
    ins = generate.docstring(FakeEngine("Grow by k.\n\n  Args:\n k: factor\n"), SOURCE, node)  # type: ignore[arg-type]
    assert ins is not None and ins.line == 12
    assert ins.text == '        """Grow by k.\n\n        Args:\n        k: factor\n        """\n'


def test_docstring_refuses_empty_or_unparseable() -> None:
    node = enclosing_definition(SOURCE, 5)
    assert generate.docstring(FakeEngine("   "), SOURCE, node) is None  # type: ignore[arg-type]
    assert generate.docstring(FakeEngine("ends with a backslash \\"), SOURCE, node) is None  # type: ignore[arg-type]
    one_liner = "def f(): return 1\n"
    assert (
        generate.docstring(FakeEngine("x"), one_liner, enclosing_definition(one_liner, 0)) is None
    )  # type: ignore[arg-type]


def test_summary_is_one_clean_line() -> None:
    node = enclosing_definition(SOURCE, 5)
    assert (
        generate.summary(FakeEngine(' "Area of a circle." '), SOURCE, node) == "Area of a circle."
    )  # type: ignore[arg-type]


def test_explain_keeps_only_the_comment() -> None:
    engine = FakeEngine("Sum the area.\n        # Then return it.\n        return 5")
    ins = generate.explain(engine, SOURCE, 12, 13)  # type: ignore[arg-type]
    assert ins is not None and ins.line == 12
    assert ins.text == "        # Sum the area.\n        # Then return it.\n"
    assert engine.prompts[0].endswith("    def grow(self, k):\n        # ")
    assert generate.explain(engine, SOURCE, 13, 40) is None  # type: ignore[arg-type]


def _hover_request(summary: bool, offset: int) -> CompletionRequest:
    settings, errors = parse_settings({"docs": {"summary": summary}})
    assert errors == []
    return CompletionRequest("file:///a.py", "python", SOURCE, offset, 1, settings)


def test_hover_passes_the_cancel_token_and_skips_the_model_when_summary_is_off() -> None:
    offset = SOURCE.index("def area") + 5
    cancel, seen = threading.Event(), []

    class Recording(FakeEngine):
        def generate(self, prompt, config, cancel=None) -> Result:
            seen.append(cancel)
            return super().generate(prompt, config, cancel)

    engine = Recording(' "Area of a circle." ')
    on = jpilot_hover(_hover_request(True, offset), engine, cancel)
    assert on is not None and on.endswith(f"{GENERATED} Area of a circle.")
    assert seen == [cancel]
    off = jpilot_hover(_hover_request(False, offset), engine, cancel)
    assert off == "```python\ndef area(radius: float) -> float\n```"
    assert seen == [cancel]  # the model did not run again
