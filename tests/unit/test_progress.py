"""Progress output: plain lines when stderr is a log, never a carriage-return counter."""

from __future__ import annotations

import pytest

from jpilot.model import progress


def test_a_log_gets_lines_not_carriage_returns(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)  # a line for every item
    assert list(progress.track(range(3), 3, "completing")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err == "completing: 1/3\ncompleting: 2/3\ncompleting: 3/3\n"


def test_by_default_a_log_gets_the_last_line_only(capsys: pytest.CaptureFixture) -> None:
    assert list(progress.track(iter("abcd"), 4, "scoring")) == list("abcd")
    assert capsys.readouterr().err == "scoring: 4/4\n"
