"""stdio transport with bounded memory: oversized messages are skipped, not buffered.

pygls reads a header line with an unbounded readline() and a body of whatever size its
Content-Length claims. This reader caps both: a header line is read at most
MAX_HEADER bytes at a time, and a message claiming more than MAX_MESSAGE bytes is read
in 1 MiB chunks and dropped (with a log line), so memory stays bounded and the next
message is handled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Awaitable
from threading import Event
from typing import Any, BinaryIO

from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

log = logging.getLogger(__name__)
MAX_HEADER = 1 << 16  # bytes of one header line
MAX_MESSAGE = 64 << 20  # bytes of one message body (a 20 MB file escaped in JSON fits)
_LENGTH = re.compile(rb"^Content-Length: (\d+)\r\n$")


class BoundedReader(StdinAsyncReader):
    """pygls's stdin reader with bounded header lines and oversized bodies skipped."""

    def readline(self) -> Awaitable[bytes]:
        """Read the next header line, skipping over any oversized message first."""
        return self.loop.run_in_executor(self.executor, self._readline)

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


def serve_stdio(server: Any, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """Run `server` over stdio with the bounded reader, until exit or EOF."""
    server._stop_event = stop = Event()
    reader = BoundedReader(stdin or sys.stdin.buffer, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    try:
        asyncio.run(
            run_async(
                stop_event=stop,
                reader=reader,
                protocol=server.protocol,
                logger=log,
                error_handler=server.report_server_error,
            )
        )
    except BrokenPipeError:
        log.error("the client's pipe is closed; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """Read one Content-Length framed JSON-RPC message (client side); None at EOF.

    For clients of `jpilot serve` (the benchmark, raw-protocol tests): blocking and
    unbounded, unlike the server's own reader above.
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
