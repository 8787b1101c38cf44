"""The debugging hints say in plain words what is unusual: odds, not z-scores or bits."""

from __future__ import annotations

from jpilot.plugins.debug.plugin import hint_message
from jpilot.plugins.debug.surprisal import Hint


def test_a_slip_asks_did_you_mean_with_the_odds() -> None:
    hint = Hint(3, 10, 11, 9.5, 4.0, ">", "<", kind="operator", slip=True)
    assert hint_message(hint) == (
        "Possible slip: did you mean `<`? Given the code before and after, "
        "the model finds it 16 times likelier here than `>`"
    )


def test_an_unusual_line_names_what_the_model_expected() -> None:
    hint = Hint(3, 10, 14, 15.2, 10.0, "spam", "count", kind="name")
    message = hint_message(hint)
    assert message.startswith("Unusual here: the model expected `count`, not `spam` (1,024 times")
    assert "spread" not in message and "bits" not in message and "15.2" not in message
    nothing = Hint(3, 10, 14, 15.2, 64.0, "spam", "", kind="name")
    assert "expected something else, not `spam` (over a trillion times" in hint_message(nothing)
