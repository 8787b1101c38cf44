"""A damaged bundle at the LSP level (docs/DESIGN.md, Reliability 13).

The bundle keeps its weights in model.onnx.data (the tiny static export with the embed
limit at 0: the tiny_bundle_external fixture). A truncated or tampered data
file, a missing one, or a jpilot.json from another export (layers or vocabulary that do
not match the graph) each give one clear, one-line message (the status and a popup)
that says how to fix it; the server stays up, and the features that need no model keep
working: a Python syntax error is still reported, completions are empty.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from rawclient import RawClient


def truncate(bundle: Path) -> None:
    data = bundle / "model.onnx.data"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def tamper(bundle: Path) -> None:
    data = bundle / "model.onnx.data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 1
    data.write_bytes(bytes(blob))


def manifest(**changes: int) -> Callable[[Path], None]:
    def edit(bundle: Path) -> None:
        raw = json.loads((bundle / "jpilot.json").read_text(encoding="utf-8"))
        raw.update({key: raw[key] + step for key, step in changes.items()})
        (bundle / "jpilot.json").write_text(json.dumps(raw), encoding="utf-8")

    return edit


FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (truncate, "model.onnx.data does not match the sha256 in jpilot.json"),
    "tampered": (tamper, "model.onnx.data does not match the sha256 in jpilot.json"),
    "missing": (
        lambda b: (b / "model.onnx.data").unlink(),
        "missing its external data file",
    ),
    "other layers": (manifest(n_layer=1), "jpilot.json does not match model.onnx"),
    "other vocabulary": (manifest(vocab_size=7), "but the graph's logits have"),
}


def messages(client: RawClient, method: str) -> list[dict]:
    """Return the params of the notifications of `method` received so far."""
    return [n["params"] for n in client.notifications if n["method"] == method]


def test_a_damaged_bundle_says_why_and_the_rest_keeps_working(
    tiny_bundle_external: Path, tmp_path: Path
):
    """One server; each damaged bundle in turn through a settings change."""
    client = RawClient()
    try:
        client.initialize(
            {"hints": {"debounceMs": 0}, "model": {"path": str(tiny_bundle_external)}}
        )
        for fault, (damage, says) in FAULTS.items():
            uri = f"file:///tmp/jpilot-bundle/{fault.replace(' ', '-')}.py"
            bundle = Path(shutil.copytree(tiny_bundle_external, tmp_path / fault.replace(" ", "-")))
            damage(bundle)
            settings = {"jpilot": {"model": {"path": str(bundle)}}}
            client.notify("workspace/didChangeConfiguration", {"settings": settings})
            while (status := client.status()["model"])["state"] == "loading":
                time.sleep(0.05)
            assert status["state"] == "failed" and says in status["error"], (fault, status)
            assert "\n" not in status["error"]
            assert "copy the" in status["error"] and "re-export" in status["error"]  # the fix
            end = time.monotonic() + 20
            while not (popups := messages(client, "window/showMessage")):
                assert time.monotonic() < end, f"no popup for {fault}"
                client.status()
            assert popups[-1]["type"] == 1 and says in popups[-1]["message"], fault
            client.open(uri, "def f(:\n    return 1\n", language="python")
            assert client.response(client.inline(uri, 1, 12))["result"]["items"] == []
            end = time.monotonic() + 20
            while not (published := messages(client, "textDocument/publishDiagnostics")):
                assert time.monotonic() < end, "no diagnostics without a model"
                client.status()
            assert [d["code"] for d in published[-1]["diagnostics"]] == ["syntax-error"], fault
            client.notifications.clear()
        assert client.proc.poll() is None
    finally:
        client.close()
