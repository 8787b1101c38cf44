"""The canary test: no secret, and nothing of an ignored file, reaches a log, the model or
the pool, whatever feature the client uses.

The workspace holds an AWS key pair, a GitHub token, a private-key block and a password
assignment (tests/canaries.py) in `app.py`, a `.env` file and a `.gitignore`d
`secret/hidden.py`, all open in the editor. A real `jpilot serve` (RawClient) runs with
`debug.logPrompts` on and its log at DEBUG, every model feature forced on, once on the
tiny local model and once through a pool (tests/pool_server.py), and the client asks for
completions, hovers, hints on open and on save, docstring, explain and regenerate
actions, and the explain command, in every file. Checked afterwards:

- the server's stderr (every log line) holds no canary and no ignored file's text;
- every engine input holds none either: a `sitecustomize` on the server's PYTHONPATH
  records each text given to the tokenizer and each id sequence the engine generates
  from or scores (decoded), in the server process itself;
- the pool's request bodies hold none;
- and the recordings are not empty: app.py's code (masked) did reach the model.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rawclient import RawClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from canaries import CANARIES, SOURCE, leaked  # noqa: E402
from pool_server import TOKEN, PoolServer  # noqa: E402

HIDDEN_MARKER = "hidden_marker_q7z"
ENV_MARKER = "env_marker_k3p"
HIDDEN = f'def {HIDDEN_MARKER}(a, b):\n    """{HIDDEN_MARKER} docs."""\n    return a + b\n'
ENV = f'{ENV_MARKER.upper()} = "{CANARIES["password"]}"\nDB_URL = "{ENV_MARKER}"\n'
OPTIONS: dict[str, Any] = {
    "debug": {"logPrompts": True},
    "completion": {"branches": 1},
    "hints": {"debounceMs": 0, "surprisal": True, "threshold": 0.0, "minBits": 0.0},
    "docs": {"summary": True, "docstring": True, "explain": True},
}

RECORDER = '''"""Test-only: record every text the jpilot model sees, in the server process."""
import json, os

PATH = os.environ.get("JPILOT_TEST_RECORD")


def _write(kind, text):
    with open(PATH, "a", encoding="utf-8") as f:
        f.write(json.dumps([kind, text]) + "\\n")


def _patch():
    from jpilot.model import engine, tokenizer

    def texts(cls, name):
        orig = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            for arg in args:
                if isinstance(arg, str):
                    _write(name, arg)
            return orig(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    def ids(name):
        orig = getattr(engine.Engine, name)

        def wrapper(self, prompt, *args, **kwargs):
            _write(name, self.tokenizer.decode([int(i) for i in prompt]))
            if name == "score_variants":
                for _cut, variants in args[0] if args else kwargs["cuts"]:
                    for v in variants:
                        _write(name, self.tokenizer.decode([int(i) for i in v]))
            return orig(self, prompt, *args, **kwargs)

        setattr(engine.Engine, name, wrapper)

    for name in ("encode", "encode_offsets", "infill_prompt"):
        texts(tokenizer.Tokenizer, name)
    for name in ("generate", "score_detail", "score_variants"):
        ids(name)


if PATH:
    _patch()
'''


@pytest.fixture(scope="module")
def pool(tiny_bundle: Path) -> Iterator[PoolServer]:
    """A pool around the tiny bundle."""
    server = PoolServer(tiny_bundle).start()
    yield server
    server.stop()


def workspace(root: Path) -> dict[str, str]:
    """Write the workspace; return the URIs of its three Python-ish documents."""
    (root / ".gitignore").write_text("secret/\n")
    (root / "secret").mkdir()
    files = {"app": root / "app.py", "hidden": root / "secret" / "hidden.py", "env": root / ".env"}
    for key, text in (("app", SOURCE), ("hidden", HIDDEN), ("env", ENV)):
        files[key].write_text(text)
    return {key: path.as_uri() for key, path in files.items()}


def diagnostics(client: RawClient, uri: str) -> list[list[dict[str, Any]]]:
    """Return every publishDiagnostics for `uri` seen so far."""
    return [
        n["params"]["diagnostics"]
        for n in client.notifications
        if n["method"] == "textDocument/publishDiagnostics" and n["params"]["uri"] == uri
    ]


def wait_diagnostics(client: RawClient, uri: str, count: int, timeout: float = 90) -> None:
    """Pump messages until `count` diagnostics runs for `uri` were published."""
    end = time.monotonic() + timeout
    while len(diagnostics(client, uri)) < count:
        assert time.monotonic() < end, f"no diagnostics for {uri}"
        client.status()
        time.sleep(0.05)


def line_range(first: int, last: int, end: int = 0) -> dict[str, Any]:
    """An LSP range from the start of line `first` to (`last`, `end`)."""
    return {"start": {"line": first, "character": 0}, "end": {"line": last, "character": end}}


def exercise(client: RawClient, uris: dict[str, str]) -> dict[str, Any]:
    """Use every feature in every document; return what the client got."""
    texts = {"app": SOURCE, "hidden": HIDDEN, "env": ENV}
    for key, uri in uris.items():
        client.open(uri, texts[key], "python")
    for uri in uris.values():
        wait_diagnostics(client, uri, 1)
    got: dict[str, Any] = {"resolved": []}
    for key, uri in uris.items():
        lines = texts[key].split("\n")
        for line in (1, len(lines) - 2):  # the end of a line near the top, and the last
            assert "result" in client.response(client.inline(uri, line, len(lines[line])))
        doc = {"uri": uri}
        got[f"hover-{key}"] = client.request(
            "textDocument/hover", {"textDocument": doc, "position": {"line": 0, "character": 5}}
        )
        if key == "app":
            at = SOURCE[: SOURCE.index("def connect")].count("\n")
            got["hover-app"] = client.request(
                "textDocument/hover",
                {"textDocument": doc, "position": {"line": at, "character": 5}},
            )
        else:
            at = 0
        published = diagnostics(client, uri)[-1]
        actions = []
        for rng in (line_range(at, at, 3), line_range(0, len(lines) - 1)):
            context = {"diagnostics": published}
            params = {"textDocument": doc, "range": rng, "context": context}
            actions += client.request("textDocument/codeAction", params)["result"] or []
        got[f"actions-{key}"] = [a["title"] for a in actions]
        for action in actions:
            if action.get("edit") is None:
                got["resolved"].append(client.request("codeAction/resolve", action)["result"])
        command = {"command": "jpilot.explain", "arguments": [uri, line_range(1, 6)]}
        got[f"explain-{key}"] = client.request("workspace/executeCommand", command)
    for uri in uris.values():  # hints on save
        client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    for uri in uris.values():
        wait_diagnostics(client, uri, 2)
    got["diagnostics"] = {key: diagnostics(client, uri) for key, uri in uris.items()}
    return got


def start(tmp_path: Path, model: dict[str, Any], env: dict[str, str]) -> tuple[RawClient, Path]:
    """Start `jpilot serve` at DEBUG with the recorder; wait for the model."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(RECORDER)
    record = tmp_path / "engine-inputs.jsonl"
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {**env, "PYTHONPATH": path, "JPILOT_TEST_RECORD": str(record)}
    client = RawClient(env=env, log_level="DEBUG")
    root = tmp_path / "ws"
    root.mkdir()
    client.initialize({**OPTIONS, "model": model}, root)
    end = time.monotonic() + 60
    while client.status()["model"]["state"] == "loading" and time.monotonic() < end:
        time.sleep(0.05)
    assert client.status()["model"]["state"] == "ready"
    return client, record


@pytest.mark.parametrize("where", ["local", "pool"])
def test_no_canary_reaches_a_log_the_model_or_the_pool(
    tiny_bundle: Path, tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    if where == "pool":
        pool: PoolServer = request.getfixturevalue("pool")
        pool.bodies.clear()
        client, record = start(tmp_path, {"url": pool.url}, {"JPILOT_TOKEN": TOKEN})
    else:
        client, record = start(tmp_path, {"path": str(tiny_bundle)}, {})
    try:
        got = exercise(client, workspace(tmp_path / "ws"))
    finally:
        client.close()
    log = b"".join(client.stderr).decode(errors="replace")
    inputs = [text for _kind, text in map(json.loads, record.read_text().splitlines())]
    kinds = {kind for kind, _text in map(json.loads, record.read_text().splitlines())}

    # the features did run, and did reach the model with app.py's code (masked)
    assert "prompt for" in log, "debug.logPrompts logged no prompt"
    assert any("GITHUB_TOKEN" in t and "def total" in t for t in inputs)
    assert got["resolved"], "no code action was resolved"
    assert any(t.startswith("Generate docstring") for t in got["actions-app"])
    assert any(t.startswith("Explain") for t in got["actions-app"])
    assert got["diagnostics"]["app"][0], "no hints on app.py"
    if where == "local":
        assert {"generate", "score_detail", "infill_prompt"} <= kinds

    # nothing of a canary, nor of an ignored file, in the logs or the engine's inputs
    assert leaked([log], HIDDEN_MARKER) == [] and ENV_MARKER not in log
    records = [tuple(r) for r in map(json.loads, record.read_text().splitlines())]
    bad = [(kind, text[:300]) for kind, text in records if leaked([text], HIDDEN_MARKER)]
    assert bad == []
    assert not any(ENV_MARKER in t for t in inputs)
    if where == "pool":
        sent = json.dumps(pool.bodies)
        assert pool.bodies and "def total" in sent
        assert leaked([sent], HIDDEN_MARKER) == [] and ENV_MARKER not in sent

    # ignored files get no model action, no hint and no model-written text
    for key in ("hidden", "env"):
        assert got[f"actions-{key}"] == []
        assert all(runs == [] for runs in got["diagnostics"][key])
        assert not (got[f"explain-{key}"].get("result") or {}).get("comment")
    assert "generated" not in json.dumps(got["hover-hidden"])
    # and no hint on app.py points at a line holding a secret
    secret_lines = {i for i, ln in enumerate(SOURCE.split("\n")) if leaked([ln])}
    for run in got["diagnostics"]["app"]:
        assert not {d["range"]["start"]["line"] for d in run} & secret_lines
