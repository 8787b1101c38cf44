"""The light install: the wheel, installed with no extras, serves completions on every
Python version pyproject claims.

Every other test runs in an editable install with the `train` and `dev` extras, which
hides a serving path that imports a training-only package. Here the wheel is built,
checked for what it carries, installed into fresh virtual environments (from PyPI, as
`pip install jpilot` would), and used for `jpilot model generate`, `jpilot complete`
and a short LSP session, whose ghost text must equal what this process computes.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import expected
from rawclient import RawClient

from jpilot.model.default import default_bundle_path
from jpilot.model.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("3.11", "3.12", "3.13")  # keep in step with requires-python and classifiers
pytestmark = pytest.mark.slow


def find_python(version: str) -> str | None:
    """Return an interpreter for `version`: on PATH, or in pyenv's versions folder."""
    if sys.version_info[:2] == tuple(map(int, version.split("."))):
        return sys.executable
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-V"], capture_output=True).returncode == 0:
        return found
    pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python3")))
    return pyenv[-1] if pyenv else None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the jpilot wheel from a copy of this checkout (an in-tree build would leave
    build/ behind, whose stale modules setuptools would package next time)."""
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("src") / "jpilot"
    skip = (".git", ".venv", "build", "node_modules", "runs", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*skip))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True,
    )
    (found,) = out.glob("jpilot-*.whl")
    return found


def test_the_wheel_carries_the_model_and_no_tests_or_caches(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("model.onnx", "tokenizer.json", "jpilot.json", "MODEL_CARD.md"):
        assert f"jpilot/model/default/{needed}" in names
    assert "jpilot/lsp/server.py" in names and "jpilot/plugins/hookspecs.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "editors/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.split("/")[0] in ("lsp", "model", "plugins")]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_light_install_serves_completions(
    wheel: Path, tmp_path: Path, version: str, tiny_engine_default: Engine
) -> None:
    python = find_python(version)
    if python is None:
        if os.environ.get("CI"):
            pytest.fail(f"Python {version} is not installed; pyenv has it on these machines")
        pytest.skip(f"Python {version} is not installed")
    env_dir = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(env_dir)], check=True)
    bin_dir = env_dir / "bin"
    subprocess.run([bin_dir / "pip", "install", "-q", str(wheel)], check=True)
    frozen = subprocess.run([bin_dir / "pip", "freeze"], capture_output=True, text=True).stdout
    assert "torch" not in frozen and "transformers" not in frozen  # the serving deps only

    gen = subprocess.run(
        [bin_dir / "jpilot", "model", "generate", "def add(a, b):\\n", "--max-tokens", "12"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.strip() and "Traceback" not in gen.stderr

    source = tmp_path / "shapes.py"
    source.write_text("import math\n\n\ndef area(radius):\n    return math.", encoding="utf-8")
    done = subprocess.run(
        [bin_dir / "jpilot", "complete", str(source), "--line", "5", "--col", "17", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    uri, text = source.as_uri(), source.read_text(encoding="utf-8")
    want = expected(tiny_engine_default, uri, text, len(text), language="python")
    client = RawClient(command=[str(bin_dir / "jpilot"), "serve", "--log-level", "WARNING"])
    try:
        client.initialize({})
        client.open(uri, text, language="python")
        items = client.response(client.inline(uri, 4, 17), timeout=120)["result"]["items"]
        shown = [item["insertText"] for item in items]
        assert shown == ([want.suggestion.text] if want.suggestion else [])
        client.request("shutdown")
        client.notify("exit")
        assert client.wait_exit() == 0
    finally:
        client.close()


@pytest.fixture(scope="module")
def tiny_engine_default() -> Iterator[Engine]:
    """The embedded default model, loaded in this process, for the reference answer."""
    engine = Engine(default_bundle_path())
    yield engine
    engine.close()
