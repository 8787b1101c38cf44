"""`jpilot serve --tcp`: loopback by default, LSP framing only, a token, and it outlives
its clients (docs/DESIGN.md, Reliability 15; security review finding 6)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jpilot.plugins.testing_server import read_message

TOKEN = "s3cret-token-for-the-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connect(port: int) -> socket.socket:
    """Connect to the server, waiting for it to listen."""
    for _ in range(400):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=20)
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server never listened")


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def initialize(options: dict | None) -> bytes:
    params = {"capabilities": {}, "initializationOptions": options}
    return frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})


def answer(conn: socket.socket) -> dict | None:
    """Return the next message from the server, or None when it closed the connection."""
    with conn.makefile("rb") as stream:
        return read_message(stream)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    """A `jpilot serve --tcp` with a token file; yields its port."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    port = free_port()
    cmd = [sys.executable, "-m", "jpilot.lsp.cli", "serve", "--tcp", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--token-file", str(token_file)], stderr=subprocess.DEVNULL)
    yield port
    proc.kill()
    proc.wait()


def test_tcp_needs_a_token_or_an_explicit_opt_out() -> None:
    cmd = [sys.executable, "-m", "jpilot.lsp.cli", "serve", "--tcp", "--port", str(free_port())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={"PATH": ""})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: jpilot serve --tcp needs a token: --token-file FILE")


def test_a_client_with_the_token_is_served_and_the_port_outlives_it(server: int) -> None:
    for _ in range(2):  # the second client finds the port still open and a fresh server
        with connect(server) as conn:
            conn.sendall(initialize({"token": TOKEN}))
            reply = answer(conn)
            assert reply is not None and reply["result"]["serverInfo"]["name"] == "jpilot"
            conn.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
            conn.sendall(frame({"jsonrpc": "2.0", "method": "exit"}))
    listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
    if listening:
        assert f"127.0.0.1:{server}" in listening and f"0.0.0.0:{server}" not in listening


@pytest.mark.parametrize("options", [None, {}, {"token": "wrong"}, {"token": 12}])
def test_a_client_without_the_token_is_refused_before_anything_runs(
    server: int, options: dict | None
) -> None:
    with connect(server) as conn:
        conn.sendall(initialize(options))
        reply = answer(conn)
        assert reply is not None and reply["id"] == 1 and "result" not in reply
        assert reply["error"]["code"] == -32001
        assert "missing or wrong token" in reply["error"]["message"]
        assert answer(conn) is None  # and the connection is closed


def test_a_first_message_that_is_not_initialize_is_refused(server: int) -> None:
    with connect(server) as conn:
        conn.sendall(frame({"jsonrpc": "2.0", "id": 7, "method": "shutdown"}))
        reply = answer(conn)
        assert reply is not None and reply["error"]["code"] == -32001
        assert "must be initialize" in reply["error"]["message"]


def test_an_http_request_is_not_taken_for_lsp(server: int) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    with connect(server) as conn:
        conn.sendall(request.encode())
        assert conn.recv(1 << 16) == b""  # closed, nothing answered
    with connect(server) as conn:  # and the server still serves LSP clients
        conn.sendall(initialize({"token": TOKEN}))
        reply = answer(conn)
        assert reply is not None and "serverInfo" in reply["result"]
