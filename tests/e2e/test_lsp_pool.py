"""`jpilot serve` with `model.url`: the LSP as a client of an OpenAI-compatible pool.

The pool is tests/pool_server.py, a small HTTP server around a real Engine on the tiny
bundle (no Ray). Checked through a raw JSON-RPC client: the ghost text through the pool
equals the local engine's (text and range); what leaves the machine is the scrubbed
prefix, the suffix and the session id (no secret, no ignored file); a cancel, a newer
keystroke or an edit closes the stream; a pool that is down, refuses the token, fails,
sends garbage or hangs gives an empty answer in bounded time, a popup and a status that
say why, and the next request after it recovers succeeds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import expected
from rawclient import RawClient

from jpilot.model.engine import Engine
from jpilot.model.remote import session_id

sys.path.insert(0, str(Path(__file__).parents[1]))
from pool_server import TOKEN, PoolServer  # noqa: E402

TEXT = "hello world\ns = '\U0001f600' + ba"  # cursor at the end: line 1, UTF-16 column 13
CURSOR = (1, len("s = '") + 2 + len("' + ba"))
OPTIONS: dict[str, Any] = {"completion": {"branches": 1}}  # branching runs only locally


@pytest.fixture(scope="module")
def pool(tiny_bundle: Path) -> Iterator[PoolServer]:
    """One pool for the module, reset before each test."""
    server = PoolServer(tiny_bundle).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh(request: pytest.FixtureRequest) -> None:
    """Reset the pool's faults and records (when the test uses it)."""
    if "pool" in request.fixturenames:
        server: PoolServer = request.getfixturevalue("pool")
        server.fault, server.token, server.step_delay, server.first_delay = None, TOKEN, 0.0, 0.0
        server.bodies.clear()
        server.headers.clear()
        server.gone.clear()


def start(url: str, root: Path | None = None, **sections: Any) -> RawClient:
    """Start `jpilot serve` pointed at the pool; wait until the model is ready."""
    client = RawClient(env={"JPILOT_TOKEN": TOKEN})
    options = {**OPTIONS, **sections}
    options["model"] = {"url": url, **sections.get("model", {})}
    options["completion"] = {**OPTIONS["completion"], **sections.get("completion", {})}
    client.initialize(options, root)
    end = time.monotonic() + 30
    while client.status()["model"]["state"] == "loading" and time.monotonic() < end:
        time.sleep(0.05)
    return client


@pytest.fixture
def client(pool: PoolServer) -> Iterator[RawClient]:
    """A server pointed at the module's pool."""
    c = start(pool.url)
    yield c
    c.close()


def items(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the inline completion items of a response."""
    assert "result" in reply, reply
    return reply["result"]["items"]


def popups(client: RawClient) -> list[str]:
    """Return the window/showMessage texts received so far."""
    return [
        n["params"]["message"] for n in client.notifications if n["method"] == "window/showMessage"
    ]


def test_ghost_text_through_the_pool_equals_the_local_engine(
    pool: PoolServer, client: RawClient, tiny_engine: Engine
):
    """Same text and range as the local pipeline; the pool saw prefix, suffix and session."""
    uri = "file:///tmp/jpilot-pool/notes.txt"
    client.open(uri, TEXT)
    want = expected(tiny_engine, uri, TEXT, len(TEXT), options=OPTIONS)
    assert want.suggestion is not None and want.suggestion.text
    got = items(client.response(client.inline(uri, *CURSOR)))
    assert [i["insertText"] for i in got] == [want.suggestion.text]
    cursor = {"line": CURSOR[0], "character": CURSOR[1]}
    assert got[0]["range"] == {"start": cursor, "end": cursor}
    (body,) = pool.bodies
    assert body["prompt"] == TEXT and body["suffix"] == "" and body["stream"] is True
    assert set(body) == {"model", "prompt", "suffix", "max_tokens", "temperature", "top_p",
                         "stop", "stream", "logprobs"}  # fmt: skip
    assert body["logprobs"] == 0  # the chosen tokens' only, for completion.minConfidence
    assert pool.headers[0]["x-session-id"] == session_id(uri)
    assert pool.headers[0]["authorization"] == f"Bearer {TOKEN}"
    status = client.status()["model"]
    assert status["error"] is None and status["pool"]["url"] == pool.url
    assert status["pool"]["features"]["hints"].startswith("on the pool")


def test_the_confidence_gate_works_through_the_pool(pool: PoolServer, tiny_engine: Engine):
    """The pool's streamed logprobs give the suggestion the local engine's confidence, so
    completion.minConfidence hides it just above that and shows it just below."""
    uri = "file:///tmp/jpilot-pool/gate.txt"
    want = expected(tiny_engine, uri, TEXT, len(TEXT), options=OPTIONS)
    assert want.suggestion is not None and want.suggestion.confidence is not None
    sure = want.suggestion.confidence
    for gate, shown in ((min(1.0, sure * 1.01), []), (sure * 0.99, [want.suggestion.text])):
        client = start(pool.url, completion={"minConfidence": gate})
        try:
            client.open(uri, TEXT)
            got = items(client.response(client.inline(uri, *CURSOR)))
            assert [i["insertText"] for i in got] == shown, gate
        finally:
            client.close()


def test_fill_in_the_middle_through_the_pool(
    pool: PoolServer, client: RawClient, tiny_engine: Engine
):
    """A cursor mid-file: the text after it goes as `suffix`, the answer matches locally."""
    text = "def add(a, b):\n    return a\n\nprint(add(1, 2))\n"
    offset = text.index("return a") + len("return a")
    uri = "file:///tmp/jpilot-pool/fim.py"
    client.open(uri, text, "python")
    want = expected(tiny_engine, uri, text, offset, "python", OPTIONS)
    got = items(client.response(client.inline(uri, 1, len("    return a"))))
    assert [i["insertText"] for i in got] == ([want.suggestion.text] if want.suggestion else [])
    (body,) = pool.bodies
    assert body["prompt"] == text[:offset] and body["suffix"] == text[offset:]


def test_secrets_and_ignored_files_never_reach_the_pool(pool: PoolServer, tmp_path: Path):
    """The buffer's secret is scrubbed; an ignored file is neither completed nor a snippet."""
    (tmp_path / ".jpilotignore").write_text("private.py\n")
    key = "AKIA" + "IOSFODNN7EXAMPL1"
    main = (tmp_path / "main.py").as_uri()
    private = (tmp_path / "private.py").as_uri()
    # hints and hover summaries forced on: their model work must skip the ignored file too
    client = start(pool.url, tmp_path, hints={"debounceMs": 0, "surprisal": True},
                   docs={"summary": True})  # fmt: skip
    try:
        client.open(private, "def private_helper():\n    return 'PRIVATE_MARKER'\n", "python")
        text = f'import boto3\nKEY = "{key}"\nclient = boto3.client("s3", key'
        client.open(main, text, "python")
        assert "result" in client.response(client.inline(main, 2, len(text.split("\n")[2])))
        assert "result" in client.response(client.inline(private, 1, 5))
        hover = {"textDocument": {"uri": private}, "position": {"line": 0, "character": 6}}
        client.request("textDocument/hover", hover)
        time.sleep(0.5)  # the diagnostics of both documents (debounce 0) have run
    finally:
        client.close()
    assert pool.bodies, "the completion of main.py went to the pool"
    sent = repr(pool.bodies)
    assert key not in sent and "<redacted>" in sent
    assert "PRIVATE_MARKER" not in sent and "private_helper" not in sent


@pytest.mark.parametrize("how", ["cancelRequest", "newer keystroke", "edit"])
def test_a_cancel_closes_the_stream(pool: PoolServer, client: RawClient, how: str):
    """The pool sees the disconnect at once; the server answers and stays usable."""
    pool.first_delay = 3.0
    uri = f"file:///tmp/jpilot-pool/cancel-{how.replace(' ', '-')}.txt"
    client.open(uri, TEXT)
    first = client.inline(uri, *CURSOR)
    time.sleep(0.5)
    assert session_id(uri) not in pool.gone  # the stream is open
    t0, second = time.monotonic(), None
    if how == "cancelRequest":
        client.notify("$/cancelRequest", {"id": first})
    elif how == "newer keystroke":
        second = client.inline(uri, *CURSOR)
    else:
        change = {"range": {"start": {"line": 0, "character": 0},
                            "end": {"line": 0, "character": 0}}, "text": "# "}  # fmt: skip
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]})  # fmt: skip
    reply = client.response(first, timeout=5)
    assert reply.get("result") in (None, {"items": []}) or reply["error"]["code"] in (
        -32800,
        -32801,
    )
    while session_id(uri) not in pool.gone and time.monotonic() - t0 < 20:  # a hang guard
        time.sleep(0.01)
    assert pool.gone.count(session_id(uri)) == 1
    pool.first_delay = 0.0
    if second is not None:  # it holds the engine's worker until its own deadline otherwise
        client.notify("$/cancelRequest", {"id": second})
        client.response(second, timeout=5)
    client.open("file:///tmp/jpilot-pool/after.txt", TEXT)
    assert items(client.response(client.inline("file:///tmp/jpilot-pool/after.txt", *CURSOR)))


FAULTS = {
    "down": "is not reachable",
    "401": "401",
    "500": "replica exploded with detail",  # the server's message, on one line
    "garbage": "malformed JSON",
    "not-object": "JSON that is not an object",  # malformed server-sent events
    "cut": "ended before [DONE]",  # killed mid-stream
    "hang": "sent nothing before the deadline",
    "slow": "sent nothing before the deadline",  # heartbeats, no text before it
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_pool_gives_an_empty_answer_and_says_why(
    tiny_bundle: Path, fault: str, tmp_path: Path
):
    """Empty answer within the timeout, a popup and jpilot.status say why; then recovery."""
    pool = PoolServer(tiny_bundle).start()
    port = int(pool.url.rsplit(":", 1)[1].split("/")[0])
    client = start(pool.url, completion={"timeoutMs": 500})
    try:
        uri = "file:///tmp/jpilot-pool/fault.txt"
        client.open(uri, TEXT)
        assert items(client.response(client.inline(uri, *CURSOR)))  # healthy first
        if fault == "down":
            pool.stop()
        elif fault == "401":
            pool.token = "another-token"
        elif fault == "slow":
            pool.first_delay = 3.0
        else:
            pool.fault = fault
        # completion.timeoutMs is 500: "hang" and "slow" send nothing for 3 s or more, so
        # an answer that waited for the pool would carry its text, or time out here.
        reply = client.response(client.inline(uri, *CURSOR), timeout=20)
        assert items(reply) == []
        status = client.status()["model"]
        assert FAULTS[fault] in (status["error"] or ""), status
        assert "\n" not in status["error"]
        end = time.monotonic() + 2
        while not popups(client) and time.monotonic() < end:
            client.status()  # collects notifications on the way
        assert any(FAULTS[fault] in text for text in popups(client)), popups(client)
        if fault == "401":
            assert "JPILOT_TOKEN" in status["error"]
        if fault == "down":
            pool = PoolServer(tiny_bundle, port=port).start()
        pool.fault, pool.token, pool.first_delay = None, TOKEN, 0.0
        assert items(client.response(client.inline(uri, *CURSOR)))  # the next one works
        assert client.status()["model"]["error"] is None
    finally:
        client.close()
        pool.stop()


def test_a_pool_down_at_start_is_used_once_it_is_up(tiny_bundle: Path):
    """The server starts (approximate tokenizer), says why, and switches once the pool is up."""
    pool = PoolServer(tiny_bundle)  # bound, not serving: connections wait, then time out
    pool.stop()
    port = int(pool.url.rsplit(":", 1)[1].split("/")[0])
    client = start(f"http://127.0.0.1:{port}/v1", completion={"timeoutMs": 500})
    try:
        status = client.status()["model"]
        assert status["state"] == "ready" and "is not reachable" in status["error"]
        assert status["pool"]["features"]["hints"].startswith("off")
        pool = PoolServer(tiny_bundle, port=port).start()
        time.sleep(5.1)  # RETRY_S: the next completion handshakes again
        uri = "file:///tmp/jpilot-pool/later.txt"
        client.open(uri, TEXT)
        assert items(client.response(client.inline(uri, *CURSOR)))
        status = client.status()["model"]
        assert status["error"] is None and status["pool"]["features"]["tokenizer"] == "the pool's"
    finally:
        client.close()
        pool.stop()
