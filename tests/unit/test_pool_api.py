"""The pool's request parsing, stream hold-back and `jpilot pool serve` checks (no Ray)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from jpilot.lsp.cli import build_parser
from jpilot.model.errors import ModelError
from jpilot.model.serve import api
from jpilot.model.serve.cli import _plan, is_loopback, parse_autoscale, read_token_hashes
from jpilot.model.serve.replica import held_back


def test_defaults_are_openais() -> None:
    req = api.parse_request({"prompt": ["x = "]}, 511)
    assert (req.prompt, req.suffix, req.max_tokens, req.temperature, req.top_p) == (
        "x = ",
        None,
        16,
        1.0,
        1.0,
    )
    assert api.parse_request({"prompt": "a", "stop": "\n"}, 511).stop == ["\n"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": 3}, "prompt"),
        ({"prompt": "a", "max_tokens": 600}, "max_tokens"),
        ({"prompt": "a", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "a", "temperature": "hot"}, "temperature"),
        ({"prompt": "a", "n": 2}, "n"),
        ({"prompt": "a", "stop": [""]}, "stop"),
        ({"prompt": "a", "suffix": "b", "echo": True}, "echo"),
        ({"prompt": "a", "stream": True, "logprobs": 1}, "logprobs"),
        ({"prompt": "a", "stream": True, "echo": True}, "echo"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_fields_say_which(body: object, field: str) -> None:
    with pytest.raises(api.RequestError, match=field):
        api.parse_request(body, 511)


def test_debug_delay_only_on_debug_pools() -> None:
    body = {"prompt": "a", "jpilot_debug_step_delay": 0.5}
    assert api.parse_request(body, 511).debug_step_delay == 0
    assert api.parse_request(body, 511, debug=True).debug_step_delay == 0.5


def test_logprobs_offsets_and_usage() -> None:
    lp = api.logprobs_object(["ab", "c", "de"], [None, -1.0, -0.5], [5, 6, 7])
    assert lp["text_offset"] == [0, 2, 3] and lp["token_ids"] == [5, 6, 7]
    use = api.usage(10, 3, 9)
    assert use["total_tokens"] == 13 and use["prompt_tokens_details"]["cached_tokens"] == 9
    assert api.sse("[DONE]") == b"data: [DONE]\n\n"


def test_stream_holds_back_what_a_stop_or_split_character_may_take() -> None:
    assert held_back("x = 1\n", ["\n\n"]) == 1
    assert held_back("x = 1", ["\n\n"]) == 0
    assert held_back("caf\ufffd", []) == 1
    assert held_back("return E", ["END"]) == 1


def test_tokens_are_kept_as_hashes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# team\nalice-0123456789abcdef\n\nbob-0123456789abcdef\n")
    hashes = read_token_hashes(path)
    assert hashes == [
        api.hash_token("alice-0123456789abcdef"),
        api.hash_token("bob-0123456789abcdef"),
    ]
    path.write_text("short\n")
    with pytest.raises(ModelError, match="16 characters"):
        read_token_hashes(path)


def test_autoscale_and_loopback() -> None:
    assert parse_autoscale("1:4") == (1, 4)
    for bad in ("4:1", "x", "0:0"):
        with pytest.raises(ModelError, match="autoscale"):
            parse_autoscale(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.2")


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["pool", "serve", *argv])


def test_no_token_file_means_loopback_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelError, match="without --token-file"):
        _plan(_args("--host", "0.0.0.0"))
    plan = _plan(_args("--replicas", "2"))
    assert plan["token_hashes"] == [] and plan["replicas"] == 2 and plan["name"] == "default"
    assert "loopback" in capsys.readouterr().err


def test_token_file_opens_other_hosts(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("team-token-0123456789\n")
    plan = _plan(
        _args("--host", "0.0.0.0", "--token-file", str(tmp_path / "t"), "--autoscale", "1:3")
    )
    assert len(plan["token_hashes"]) == 1 and plan["autoscale"] == (1, 3)
