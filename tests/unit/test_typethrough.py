"""Type-through: the rest of a suggestion while its start is typed, and nothing otherwise."""

from __future__ import annotations

from jpilot.lsp.typethrough import TypeThrough
from jpilot.plugins.api import CompletionRequest, Suggestion
from jpilot.plugins.settings import Settings

URI = "file:///a.py"
BEFORE, AFTER = "def f(x):\n    return x.up", "\n\nprint(f('a'))\n"


def request(text: str, offset: int, uri: str = URI) -> CompletionRequest:
    return CompletionRequest(uri, "python", text, offset, 1, Settings())


def shown(suggestion: str = "per()", replace: int = 0) -> TypeThrough:
    """A TypeThrough that answered `suggestion` at the end of BEFORE."""
    tt = TypeThrough()
    tt.remember(request(BEFORE + AFTER, len(BEFORE)), Suggestion(suggestion, len(BEFORE), replace))
    return tt


def test_typing_the_start_leaves_the_rest_at_the_new_cursor() -> None:
    rest = shown(replace=1).rest(request(BEFORE + "pe" + AFTER, len(BEFORE) + 2))
    assert rest is not None
    assert (rest.text, rest.offset, rest.replace) == ("r()", len(BEFORE) + 2, 1)


def test_anything_else_falls_through_to_the_model() -> None:
    tt = shown()
    n = len(BEFORE)
    assert tt.rest(request(BEFORE + "px" + AFTER, n + 2)) is None  # typed something else
    assert tt.rest(request(BEFORE + AFTER, n)) is None  # nothing typed
    assert tt.rest(request(BEFORE + "per()" + AFTER, n + 5)) is None  # all of it typed
    assert tt.rest(request(BEFORE + "p" + AFTER + "#", n + 1)) is None  # an edit elsewhere
    assert tt.rest(request("#" + BEFORE + "p" + AFTER, n + 2)) is None  # ... before, too
    assert tt.rest(request(BEFORE + "p" + AFTER, n + 1, "file:///b.py")) is None  # other doc
    tt.forget(URI)
    assert tt.rest(request(BEFORE + "p" + AFTER, n + 1)) is None
