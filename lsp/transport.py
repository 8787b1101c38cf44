"""stdio and TCP transports with bounded memory: oversized messages are skipped.

pygls reads a header line with an unbounded readline() and a body of whatever size its
Content-Length claims. This reader caps both: a header line is read at most
MAX_HEADER bytes at a time, and a message claiming more than MAX_MESSAGE bytes is read
in 1 MiB chunks and dropped (with a log line), so memory stays bounded and the next
message is handled.

TCP (`serve_tcp`) uses the same reader, stricter: a line that is not LSP framing (an
HTTP request line, say) closes the connection, and the first message must be an
`initialize` carrying the server's token in `initializationOptions.token` unless the
user opted out. Each connection gets a fresh server; the port keeps listening after a
client leaves. pygls's own `start_tcp` has none of this, hence the code here.

The message loop is ours too (pygls's `run_async` reads through the event loop and logs
a traceback for every frame that is not JSON): a reader thread reads and parses each
message as soon as it arrives, tells the server at once of a cancel, an edit or a newer
request (`JpilotServer.early_notice`: a stale answer is then never sent, even while the
event loop is busy), and hands the message to the event loop, at most MAX_QUEUED ahead.
A frame that is not a JSON object is dropped with a one-line warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable
from threading import Event
from typing import Any, BinaryIO

from pygls.io_ import StdinAsyncReader, StdoutWriter

log = logging.getLogger(__name__)
MAX_HEADER = 1 << 16  # bytes of one header line
MAX_MESSAGE = 64 << 20  # bytes of one message body (a 20 MB file escaped in JSON fits)
_LENGTH = re.compile(rb"^Content-Length: (\d+)\r\n$")
_FRAMING = re.compile(rb"^(Content-Length: \d+|Content-Type: [ -~]*)?\r\n$", re.IGNORECASE)
AUTH_FAILED = -32001  # JSON-RPC's server-defined range: the TCP client gave no valid token
MAX_QUEUED = 256  # messages read ahead of the event loop (bounds memory under a flood)


class BoundedReader(StdinAsyncReader):
    """pygls's stdin reader with bounded header lines and oversized bodies skipped."""

    def _readline(self) -> bytes:
        """Return a header line (blocking; runs on the executor)."""
        while True:
            line = self.stdin.readline(MAX_HEADER)
            match = _LENGTH.fullmatch(line)
            if match is None or int(match.group(1)) <= MAX_MESSAGE:
                return line
            size = int(match.group(1))
            while line.strip():  # the rest of this message's headers
                line = self.stdin.readline(MAX_HEADER)
                if not line:
                    return b""
            log.warning("skipped a %d-byte message (over %d bytes)", size, MAX_MESSAGE)
            while size > 0:
                chunk = self.stdin.read(min(size, 1 << 20))
                if not chunk:
                    return b""
                size -= len(chunk)

    def read_body(self, n: int) -> bytes:
        """Return a message body of n bytes (b"" at the end of input)."""
        return self.stdin.read(n)

    def read_message(self) -> bytes | None:
        """Return the next message body, or None at the end of input (blocking)."""
        length = 0
        while True:
            line = self._readline()
            if not line:
                return None
            match = _LENGTH.fullmatch(line)
            if match is not None:
                length = int(match.group(1))
            elif not line.strip() and length:
                body = self.read_body(length)
                return body or None


class TcpReader(BoundedReader):
    """The bounded reader for one TCP client: LSP framing only, and a token at initialize."""

    def __init__(self, stream: BinaryIO, out: BinaryIO, token_hash: bytes | None, pool: Any):
        super().__init__(stream, pool)
        self.out = out
        self.token_hash = token_hash  # sha256 of the token; None: no token required
        self.checked = False  # the first message has been let through

    def _readline(self) -> bytes:
        """Return a header line, or end the connection on anything that is not LSP framing."""
        line = super()._readline()
        if line and not _FRAMING.fullmatch(line):
            log.warning("closed a TCP connection that does not speak LSP framing")
            return b""
        return line

    def read_body(self, n: int) -> bytes:
        """Return the body, with the token removed from the first one; b"" refuses it."""
        body = self.stdin.read(n)
        if self.checked or not body:
            return body
        self.checked = True
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        answer = authorize(message, self.token_hash)
        if answer is not None:
            log.warning("refused a TCP client: %s", answer["error"]["message"])
            reply = json.dumps(answer).encode()
            self.out.write(b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply))
            self.out.flush()
            return b""
        return json.dumps(message).encode()


def authorize(message: Any, token_hash: bytes | None) -> dict[str, Any] | None:
    """Check a TCP client's first message; strip its token, or return the error answer."""
    if not isinstance(message, dict) or message.get("method") != "initialize":
        why = "the first message on a jpilot TCP connection must be initialize"
    else:
        params = message.get("params")
        options = params.get("initializationOptions") if isinstance(params, dict) else None
        token = options.pop("token", None) if isinstance(options, dict) else None
        if token_hash is None:
            return None
        if isinstance(token, str) and hmac.compare_digest(token_hash, _digest(token)):
            return None
        why = "missing or wrong token (initializationOptions.token; see jpilot serve --help)"
    msg_id = message.get("id") if isinstance(message, dict) else None
    error = {"code": AUTH_FAILED, "message": f"jpilot: {why}"}
    return {"jsonrpc": "2.0", "id": msg_id, "error": error}


def _digest(token: str) -> bytes:
    """Return the sha256 of a token (only hashes are kept in memory)."""
    return hashlib.sha256(token.encode()).digest()


def serve_tcp(make_server: Callable[[], Any], host: str, port: int, token: str | None) -> None:
    """Serve LSP clients on host:port one after another, each with a fresh server."""
    token_hash = None if token is None else _digest(token)
    with socket.create_server((host, port)) as listener:
        log.info("listening on %s:%d (%s)", host, port, "token required" if token else "no token")
        while True:
            conn, peer = listener.accept()
            log.info("TCP client %s connected", peer[0])
            with conn, conn.makefile("rb") as stream, conn.makefile("wb") as out:
                server = make_server()
                reader = TcpReader(stream, out, token_hash, server.thread_pool)
                _serve(server, reader, out)
                server.model.close()
            log.info("TCP client %s left; listening again", peer[0])


def serve_stdio(server: Any, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """Run `server` over stdio with the bounded reader, until exit or EOF."""
    reader = BoundedReader(stdin or sys.stdin.buffer, server.thread_pool)
    _serve(server, reader, stdout or sys.stdout.buffer)


def _serve(server: Any, reader: BoundedReader, out: BinaryIO) -> None:
    """Run the message loop of `server` until exit or the end of input."""
    server._stop_event = stop = Event()
    server.protocol.set_writer(StdoutWriter(out))
    try:
        asyncio.run(message_loop(server, reader, stop))
    except OSError as exc:  # a closed pipe, a reset TCP connection
        log.error("the client's connection is closed (%s); shutting down", exc)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


def parse(body: bytes) -> dict[str, Any] | None:
    """Return a message body as a JSON object, or None (logged on one line) if it is not."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError too
        log.warning("dropped a %d-byte message that is not JSON (%s)", len(body), exc)
        return None
    if not isinstance(data, dict):
        log.warning("dropped a message that is not a JSON object (%s)", type(data).__name__)
        return None
    return data


async def message_loop(server: Any, reader: BoundedReader, stop: Event) -> None:
    """Read messages on a thread and handle them on this loop, until exit or end of input.

    After each message the loop yields once, so the tasks its handler started take their
    first step before the next message is handled (as with pygls's own loop).
    """
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    room = threading.Semaphore(MAX_QUEUED)

    def post(data: dict[str, Any] | None) -> bool:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, data)
            return True
        except RuntimeError:  # the loop is closed: the server is ending
            return False

    def read() -> None:
        try:
            while not stop.is_set():
                body = reader.read_message()
                if body is None:
                    break
                data = parse(body)
                if data is None:
                    continue
                try:
                    server.early_notice(data)
                except Exception:
                    log.exception("early notice failed")
                room.acquire()
                if not post(data):
                    return
                if data.get("method") == "exit":
                    return  # no read left blocked on stdin while the interpreter exits
        except (OSError, ValueError) as exc:  # a closed pipe or connection
            log.info("input ended: %s", exc)
        post(None)

    threading.Thread(target=read, name="jpilot-reader", daemon=True).start()
    while not stop.is_set() and (data := await inbox.get()) is not None:
        room.release()
        handle(server, data)
        await asyncio.sleep(0)


def handle(server: Any, data: dict[str, Any]) -> None:
    """Structure one message and let the protocol handle it; never raises (but exit)."""
    protocol = server.protocol
    try:
        message = protocol.structure_message(data)
    except Exception as exc:  # a response or notification pygls cannot read
        log.warning("dropped a malformed message: %s", str(exc).splitlines()[0][:200])
        return
    if isinstance(message, dict):  # pygls structures only objects carrying "jsonrpc"
        log.warning("dropped a JSON object that is not a JSON-RPC message")
        return
    try:
        protocol.handle_message(message)
    except Exception as exc:
        log.exception("could not handle a message")
        server.report_server_error(exc, Exception)
