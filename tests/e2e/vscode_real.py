"""Helpers for tests/e2e/test_vscode_real.py: find or install what a real VS Code needs
(code-server from npm, Debian's Chromium, puppeteer-core) and talk to the Node driver,
editors/vscode/test-real/drive.mjs, one JSON line a request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
DRIVER = VSCODE / "test-real"
CHROMIUM = "/usr/bin/chromium"
# The VS Code versions tested: a current code-server (the newest that runs on Node 20) and
# the oldest on npm whose VS Code meets the extension's engines.vscode (^1.91: 4.90.3 is
# VS Code 1.90, 4.93.1 is 1.93; npm has nothing between them).
CODE_SERVERS = {"current": "4.99.4", "oldest": "4.93.1"}
INSTALL_TIMEOUT_S = 1200
REQUEST_TIMEOUT_S = 180


def missing(reason: str) -> None:
    """Fail in CI (nothing is skipped silently there); skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"CI cannot run the real VS Code tests: {reason}")
    pytest.skip(reason)


def engines_vscode() -> str:
    """Return the extension's least VS Code version ("1.91.0" for "^1.91.0")."""
    data = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    return data["engines"]["vscode"].lstrip("^~>=")


def prerequisites() -> dict[str, str]:
    """Return the paths of node, npm and Chromium, or skip/fail saying what is missing."""
    found = {name: shutil.which(name) for name in ("node", "npm")}
    for name, path in found.items():
        if path is None:
            missing(f"{name} is not on PATH (Node 20+ is needed)")
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    if shutil.which("rg") is None:
        missing("rg is missing; code-server's install needs it (apt-get install ripgrep)")
    return {"node": str(found["node"]), "npm": str(found["npm"]), "chromium": CHROMIUM}


def run(cmd: list[str], cwd: Path, timeout: float) -> str:
    """Run a command; fail with the end of its output if it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-6000:]
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{out}")
    return proc.stdout


def vsix(tools: dict[str, str]) -> Path:
    """Return the packaged extension, building it with build.sh (as CI does) if it is
    absent or older than the extension's package.json or sources."""
    found = sorted(VSCODE.glob("jpilot-*.vsix"))
    sources = [VSCODE / "package.json", *(VSCODE / "src").glob("*.ts")]
    newest = max(p.stat().st_mtime for p in sources)
    if not found or found[-1].stat().st_mtime < newest:
        run(["bash", str(VSCODE / "build.sh")], VSCODE, INSTALL_TIMEOUT_S)
        found = sorted(VSCODE.glob("jpilot-*.vsix"))
    assert found, "build.sh made no .vsix"
    return found[-1]


def driver_modules(tools: dict[str, str]) -> None:
    """Install the driver's locked npm packages (puppeteer-core) once."""
    if not (DRIVER / "node_modules" / "puppeteer-core").is_dir():
        run([tools["npm"], "ci", "--no-audit", "--no-fund", "--no-progress"], DRIVER, 600)


def code_server(version: str) -> Path:
    """Return code-server VERSION's executable, installing it into the cache once."""
    script = DRIVER / "install-code-server.sh"
    proc = subprocess.run(
        ["bash", str(script), version], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
    )
    if proc.returncode != 0:
        missing(f"code-server {version} could not be installed:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


class Driver:
    """One code-server + Chromium session, driven by drive.mjs."""

    def __init__(self, config: dict[str, Any], artifacts: Path, node: str) -> None:
        self.artifacts = artifacts
        artifacts.mkdir(parents=True, exist_ok=True)
        path = artifacts / "driver-config.json"
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        self.stderr = (artifacts / "driver.log").open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [node, str(DRIVER / "drive.mjs"), str(path)],
            cwd=DRIVER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            encoding="utf-8",
        )
        self.hello = self._read()
        if not self.hello.get("ready"):
            self.close()
            pytest.fail(f"VS Code did not start: {self.hello}; see {artifacts}")
        self.version = str(self.hello["version"])

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            tail = (self.artifacts / "driver.log").read_text(encoding="utf-8")[-4000:]
            raise AssertionError(f"the driver exited ({self.proc.returncode}):\n{tail}")
        return json.loads(line)

    def __call__(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request; fail if the driver could not carry it out."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if not answer.get("ok"):
            raise AssertionError(f"{op} {args}: {answer.get('error')}")
        return answer

    def close(self) -> None:
        """Quit VS Code and the browser."""
        if self.proc.poll() is None:
            try:
                self("quit")
                self.proc.wait(timeout=30)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.stderr.close()

    def keep_evidence(self, name: str, user_data: Path) -> None:
        """Save a screenshot and the extension's logs (the server's stderr is in jpilot's
        output channel) under the artifacts folder."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
        try:
            self("screenshot", name=safe)
        except (AssertionError, OSError, ValueError) as err:
            print(f"no screenshot: {err}", file=sys.stderr)
        logs = self.artifacts / f"{safe}-logs"
        if (user_data / "logs").is_dir():
            shutil.copytree(user_data / "logs", logs, dirs_exist_ok=True)


# VS Code's word pattern for Python (extensions/python/language-configuration.json).
PYTHON_WORD = re.compile(r"(-?\d*\.\d\w*)|([^`~!@#$%^&*()\-=+\[{\]}\\|;:'\",.<>/?\s]+)", re.ASCII)


def next_word(ghost: str) -> str:
    """Return what editor.action.inlineSuggest.acceptNextWord inserts from `ghost`
    (VS Code 1.93-1.99: the first word, or what comes before it, cut at the first run
    of whitespace if that ends sooner)."""
    match = PYTHON_WORD.search(ghost)
    end = (len(match.group(0)) if match.start() == 0 else match.start()) if match else len(ghost)
    space = re.search(r"\s+", ghost)
    if space and space.end() < end:
        end = space.end()
    return ghost[:end]


def rendered_markdown(markdown: str) -> list[str] | None:
    """Return the non-empty lines VS Code shows for jpilot's hover markdown (code fences,
    paragraphs, *emphasis*), or None when it holds other markdown this cannot render."""
    lines: list[str] = []
    for block in markdown.split("\n\n"):
        if block.strip() in ("---", "***", "___"):
            continue  # a rule between hover sections
        if block.startswith("```"):
            lines += block.split("\n")[1:-1]
            continue
        text = re.sub(r"\*([^*]+)\*", r"\1", block)
        if re.search(r"[*_`\[\]<>#\\&|]", text):
            return None
        lines += [ln.strip() for ln in text.split("\n")]
    return [ln for ln in lines if ln.strip()]
