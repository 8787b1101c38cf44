"""A small JSON-RPC client over a real `jpilot serve`, for testing plugins end to end.

`jpilot.plugins.testing.serve()` starts it with the plugins installed; the methods here
send the usual LSP requests and return their results as plain JSON data. Server-to-client
requests are answered with null, and notifications are kept (`messages()` returns the
window/showMessage texts, `diagnostics()` waits for textDocument/publishDiagnostics).
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
from typing import IO, Any

TIMEOUT_S = 30.0


class ServerError(RuntimeError):
    """A JSON-RPC error answer: `code` and `message` as the server sent them."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """Read one Content-Length framed message (client side); None at the end of the stream.

    Blocking and unbounded, unlike the server's reader (jpilot.lsp.transport): for clients
    of `jpilot serve` such as these helpers, the raw-protocol tests and the benchmark.
    """
    length = 0
    while True:
        line = stream.readline()
        if not line:
            return None
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line in (b"\r\n", b"\n"):
            break
    return json.loads(stream.read(length))


class TestServer:
    """`jpilot serve` in a subprocess with `site` on its Python path, and its client."""

    __test__ = False  # not a pytest test class

    def __init__(self, site: Path | None = None, env: dict[str, str] | None = None) -> None:
        path = [str(site)] if site else []
        path += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jpilot.lsp.cli", "serve", "--log-level", "WARNING"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(path), **(env or {})},
        )
        self.notifications: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._responses: queue.Queue[dict[str, Any]] = queue.Queue()
        self._seen: dict[Any, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._next = 0
        self._write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    # ------------------------------------------------------------------ wire
    def _read(self) -> None:
        """Route the server's messages: answer its requests, keep the rest."""
        assert self.proc.stdout is not None
        while (message := read_message(self.proc.stdout)) is not None:
            if "method" in message and "id" in message:
                self._write({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            with self._changed:
                if "method" in message:
                    self.notifications.append(message)
                else:
                    self._seen[message.get("id")] = message
                self._changed.notify_all()

    def _drain(self) -> None:
        """Keep the server's stderr (its log) from filling the pipe."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def _write(self, message: dict[str, Any]) -> None:
        """Send one framed message."""
        body = json.dumps(message).encode()
        with self._write_lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            self.proc.stdin.flush()

    def wait(self, predicate: Any, timeout: float = TIMEOUT_S) -> Any:
        """Wait until predicate() returns something truthy; return it (TimeoutError if not)."""
        end = time.monotonic() + timeout
        with self._changed:
            while not (found := predicate()):
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    log = "".join(self.stderr[-30:])
                    raise TimeoutError(f"no answer from jpilot serve; its log:\n{log}")
                self._changed.wait(min(left, 0.2))
            return found

    def request(self, method: str, params: Any = None, timeout: float = TIMEOUT_S) -> Any:
        """Send a request; return its result, or raise ServerError with its error."""
        self._next += 1
        msg_id = self._next
        self._write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        answer = self.wait(lambda: self._seen.pop(msg_id, None), timeout)
        if "error" in answer:
            raise ServerError(answer["error"]["code"], answer["error"]["message"])
        return answer.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        """Send a notification."""
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    # ------------------------------------------------------------------ LSP
    def initialize(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run the initialize handshake with `settings` as initializationOptions."""
        params = {"processId": os.getpid(), "rootUri": None, "capabilities": {},
                  "initializationOptions": settings or {}}  # fmt: skip
        result = self.request("initialize", params)
        self.notify("initialized", {})
        return result

    def configure(self, settings: dict[str, Any]) -> None:
        """Send new settings (workspace/didChangeConfiguration)."""
        self.notify("workspace/didChangeConfiguration", {"settings": settings})

    def open(self, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
        """Open a document (textDocument/didOpen)."""
        doc = {"uri": uri, "languageId": language_id, "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": doc})

    def hover(self, uri: str, line: int, character: int) -> str | None:
        """Return the hover's Markdown at a position, or None."""
        result = self.request("textDocument/hover", _at(uri, line, character))
        return result["contents"]["value"] if result else None

    def inline(self, uri: str, line: int, character: int) -> list[dict[str, Any]]:
        """Return the inline completion items (ghost text) at a position."""
        params = _at(uri, line, character) | {"context": {"triggerKind": 2}}
        return (self.request("textDocument/inlineCompletion", params) or {}).get("items", [])

    def completion(self, uri: str, line: int, character: int) -> list[dict[str, Any]]:
        """Return the completion items at a position."""
        return (self.request("textDocument/completion", _at(uri, line, character)) or {}).get(
            "items", []
        )

    def code_actions(
        self, uri: str, start: tuple[int, int], end: tuple[int, int], diagnostics: Any = ()
    ) -> list[dict[str, Any]]:
        """Return the code actions for a range ((line, character) pairs)."""
        params = {"textDocument": {"uri": uri}, "range": _range(start, end),
                  "context": {"diagnostics": list(diagnostics)}}  # fmt: skip
        return self.request("textDocument/codeAction", params) or []

    def diagnostics(self, uri: str, timeout: float = TIMEOUT_S) -> list[dict[str, Any]]:
        """Wait for the next diagnostics published for `uri` and return them."""
        start = len(self.notifications)

        def published() -> list[dict[str, Any]] | None:
            for note in self.notifications[start:]:
                params = note.get("params") or {}
                if note["method"] == "textDocument/publishDiagnostics" and params["uri"] == uri:
                    return [params["diagnostics"]]
            return None

        return self.wait(published, timeout)[0]

    def status(self) -> dict[str, Any]:
        """Return the `jpilot.status` command's answer."""
        return self.request("workspace/executeCommand", {"command": "jpilot.status"})

    def messages(self, wait_for: str | None = None, timeout: float = TIMEOUT_S) -> list[str]:
        """Return the window/showMessage texts so far; with `wait_for`, first wait for one
        that contains it."""

        def texts() -> list[str]:
            return [n["params"]["message"] for n in self.notifications
                    if n["method"] == "window/showMessage"]  # fmt: skip

        if wait_for is not None:
            self.wait(lambda: any(wait_for in t for t in texts()), timeout)
        return texts()

    def close(self) -> int:
        """Shut the server down (shutdown, exit) and return its exit status."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", timeout=10)
                self.notify("exit")
            return self.proc.wait(10)
        except Exception:
            self.proc.kill()
            return self.proc.wait()


def _at(uri: str, line: int, character: int) -> dict[str, Any]:
    """Return text-document-position params."""
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


def _range(start: tuple[int, int], end: tuple[int, int]) -> dict[str, Any]:
    """Return an LSP range from (line, character) pairs."""
    return {"start": {"line": start[0], "character": start[1]},
            "end": {"line": end[0], "character": end[1]}}  # fmt: skip
