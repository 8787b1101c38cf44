"""RemoteEngine against a server: prompt text, scoring parity, third-party servers, wire.

The server is tests/pool_server.py (a real Engine behind HTTP) or, for wire details,
httpx.MockTransport. The LSP-level checks are in tests/e2e/test_lsp_pool.py.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from jpilot.model.engine import GenerationConfig
from jpilot.model.openai_wire import echoed_scores
from jpilot.model.pool_tokenizer import VIRTUAL_FIM, fallback_tokenizer
from jpilot.model.remote import RemoteEngine, Unsupported, session_id
from jpilot.model.tokenizer import FimTokens

sys.path.insert(0, str(Path(__file__).parents[1]))
from pool_server import TOKEN, PoolServer  # noqa: E402


@pytest.fixture(scope="module")
def pool(tiny_bundle: Path) -> Iterator[PoolServer]:
    server = PoolServer(tiny_bundle).start()
    yield server
    server.stop()


@pytest.fixture
def remote(pool: PoolServer) -> Iterator[RemoteEngine]:
    pool.third_party, pool.fault, pool.step_delay = False, None, 0.0
    engine = RemoteEngine(pool.url, token=TOKEN)
    assert engine.connect(), engine.last_error
    yield engine
    engine.close()


def test_session_id_is_a_hash_of_user_and_document():
    assert session_id("file:///a.py", "ann") == session_id("file:///a.py", "ann")
    assert session_id("file:///a.py", "ann") != session_id("file:///a.py", "bob")
    assert len(session_id("file:///a.py")) == 16


@pytest.mark.parametrize("order", ["psm", "spm"])
def test_prompt_text_splits_fim_prompts_and_restores_healing(remote: RemoteEngine, order: str):
    """Both FIM layouts give back prefix (with the healed bytes) and suffix text."""
    tok = remote.tokenizer
    tok.fim = FimTokens(VIRTUAL_FIM.prefix, VIRTUAL_FIM.suffix, VIRTUAL_FIM.middle, order)
    try:
        ids = tok.fim_prompt(tok.encode("x = fo"), tok.encode("\nprint(x) # \u00e9\U0001f600"))
        prefix, suffix = remote.prompt_text(ids, b"o(")
        assert (prefix, suffix) == ("x = foo(", "\nprint(x) # \u00e9\U0001f600")
        assert remote.prompt_text(tok.encode("plain text"), b"") == ("plain text", None)
    finally:
        tok.fim = VIRTUAL_FIM


def test_scores_match_the_local_engine(pool: PoolServer, remote: RemoteEngine):
    """score_detail and score_variants through echo equal the engine's own numbers."""
    local = pool.engine
    text = "def add(a, b):\n    if a < b:\n        return a + 1\n    return b\n" * 2
    ids = local.tokenizer.encode(text)
    want, got = local.score_detail(ids), remote.score_detail(ids)
    assert np.allclose(got.logp, want.logp, atol=1e-5)
    assert (got.top == want.top).all() and np.allclose(got.top_logp, want.top_logp, atol=1e-5)
    cuts = [(5, [ids[5:8], ids[6:9]]), (20, [ids[20:22]])]
    got_v, want_v = remote.score_variants(ids, cuts), local.score_variants(ids, cuts)
    assert np.allclose(sum(got_v, []), sum(want_v, []), atol=1e-4)


def test_the_confidence_comes_from_the_pools_logprobs(pool: PoolServer, remote: RemoteEngine):
    """A jpilot pool is asked for the chosen tokens' logprobs; the first line's confidence
    (completion.minConfidence's measure) is the local engine's on the same prompt."""
    text = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return"
    ids = remote.tokenizer.encode(text)
    config = GenerationConfig(max_new_tokens=12, temperature=0)
    got = remote.generate(ids, config)
    assert pool.bodies[-1]["logprobs"] == 0
    healed, heal = pool.prompt_ids(pool.bodies[-1]["prompt"], None)  # as the pool runs it
    want = pool.engine.generate(healed, GenerationConfig(12, temperature=0, seed=0, heal=heal))
    assert got.text == want.text and want.confidence is not None
    assert got.confidence == pytest.approx(want.confidence, rel=1e-4)  # cache vs prefill


def test_logprobs_that_do_not_spell_the_text_give_no_confidence():
    """A server whose logprobs disagree with its text (or send none): no gate, no guess."""

    def handler(request: httpx.Request) -> httpx.Response:
        chunk = {
            "choices": [
                {
                    "index": 0,
                    "text": "x = 1\n",
                    "finish_reason": "stop",
                    "logprobs": {"tokens": ["y", " = 2"], "token_logprobs": [0, 0]},
                }
            ]
        }
        body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    engine = mock(handler)
    try:
        result = engine.generate([1, 2, 3], GenerationConfig(max_new_tokens=4))
        assert result.text == "x = 1\n" and result.confidence is None
    finally:
        engine.close()


def test_a_third_party_server_completes_but_does_not_score(pool: PoolServer):
    """No jpilot tokenizer: budget with the default's, FIM as `suffix`, hints off."""
    pool.third_party = True
    engine = RemoteEngine(pool.url, token=TOKEN)
    try:
        assert engine.connect() and not engine.exact
        assert engine.features()["hints"].startswith("off")
        tok = engine.tokenizer
        ids = tok.fim_prompt(tok.encode("def f(x):\n    return x"), tok.encode("\n"))
        result = engine.generate(ids, GenerationConfig(max_new_tokens=8, temperature=0))
        assert result.finish_reason in ("stop", "length") and engine.last_error is None
        assert pool.bodies[-1]["suffix"] == "\n"
        assert "logprobs" not in pool.bodies[-1] and result.confidence is None
        with pytest.raises(Unsupported):
            engine.score_detail(tok.encode("x = 1\n"))
    finally:
        engine.close()
        pool.third_party = False


def test_deadline_returns_what_arrived(pool: PoolServer, remote: RemoteEngine):
    """A slow pool: the text streamed before the deadline, like the local engine."""
    pool.step_delay = 0.1  # 40 tokens would take 4 s
    tok = remote.tokenizer
    config = GenerationConfig(max_new_tokens=40, deadline=time.monotonic() + 0.45)
    result = remote.generate(tok.encode("hello"), config)
    assert result.finish_reason == "deadline" and len(result.tokens) < 40
    assert remote.last_error is None  # the pool answered; it was only slow


def test_cancel_from_another_thread(pool: PoolServer, remote: RemoteEngine):
    pool.step_delay = 0.1
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    result = remote.generate(remote.tokenizer.encode("hello"), GenerationConfig(40), cancel)
    assert result.finish_reason == "cancelled" and len(result.tokens) < 40


def mock(handler) -> RemoteEngine:
    """A RemoteEngine whose HTTP goes to `handler` (no handshake)."""
    return RemoteEngine("http://pool.test/v1", transport=httpx.MockTransport(handler))


def test_a_json_body_instead_of_a_stream_is_read():
    def handler(request: httpx.Request) -> httpx.Response:
        usage = {"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2}}
        body = {"choices": [{"text": "42\nmore", "finish_reason": "stop"}], "usage": usage}
        return httpx.Response(200, json=body)

    engine = mock(handler)
    try:
        result = engine.generate([5, 6], GenerationConfig(max_new_tokens=8, stop=["\n"]))
        assert (result.text, result.prompt_tokens, result.reused_tokens) == ("42", 3, 2)
        assert engine.cache.hits == 1
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (httpx.Response(200, headers={"content-type": "text/event-stream"},
                        content=b'data: {"choices": [{"text": "a"}]}\n\n'), "before [DONE]"),
        (httpx.Response(200, headers={"content-type": "text/event-stream"},
                        content=b'data: {"error": {"message": "overloaded"}}\n\n'), "overloaded"),
        (httpx.Response(200, headers={"content-type": "text/event-stream"},
                        content=b'data: {"choices": 5}\n\n'), "not a text completion"),
        (httpx.Response(503, text="<html>\nbusy\n</html>"), "503"),
    ],
)  # fmt: skip
def test_broken_answers_are_one_line_errors(response: httpx.Response, says: str):
    errors: list[str] = []
    engine = mock(lambda request: response)
    engine.on_error = errors.append
    try:
        result = engine.generate([5], GenerationConfig(max_new_tokens=4))
        assert (result.text, result.finish_reason) == ("", "error")
        assert says in (engine.last_error or "") and "\n" not in (engine.last_error or "")
        assert errors == [engine.last_error]
    finally:
        engine.close()


def test_top_choices_from_strings_when_the_server_gives_no_ids():
    """OpenAI's top_logprobs (strings) map back to ids through the local tokenizer."""
    tok = fallback_tokenizer()
    ids = tok.encode("import os\n")
    answer = {"choices": [{"logprobs": {
        "tokens": [tok.decode([i]) for i in ids],
        "token_logprobs": [None] + [-1.0] * (len(ids) - 1),
        "top_logprobs": [None] + [{tok.decode([ids[1]]): -0.5}] * (len(ids) - 1),
    }}]}  # fmt: skip
    scores = echoed_scores(json.loads(json.dumps(answer)), ids, tok)
    assert scores[1] == (-1.0, ids[1], -1.0)  # the top choice is the token itself
    assert scores[2][1] == ids[1] and scores[2][2] == -0.5
    with pytest.raises(ValueError, match="not the local tokenizer's"):
        echoed_scores(answer, [*ids[:-1], ids[-1] + 1], tok)
