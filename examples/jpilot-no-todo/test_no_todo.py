"""The example plugin's tests, written with jpilot.plugins.testing as an outside author would."""

from pathlib import Path

import jpilot_no_todo

from jpilot.plugins import testing
from jpilot.plugins.api import Suggestion


def test_it_loads():
    assert testing.problems(jpilot_no_todo) == []


def test_a_todo_line_is_cut():
    request = testing.request("def total(xs):\n    ", plugin=jpilot_no_todo, name="no-todo")
    suggestion = Suggestion("t = 0\n    # TODO: handle errors\n    return t", request.offset)
    testing.call(jpilot_no_todo, "jpilot_postprocess", request=request, suggestion=suggestion)
    assert suggestion.text == "t = 0"


def test_the_words_come_from_the_settings():
    settings = {"plugins": {"no-todo": {"words": ["HACK"]}}}
    request = testing.request("", plugin=jpilot_no_todo, name="no-todo", settings=settings)
    suggestion = Suggestion("x = 1  # TODO\ny = 2  # HACK", 0)
    testing.call(jpilot_no_todo, "jpilot_postprocess", request=request, suggestion=suggestion)
    assert suggestion.text == "x = 1  # TODO"


def test_through_a_real_server():
    with testing.serve({"no-todo": Path(jpilot_no_todo.__file__)}) as server:
        status = server.status()
        assert "no-todo" in status["plugins"]["loaded"]
        assert status["plugins"]["facts"]["no-todo"] == {"dropped": 0}
        server.configure({"plugins": {"no-todo": {"words": "TODO"}}})  # not a list
        assert any("plugins.no-todo.words: expected a list" in m
                   for m in server.messages(wait_for="no-todo.words"))  # fmt: skip
