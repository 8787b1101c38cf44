"""A test-only OpenAI-compatible completions server around a real Engine (no Ray).

It keeps the pool contract (POST /v1/completions with prompt, suffix, stream, echo and
logprobs; GET /v1/models, /v1/jpilot/tokenizer, /health; Bearer auth; x-jpilot-replica)
the way a third-party server would, with jpilot's own engine behind it: prompts heal
their last token (the client sends text that ends mid-word) and FIM is the bundle's own.
It records every request body and header, and can be told to fail (`fault`) or to be
slow per token (`step_delay`), so tests can check what leaves the editor's machine,
cancellation (a closed stream stops the engine) and the client's fault handling.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jpilot.model.engine import Engine, GenerationConfig

TOKEN = "pool-test-token"
MODEL = "tiny"


class PoolServer:
    """Serve `bundle` on 127.0.0.1 at a free port until stop()."""

    def __init__(self, bundle: Path, token: str = TOKEN, port: int = 0) -> None:
        self.bundle = Path(bundle)
        self.engine = Engine(str(bundle))
        self.token = token
        self.bodies: list[dict[str, Any]] = []  # every completion request body
        self.headers: list[dict[str, str]] = []  # and its headers
        # "401", "500", "garbage" (malformed JSON in the stream), "not-object" (a chunk that
        # is JSON but not an object), "cut" (killed mid-stream), "hang" (no answer)
        self.fault: str | None = None
        self.step_delay = 0.0  # seconds slept after each generated token
        self.first_delay = 0.0  # seconds of "queueing" before generation (heartbeats sent)
        self.third_party = False  # no jpilot extensions: no tokenizer, no ext fields
        self.gone: list[str] = []  # x-session-id of each stream whose client went away
        self.finishes: list[str] = []  # the engine's finish_reason per generation
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.pool = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the /v1 base URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> PoolServer:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (the port refuses connections afterwards)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()

    # ------------------------------------------------------------------ the model
    def prompt_ids(self, prompt: str, suffix: str | None) -> tuple[list[int], bytes]:
        """Return the prompt ids (FIM when there is a suffix) and the healed bytes."""
        tok = self.engine.tokenizer
        ids, heal = tok.healer.split(tok.encode(prompt))
        if suffix is not None and tok.fim is not None:
            ids = tok.fim_prompt(ids, tok.encode(suffix))
        if not ids and tok.eos_id is not None:
            ids = [tok.eos_id]
        return ids, heal

    def echo(self, prompt: str) -> dict[str, Any]:
        """Return OpenAI's logprobs object for the prompt's own tokens (echo)."""
        tok = self.engine.tokenizer
        ids = tok.encode(prompt)
        scored = self.engine.score_detail(ids)
        tops: list[Any] = [None]
        for i in range(1, len(ids)):
            tops.append({tok.decode([int(scored.top[i - 1])]): float(scored.top_logp[i - 1])})
        return {
            "tokens": [tok.decode([i]) for i in ids],
            "token_logprobs": [None, *(float(x) for x in scored.logp)],
            "top_logprobs": tops,
            "text_offset": [],
            "token_ids": ids,
            "top_token_ids": [None, *(int(t) for t in scored.top)],  # (ext) exact tops
        }


class _Handler(BaseHTTPRequestHandler):
    server_version = "jpilot-test-pool"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet

    @property
    def pool(self) -> PoolServer:
        return self.server.pool  # type: ignore[attr-defined]

    def _json(self, status: int, value: Any) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-jpilot-replica", "test-replica")
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.pool.token}":
            return True
        error = {"message": "missing or wrong token", "type": "invalid_request_error",
                 "code": "invalid_api_key"}  # fmt: skip
        self._json(401, {"error": error})
        return False

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/health":
            return self._json(200, {"status": "ok"})
        if not self._authorized():
            return None
        manifest = self.pool.engine.bundle.manifest
        if self.path == "/v1/models" and self.pool.third_party:
            return self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        if self.path == "/v1/models":
            ext = {"n_positions": manifest.n_positions, "fim": manifest.fim is not None,
                   "architecture": "gptj", "dtype": "fp32"}  # fmt: skip
            entry = {"id": MODEL, "object": "model", "created": 0, "owned_by": "jpilot",
                     "jpilot": ext}  # fmt: skip
            return self._json(200, {"object": "list", "data": [entry]})
        if self.path == "/v1/jpilot/tokenizer" and not self.pool.third_party:
            body = (self.pool.bundle / "tokenizer.json").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        return self._json(404, {"error": {"message": f"no {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        pool = self.pool
        if not self._authorized():
            return None
        body = json.loads(raw)
        pool.bodies.append(body)
        pool.headers.append({k.lower(): v for k, v in self.headers.items()})
        if pool.fault == "500":
            return self._json(500, {"error": {"message": "replica exploded\nwith detail"}})
        if pool.fault == "hang":
            time.sleep(5)
            return None
        if body.get("echo"):
            logprobs = pool.echo(body["prompt"])
            choice = {"index": 0, "text": body["prompt"], "finish_reason": "length",
                      "logprobs": logprobs}  # fmt: skip
            return self._json(200, {"object": "text_completion", "choices": [choice]})
        self._stream(body)
        return None

    def _event(self, value: Any) -> None:
        data = value if isinstance(value, str) else json.dumps(value)
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def _stream(self, body: dict[str, Any]) -> None:
        pool = self.pool
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("x-jpilot-replica", "test-replica")
        self.end_headers()
        if pool.fault == "garbage":
            self.wfile.write(b"data: {this is not json\n\n")
            return
        if pool.fault == "not-object":
            self.wfile.write(b": a comment\nevent: completion\ndata: [1, 2]\n\n")
            return
        if pool.fault == "cut":  # a first piece of text, then the replica dies
            self._event({"choices": [{"index": 0, "text": "par", "finish_reason": None}]})
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:  # queueing: a heartbeat every 50 ms notices a client that went away
            for _ in range(int(pool.first_delay / 0.05)):
                self._event({"choices": [{"index": 0, "text": "", "finish_reason": None}]})
                time.sleep(0.05)
        except OSError:
            pool.gone.append(self.headers.get("x-session-id", ""))
            return
        stops = list(body.get("stop") or [])
        ids, heal = pool.prompt_ids(body["prompt"], body.get("suffix"))
        config = GenerationConfig(
            max_new_tokens=int(body.get("max_tokens", 16)),
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            stop=stops,
            seed=0,
            heal=heal,
        )
        sent = 0

        def on_token(token: int, text: str) -> bool:
            nonlocal sent
            hold = max([len(s) - 1 for s in stops] or [0])
            ready = len(text.rstrip("\ufffd")) - hold
            try:
                if ready > sent:
                    self._event({"choices": [{"index": 0, "text": text[sent:ready],
                                              "finish_reason": None}]})  # fmt: skip
                    sent = ready
                else:
                    self._event({"choices": [{"index": 0, "text": "", "finish_reason": None}]})
            except OSError:  # the client closed the stream
                pool.gone.append(self.headers.get("x-session-id", ""))
                return False
            time.sleep(pool.step_delay)
            return True

        result = pool.engine.generate(ids, config, on_token=on_token)
        pool.finishes.append(result.finish_reason)
        if result.finish_reason == "callback":
            return
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": len(result.tokens),
                 "total_tokens": result.prompt_tokens + len(result.tokens),
                 "prompt_tokens_details": {"cached_tokens": result.reused_tokens}}  # fmt: skip
        reason = "length" if result.finish_reason == "length" else "stop"
        last: dict[str, Any] = {"index": 0, "text": result.text[sent:], "finish_reason": reason}
        if body.get("logprobs") is not None:  # every token's, in the last chunk (as the pool)
            last["logprobs"] = {
                "tokens": result.token_texts(),
                "token_logprobs": result.token_logprobs,
            }
        try:
            self._event({"choices": [last], "usage": usage})
            self._event("[DONE]")
        except OSError:
            pool.gone.append(self.headers.get("x-session-id", ""))
