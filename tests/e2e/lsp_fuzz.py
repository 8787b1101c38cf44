"""A protocol fuzzer for `jpilot serve`: hypothesis stateful testing over stdio.

`LspMachine` drives one real server process (a RawClient) with random sequences of
didOpen, didChange (random ranges, past-the-end positions, reversed ranges, whole-text
changes, out-of-order versions), didClose, completion / hover / code action requests on
random positions, requests with random or malformed params, unknown methods, cancels of
random ids and garbage frames (well framed, but not JSON, not an object, or not UTF-8),
over documents with astral-plane characters, CRLF, lone CR and empty text, in the
position encoding the server negotiated (utf-16 or utf-8).

Invariants, checked after every step (`documents_match` every few steps):
- the process lives;
- every request gets exactly one answer (no request unanswered at the end, none twice);
- the server's view of each open document (version, length, sha256 through
  `jpilot.status` with {"documents": true}) equals the reference kept here;
- no traceback in the server's log.

The reference applies edits with LSP's rules, written here independently of
jpilot.lsp.positions: lines end at \\n, \\r\\n or \\r; a line past the end means the end
of the document; a character past the end of its line means the line's end; a reversed
range inserts at its start (as the server does).

tests/e2e/test_lsp_fuzz.py runs it briefly in CI; scripts/fuzz_lsp.py runs it long.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import time
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from rawclient import RawClient

PIECES = ["a", "b", "xy", " ", "\t", "é", "ß", "€", "😀", "𝄞", "\n", "\r\n", "\r", "def ", "(", "'"]
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
METHODS = ["textDocument/inlineCompletion", "textDocument/completion", "textDocument/hover",
           "textDocument/codeAction", "workspace/executeCommand", "jpilot/noSuchMethod",
           "codeAction/resolve"]  # fmt: skip
GARBAGE = [b"{not json", b"[1, 2, 3]", b'"a string"', b"\xff\xfe\x00garbage", b"{}", b"null",
           b'{"jsonrpc": "2.0", "method": 5}', b'{"jsonrpc": "2.0", "id": null}']  # fmt: skip
_BREAK = re.compile(r"\r\n|\r|\n")


def lines_of(text: str) -> list[tuple[int, int]]:
    """Return each LSP line's (start, end of content) offsets."""
    spans, start = [], 0
    for m in _BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def unit_len(ch: str, encoding: str) -> int:
    """Return the length of one character in the encoding's code units."""
    if encoding == "utf-8":
        return len(ch.encode("utf-8"))
    return 2 if ord(ch) > 0xFFFF else 1


def offset_of(text: str, line: int, character: int, encoding: str) -> int:
    """Return the offset of an LSP position with LSP's clamping (the reference's own)."""
    spans = lines_of(text)
    if line >= len(spans):
        return len(text)
    start, end = spans[line]
    count = 0
    for i in range(start, end):
        if count >= character:
            return i
        count += unit_len(text[i], encoding)
    return end


def position_of(text: str, offset: int, encoding: str) -> dict[str, int]:
    """Return the LSP position of an offset (a valid one: never inside a character)."""
    for line, (start, end) in enumerate(lines_of(text)):
        if start <= offset <= end:
            units = sum(unit_len(c, encoding) for c in text[start:offset])
            return {"line": line, "character": units}
    return {"line": len(lines_of(text)) - 1, "character": 0}


def digest(text: str) -> str:
    """Return the sha256 the server reports for a document's text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class LspMachine(RuleBasedStateMachine):
    """Random LSP traffic against one server; set `client` and `encoding` before use."""

    client: RawClient
    encoding: str = "utf-16"
    generation = 0  # documents of each run get fresh URIs on the shared server

    def __init__(self) -> None:
        super().__init__()
        LspMachine.generation += 1
        self.run = LspMachine.generation
        self.docs: dict[str, tuple[str, int]] = {}  # uri -> (text, version)
        self.outstanding: list[Any] = []  # request ids sent, not yet answered
        self.answered: dict[Any, int] = {}  # request id -> answers seen
        self.steps = 0
        self.next_id = 0
        self.log_from = len(self.client.stderr)  # this run's part of the server's log

    # ------------------------------------------------------------ plumbing
    def request(self, method: str, params: Any) -> Any:
        """Send a request with a fresh id (unique across runs)."""
        self.next_id += 1
        msg_id = f"fuzz-{self.run}-{self.next_id}"
        self.client.send(method, params, msg_id=msg_id)
        self.outstanding.append(msg_id)
        return msg_id

    def drain(self, until: Any = None, timeout: float = 30.0) -> None:
        """Read everything that arrived; with `until`, wait for that id's answer."""
        end = time.monotonic() + timeout
        while True:
            try:
                wait = max(0.01, end - time.monotonic()) if until is not None else 0
                message = (
                    self.client.inbox.get(timeout=wait) if wait else self.client.inbox.get_nowait()
                )
            except queue.Empty:
                assert until is None, f"no answer to {until} in {timeout} s"
                return
            if "method" in message and "id" in message:  # a server->client request
                reply = {"jsonrpc": "2.0", "id": message["id"], "result": None}
                self.client.write(json.dumps(reply).encode())
            elif "method" in message:
                self.client.notifications.append(message)
            else:
                msg_id = message.get("id")
                self.answered[msg_id] = self.answered.get(msg_id, 0) + 1
                assert self.answered[msg_id] == 1, f"{msg_id} was answered twice"
                if msg_id in self.outstanding:
                    self.outstanding.remove(msg_id)
                if msg_id == until:
                    self.last = message
                    return

    def uri(self, n: int) -> str:
        return f"file:///tmp/jpilot-fuzz/r{self.run}/doc{n}.txt"

    @initialize()
    def every_kind_of_garbage(self) -> None:
        for body in GARBAGE:  # each sequence starts with every known-bad frame once
            self.client.write(body)

    # ------------------------------------------------------------ documents
    @rule(n=st.integers(0, 3), text=texts, language=st.sampled_from(["python", "plaintext"]))
    def open(self, n: int, text: str, language: str) -> None:
        uri = self.uri(n)
        if uri in self.docs:
            return  # a second didOpen of an open document is the client's bug
        self.client.open(uri, text, language=language, version=1)
        self.docs[uri] = (text, 1)

    @precondition(lambda self: self.docs)
    @rule(data=st.data(), new=texts, past_end=st.integers(0, 3), version_step=st.integers(-2, 3))
    def change(self, data: st.DataObject, new: str, past_end: int, version_step: int) -> None:
        uri = data.draw(st.sampled_from(sorted(self.docs)))
        text, version = self.docs[uri]
        a = data.draw(st.integers(0, len(text)))
        b = data.draw(st.integers(0, len(text)))
        start, end = position_of(text, a, self.encoding), position_of(text, b, self.encoding)
        if past_end == 1:
            end = {"line": end["line"], "character": end["character"] + 1000}
        elif past_end == 2:
            end = {"line": end["line"] + 1000, "character": 3}
        version += version_step  # out of order, repeated or skipping versions
        change = {"range": {"start": start, "end": end}, "text": new}
        if past_end == 3:
            change = {"text": new}  # the whole text
        document = {"uri": uri, "version": version}
        self.client.notify(
            "textDocument/didChange", {"textDocument": document, "contentChanges": [change]}
        )
        if past_end == 3:
            self.docs[uri] = (new, version)
            return
        lo = offset_of(text, start["line"], start["character"], self.encoding)
        hi = max(lo, offset_of(text, end["line"], end["character"], self.encoding))
        self.docs[uri] = (text[:lo] + new + text[hi:], version)

    @precondition(lambda self: self.docs)
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        uri = data.draw(st.sampled_from(sorted(self.docs)))
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        del self.docs[uri]

    # ------------------------------------------------------------ requests
    @rule(data=st.data(), method=st.sampled_from(METHODS[:4]), n=st.integers(0, 4))
    def ask(self, data: st.DataObject, method: str, n: int) -> None:
        uri = self.uri(n)
        text = self.docs.get(uri, ("", 0))[0]
        pos = position_of(text, data.draw(st.integers(0, len(text))), self.encoding)
        if data.draw(st.booleans()):
            pos = {"line": pos["line"] + data.draw(st.integers(0, 3)),
                   "character": pos["character"] + data.draw(st.integers(0, 3))}  # fmt: skip
        params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": pos}
        if method == "textDocument/inlineCompletion":
            params["context"] = {"triggerKind": 2}
        if method == "textDocument/codeAction":
            params = {"textDocument": {"uri": uri}, "range": {"start": pos, "end": pos},
                      "context": {"diagnostics": []}}  # fmt: skip
        self.request(method, params)

    @rule(method=st.sampled_from(METHODS), params=json_values)
    def malformed(self, method: str, params: Any) -> None:
        self.request(method, params)

    @rule(method=st.sampled_from(METHODS[:2]), line=st.integers(-5, -1))
    def negative_position(self, method: str, line: int) -> None:
        self.request(method, {"textDocument": {"uri": self.uri(0)},
                              "position": {"line": line, "character": 0}})  # fmt: skip

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        # an id sent in this run (answered or not: that depends on timing) or an unknown one
        ids = [f"fuzz-{self.run}-{i}" for i in range(1, self.next_id + 2)]
        msg_id = data.draw(st.sampled_from(ids))
        self.client.notify("$/cancelRequest", {"id": msg_id})

    @rule(body=st.sampled_from(GARBAGE) | st.binary(max_size=30))
    def garbage(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        if isinstance(message, dict) and "id" in message and "method" in message:
            return  # that would be a request, not garbage
        self.client.write(body)

    # ------------------------------------------------------------ invariants
    @invariant()
    def lives(self) -> None:
        assert self.client.proc.poll() is None, "the server died"
        self.drain()
        self.steps += 1
        log = b"".join(self.client.stderr[self.log_from :]).decode(errors="replace")
        assert "Traceback" not in log, log[-3000:]

    @invariant()
    def documents_match(self) -> None:
        if self.steps % 5:
            return
        command = {"command": "jpilot.status", "arguments": [{"documents": True}]}
        msg_id = self.request("workspace/executeCommand", command)
        self.drain(until=msg_id)
        seen = self.last["result"]["documents"]
        mine = {uri: doc for uri, doc in seen.items() if f"/r{self.run}/" in uri}
        want = {uri: {"version": v, "length": len(t), "sha256": digest(t)}
                for uri, (t, v) in self.docs.items()}  # fmt: skip
        assert mine == want

    def teardown(self) -> None:
        for uri in list(self.docs):
            self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        end = time.monotonic() + 60
        while self.outstanding:
            assert time.monotonic() < end, f"never answered: {self.outstanding}"
            self.drain(until=self.outstanding[0], timeout=max(0.1, end - time.monotonic()))
        log = b"".join(self.client.stderr[self.log_from :]).decode(errors="replace")
        assert "Traceback" not in log, log[-3000:]


def start_server(bundle: str, encoding: str) -> RawClient:
    """Start a server on `bundle` that negotiated `encoding`; return its client."""
    client = RawClient()
    params = {"processId": None, "rootUri": None, "initializationOptions": {
        "model": {"path": bundle}, "completion": {"maxTokens": 4, "branches": 1},
        "hints": {"debounceMs": 0}},
        "capabilities": {"general": {"positionEncodings": [encoding]}}}  # fmt: skip
    reply = client.request("initialize", params)
    assert reply["result"]["capabilities"]["positionEncoding"] == encoding
    client.notify("initialized", {})
    return client
