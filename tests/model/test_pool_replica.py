"""A pool replica's engine wrapper without Ray: streaming and cancel on close."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from jpilot.model.default import default_bundle_path
from jpilot.model.engine import Engine, EngineConfig
from jpilot.model.serve.api import parse_request
from jpilot.model.serve.replica import PoolEngine


@pytest.fixture(scope="module")
def pool() -> PoolEngine:
    return PoolEngine(Engine(default_bundle_path(), EngineConfig(device="cpu", threads=1)), "d")


def test_stream_adds_up_to_the_plain_answer(pool: PoolEngine) -> None:
    body = {"prompt": "def f(x):\n    return", "max_tokens": 12, "temperature": 0}

    async def both() -> tuple[dict, list[dict]]:
        # int8 weights: a near-tie may go either way when the prefill is cut differently,
        # so both answers start from the same cached prefix
        await pool.complete(parse_request(body, 511))
        plain = await pool.complete(parse_request(body, 511))
        events = [e async for e in pool.stream(parse_request({**body, "stream": True}, 511))]
        assert events[-1] == b"data: [DONE]\n\n"
        return plain, [json.loads(e[6:]) for e in events[:-1]]

    plain, chunks = asyncio.run(both())
    assert "".join(c["choices"][0]["text"] for c in chunks) == plain["choices"][0]["text"]
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] > 0


def test_closing_a_stream_cancels_the_decode(pool: PoolEngine) -> None:
    body = {"prompt": "x", "max_tokens": 300, "stream": True, "jpilot_debug_step_delay": 0.02}
    before = dict(pool.stats.as_dict())

    async def read_two_then_leave() -> None:
        events = pool.stream(parse_request(body, 511, debug=True))
        for _ in range(2):
            await anext(events)
        await events.aclose()

    asyncio.run(read_two_then_leave())
    deadline = time.monotonic() + 5
    while pool.stats.cancelled == before["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.stats.cancelled == before["cancelled"] + 1
    assert pool.stats.tokens_after_cancel - before["tokens_after_cancel"] <= 1
    assert pool.stats.decoded_tokens - before["decoded_tokens"] < 20
    assert pool.stats.ongoing == 0


def test_interleaved_sessions_keep_their_cache(pool: PoolEngine) -> None:
    # SPM prompts all start with the same two FIM markers; a static-KV engine must not
    # hand one session's cache to another for that 2-token match
    docs = [f"def f{k}(x):\n    '''Return x plus {k}.'''\n    return x" for k in range(3)]

    async def typing() -> list[dict]:
        out = []
        for typed in ("", " +", " + 1"):
            for doc in docs:
                body = {"prompt": doc + typed, "suffix": "\n", "max_tokens": 2, "temperature": 0}
                out.append(await pool.complete(parse_request(body, 511)))
        return out

    answers = asyncio.run(typing())
    for answer in answers[3:]:  # each document's 2nd and 3rd requests
        use = answer["usage"]
        assert use["prompt_tokens_details"]["cached_tokens"] >= use["prompt_tokens"] - 4
