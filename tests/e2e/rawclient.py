"""A bare JSON-RPC client over a `jpilot serve` subprocess, for protocol-level tests.

pytest-lsp's client only sends well-formed, typed messages; these tests need to send
garbage, bad params and out-of-order requests, and to see the exit status.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jpilot.plugins.testing_server import read_message

SERVER = [sys.executable, "-m", "jpilot.lsp.cli", "serve", "--log-level", "WARNING"]


class RawClient:
    """Start the server, frame messages, and collect what comes back."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        log_level: str = "WARNING",
        command: list[str] | None = None,  # another `jpilot serve` (e.g. a wheel's venv)
    ) -> None:
        self.proc = subprocess.Popen(
            [*(command or SERVER)[:-1], log_level],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # every response seen, in order
        self.stderr: list[bytes] = []
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _read(self) -> None:
        """Parse framed messages from the server's stdout into the inbox."""
        out = self.proc.stdout
        assert out is not None
        while (message := read_message(out)) is not None:
            self.inbox.put(message)

    def _drain_stderr(self) -> None:
        """Keep the server's stderr from filling its pipe."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def write(self, body: bytes) -> None:
        """Send raw bytes as one framed message."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def send(self, method: str, params: Any = None, msg_id: Any = "auto") -> Any:
        """Send a request (returning its id) or, with msg_id=None, a notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        if msg_id == "auto":
            self._next += 1
            msg_id = self._next
        if msg_id is not None:
            message["id"] = msg_id
        self.write(json.dumps(message).encode())
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        """Send a notification."""
        self.send(method, params, msg_id=None)

    def response(self, msg_id: Any, timeout: float = 20.0) -> dict[str, Any]:
        """Wait for the response to `msg_id`, answering server requests on the way."""
        end = time.monotonic() + timeout
        for seen in self.responses:  # it may have come while waiting for another one
            if seen.get("id") == msg_id:
                return seen
        while True:
            message = self.inbox.get(timeout=max(0.01, end - time.monotonic()))
            if "method" in message and "id" in message:  # a server->client request
                self.write(
                    json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": None}).encode()
                )
                continue
            if "method" in message:
                self.notifications.append(message)
                continue
            self.responses.append(message)
            if message.get("id") == msg_id:
                return message

    def request(self, method: str, params: Any = None, timeout: float = 20.0) -> dict[str, Any]:
        """Send a request and wait for its response."""
        return self.response(self.send(method, params), timeout)

    def initialize(self, options: Any = None, root: Path | None = None) -> dict[str, Any]:
        """Run the initialize handshake."""
        params = {
            "processId": os.getpid(),
            "rootUri": root.as_uri() if root else None,
            "capabilities": {},
            "initializationOptions": options,
        }
        reply = self.request("initialize", params)
        self.notify("initialized", {})
        return reply

    def open(self, uri: str, text: str, language: str = "plaintext", version: int = 1) -> None:
        """Send textDocument/didOpen."""
        doc = {"uri": uri, "languageId": language, "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": doc})

    def inline(self, uri: str, line: int, character: int) -> Any:
        """Send textDocument/inlineCompletion; return the request id."""
        return self.send(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 2},
            },
        )

    def status(self) -> dict[str, Any]:
        """Return the jpilot.status command's answer."""
        return self.request("workspace/executeCommand", {"command": "jpilot.status"})["result"]

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the process to end and return its exit status (a signal: print stderr)."""
        code = self.proc.wait(timeout)
        if code < 0:
            time.sleep(0.2)
            print(b"".join(self.stderr).decode(errors="replace")[-4000:])
        return code

    def close(self) -> None:
        """Kill the server if it is still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
