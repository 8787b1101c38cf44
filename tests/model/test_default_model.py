"""The embedded default model: it loads, its checksum holds, and it writes Python that parses."""

from __future__ import annotations

import ast
import json

import pytest

from jpilot.model.bundle import load_bundle, sha256_file
from jpilot.model.default import DEFAULT_BUNDLE, default_bundle_path
from jpilot.model.engine import Engine, GenerationConfig

# Canonical prompts: each ends where a line or a block should be completed. The ones the
# current default model gets wrong are strict xfails: they record its quality honestly,
# and a better model turns them into failures that say "update this list".
WEAK = "the 7M-parameter default model gets this wrong today (see its MODEL_CARD.md)"
PROMPTS = [
    pytest.param("import os\n\n\ndef list_python_files(root):\n    ",
                 marks=pytest.mark.xfail(strict=True, reason=WEAK + ": opens a docstring")),
    "def add(a, b):\n    return ",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = ",
    "for i in range(10):\n    ",
    "import sys\n\nif __name__ == ",
]  # fmt: skip
SUFFIX = "\n\n\ndef main():\n    print(sys.argv)\n"  # code after the cursor, for FIM prompts
# (prompt, with a suffix, branches) the current model gets wrong in one decoding mode only,
# and only on some CPUs: int8 matmuls round differently with AVX-512 VNNI than with AVX2
# alone, and this greedy choice is close (an AVX2-only EPYC gets `if i == 0:`, right), so
# it is not strict
WEAK_MODES = {
    ("for i in range(10):\n    ", True, 1): "with FIM, plain greedy opens a docstring",
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(default_bundle_path())


def test_the_committed_bundle_loads_and_its_sha_matches() -> None:
    bundle = load_bundle(DEFAULT_BUNDLE)  # verifies the sha256 in jpilot.json
    manifest = json.loads((DEFAULT_BUNDLE / "jpilot.json").read_text())
    assert manifest["onnx_sha256"] == sha256_file(DEFAULT_BUNDLE / "model.onnx")
    # fill-in-the-middle in SPM order (see its card), served from a static KV cache
    assert bundle.tokenizer.fim is not None and bundle.tokenizer.fim.order == "spm"
    assert Engine(bundle).static_kv
    assert bundle.manifest.n_positions == 512  # the trained context
    size = sum(f.stat().st_size for f in DEFAULT_BUNDLE.iterdir())
    assert size <= 60 * 2**20
    assert (DEFAULT_BUNDLE / "MODEL_CARD.md").read_text().startswith("# jpilot default model")


@pytest.mark.parametrize("branches", [1, 3], ids=["greedy", "branching"])  # 3: the server's
@pytest.mark.parametrize("suffix", ["", SUFFIX], ids=["prefix-only", "fim"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_line_completion_parses(
    engine: Engine, prompt: str, suffix: str, branches: int, request: pytest.FixtureRequest
) -> None:
    weak = WEAK_MODES.get((prompt, bool(suffix), branches))
    if weak:
        request.applymarker(pytest.mark.xfail(strict=False, reason=f"{WEAK}: {weak}"))
    tok = engine.tokenizer
    ids, heal = engine.healer.split(tok.encode(prompt))
    if suffix:  # the code after the cursor goes in too, as the server sends it
        ids = tok.fim_prompt(ids, tok.encode(suffix))
    config = GenerationConfig(max_new_tokens=48, stop=["\n"], heal=heal, branches=branches)
    result = engine.generate(ids, config)
    line = result.text
    assert line.strip(), f"empty completion for {prompt!r}"
    program = prompt + line + "\n"
    last = program.split("\n")[-2]
    if last.rstrip().endswith(":"):  # the line opened a block: give it a body
        program += " " * (len(last) - len(last.lstrip()) + 4) + "pass\n"
    ast.parse(program + suffix)  # raises SyntaxError with the completion in the message
