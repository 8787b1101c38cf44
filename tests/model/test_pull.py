"""`jpilot model pull` against a Hugging Face hub cache built in a temporary folder.

Nothing is downloaded: HF_HUB_CACHE points at the cache and HF_HUB_OFFLINE=1, so
huggingface_hub resolves the repos exactly as it would after a real download.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hub_cache import add_repo, make_codegen_repo, make_gptj_repo

from jpilot.model.bundle import read_manifest
from jpilot.model.engine import Engine, GenerationConfig
from jpilot.model.errors import ModelError
from jpilot.model.pull import choose_format, estimate_parameters
from jpilot.model.store import resolve_bundle, store_name

CODEGEN = "Salesforce/codegen-tiny-mono"
GPTJ = "EleutherAI/gpt-j-tiny"
LLAMA = "meta-llama/tiny-llama"
NO_WEIGHTS = "someone/config-only"
NO_CONFIG = "someone/readme-only"
CODEGEN_SHA = "5c0f2b1e8a9d4c3b2a1f0e9d8c7b6a5f4e3d2c1b"
GPTJ_SHA = "0123456789abcdef0123456789abcdef01234567"
PROMPT = "def fibonacci(n):\n    if n < 2:\n        return n\n    return "
CODE_TEXTS = [
    PROMPT,
    "class A:\n\tdef g(self):\n\t\t\treturn  {'k': [1,  2]}\n",
    "x" + " " * 40 + "y\n" + "\t" * 12 + "z",
    "s = 'héllo wörld 你好 🎉'  # naïve café\u00a0\u200b\n",
    "a\r\n  b   c\n\n\n    \n",
    "<|endoftext|>import os",
    "",
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hub cache: a Salesforce-style CodeGen, a safetensors GPT-J, a Llama, a bare config."""
    root = tmp_path_factory.mktemp("hub")
    cache = root / "cache"
    add_repo(cache, CODEGEN, make_codegen_repo(root / "codegen"), CODEGEN_SHA)
    add_repo(cache, GPTJ, make_gptj_repo(root / "gptj"), GPTJ_SHA)
    llama = root / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (llama / "model.safetensors").write_bytes(b"not read")
    add_repo(cache, LLAMA, llama, "1" * 40)
    bare = root / "bare"
    bare.mkdir()
    shutil.copyfile(root / "gptj" / "config.json", bare / "config.json")
    add_repo(cache, NO_WEIGHTS, bare, "2" * 40)
    readme = root / "readme"
    readme.mkdir()
    (readme / "README.md").write_text("# not a model\n")
    add_repo(cache, NO_CONFIG, readme, "3" * 40)
    return cache


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model store the module's pulls install into."""
    return tmp_path_factory.mktemp("store") / "models"


def env_for(hub: Path, models: Path) -> dict[str, str]:
    """Return the environment of a `jpilot` run against the test hub, offline."""
    return {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1",
            "JPILOT_MODELS_DIR": str(models), "HF_HUB_DISABLE_TELEMETRY": "1"}  # fmt: skip


def jpilot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the jpilot CLI in a subprocess."""
    cmd = [sys.executable, "-m", "jpilot.lsp.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def codegen_bundle(hub: Path, models: Path) -> Path:
    """The CodeGen repo pulled with fp32 weights (exact parity with transformers)."""
    out = jpilot(env_for(hub, models), "model", "pull", CODEGEN, "--dtype", "fp32")
    assert out.returncode == 0, out.stderr
    assert "Salesforce--codegen-tiny-mono-fp32" in out.stdout
    return models / store_name(CODEGEN, "fp32")


@pytest.fixture(scope="module")
def gptj_bundle(hub: Path, models: Path) -> Path:
    """The safetensors GPT-J pulled with fp32 weights into an explicit --out folder."""
    out_dir = models.parent / "gptj-fp32"
    args = ("model", "pull", GPTJ, "--dtype", "fp32", "--out", str(out_dir))
    out = jpilot(env_for(hub, models), *args)
    assert out.returncode == 0, out.stderr
    return out_dir


def snapshot(hub: Path, repo_id: str, sha: str) -> Path:
    """Return a repo's snapshot folder in the test hub."""
    return hub / f"models--{repo_id.replace('/', '--')}" / "snapshots" / sha


def hf_greedy(model_cls: str, folder: Path, ids: list[int], n: int) -> list[int]:
    """Return transformers' greedy continuation of `ids` (stopping at eos, as jpilot does)."""
    import torch
    import transformers

    model = getattr(transformers, model_cls).from_pretrained(folder).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                             pad_token_id=0, eos_token_id=0)  # fmt: skip
    new = out[0, len(ids) :].tolist()
    return new[: new.index(0) + 1] if 0 in new else new


def test_codegen_pull_greedy_tokens_match_transformers(codegen_bundle: Path, hub: Path) -> None:
    engine = Engine(codegen_bundle)
    ids = engine.tokenizer.encode(PROMPT)
    expected = hf_greedy("CodeGenForCausalLM", snapshot(hub, CODEGEN, CODEGEN_SHA), ids, 24)
    result = engine.generate(ids, GenerationConfig(max_new_tokens=24))
    engine.close()
    assert len(expected) >= 8
    assert result.tokens == expected


def test_gptj_safetensors_pull_greedy_tokens_match_transformers(
    gptj_bundle: Path, hub: Path
) -> None:
    engine = Engine(gptj_bundle)
    ids = engine.tokenizer.encode(PROMPT)
    expected = hf_greedy("GPTJForCausalLM", snapshot(hub, GPTJ, GPTJ_SHA), ids, 24)
    result = engine.generate(ids, GenerationConfig(max_new_tokens=24))
    engine.close()
    assert result.tokens == expected


def test_generate_no_heal_is_plain_greedy(codegen_bundle: Path, hub: Path, models: Path) -> None:
    """`model generate --no-heal` by short name prints the prompt and transformers' tokens."""
    engine = Engine(codegen_bundle)
    ids = engine.tokenizer.encode(PROMPT)
    expected = hf_greedy("CodeGenForCausalLM", snapshot(hub, CODEGEN, CODEGEN_SHA), ids, 12)
    engine.close()
    args = ("model", "generate", PROMPT.replace("\n", "\\n"), "--bundle", "codegen-tiny-mono",
            "--max-tokens", "12", "--json")  # fmt: skip
    out = jpilot(env_for(hub, models), *args, "--no-heal")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["prompt_tokens"] == ids and answer["tokens"] == expected
    healed = json.loads(jpilot(env_for(hub, models), *args).stdout)["prompt_tokens"]
    assert healed == ids[: len(healed)]  # healing may back off the last token


def test_manifest_and_card_record_the_upstream(codegen_bundle: Path, gptj_bundle: Path) -> None:
    manifest = read_manifest(codegen_bundle)
    assert manifest.fim is None  # CodeGen has no FIM tokens: prefix-only prompts
    assert manifest.source == CODEGEN and manifest.dtype == "fp32"
    card = (codegen_bundle / "MODEL_CARD.md").read_text()
    for row in (f"| repo | {CODEGEN} |", f"| revision | {CODEGEN_SHA} |",
                "| licence | bsd-3-clause |", "| architecture | CodeGen, converted to GPT-J |",
                "| export options | --dtype fp32 (for --device cpu) |"):  # fmt: skip
        assert row in card
    gptj = read_manifest(gptj_bundle)
    assert gptj.fim is not None and gptj.source == GPTJ
    assert f"| revision | {GPTJ_SHA} |" in (gptj_bundle / "MODEL_CARD.md").read_text()
    assert "| licence | apache-2.0 |" in (gptj_bundle / "MODEL_CARD.md").read_text()


def test_built_tokenizer_matches_transformers(codegen_bundle: Path, hub: Path) -> None:
    """tokenizer.json built from vocab.json + merges.txt + added_tokens.json: the same ids."""
    from transformers import AutoTokenizer, CodeGenTokenizer

    folder = snapshot(hub, CODEGEN, CODEGEN_SHA)
    assert not (folder / "tokenizer.json").exists()
    ours = Engine(codegen_bundle).tokenizer
    slow = CodeGenTokenizer.from_pretrained(folder)
    fast = AutoTokenizer.from_pretrained(folder)
    whitespace = ours.encode(" " * 12 + "\t\t\tx")
    assert any(t >= 320 for t in whitespace)  # runs of spaces and tabs use the added tokens
    for text in CODE_TEXTS:
        ids = ours.encode(text)
        assert ids == slow.encode(text, add_special_tokens=False), repr(text)
        assert ids == fast.encode(text, add_special_tokens=False), repr(text)
        # (the slow tokenizer's decode puts spaces around added tokens; the fast one does not)
        assert ours.decode(ids) == fast.decode(ids, skip_special_tokens=True)
        assert ours.decode(ids) == text.replace("<|endoftext|>", "")


def test_fimless_bundle_prompts_prefix_only_and_trims_the_suffix(codegen_bundle: Path) -> None:
    """Without FIM tokens the prompt is the prefix alone; the suffix still trims the answer."""
    from jpilot.lsp.pipeline import complete
    from jpilot.lsp.plugins import default_host
    from jpilot.plugins.api import CompletionRequest
    from jpilot.plugins.context import build_prompt
    from jpilot.plugins.settings import Settings

    text = "def f(a, b):\n    return add(a, b) + 1\n\n\ntotal = add(x, y)\n"
    offset = text.index("x, y)")
    request = CompletionRequest("file:///t.py", "python", text, offset, 1, Settings())
    engine = Engine(codegen_bundle)
    tok = engine.tokenizer
    prompt = build_prompt(request, tok, 200)
    assert not prompt.fim and prompt.suffix_tokens == 0
    assert tok.decode(prompt.ids).encode() + prompt.heal == text[:offset].encode()

    real = engine.generate

    def overlapping(ids, config, **kw):  # the model repeats the text after the cursor
        result = real(ids, config, **kw)
        result.text, result.finish_reason = "1, 2) + add(x, y)", "stop"
        return result

    engine.generate = overlapping  # type: ignore[method-assign]
    outcome = complete(engine, default_host(), request, threading.Event())
    engine.close()
    assert outcome.prompt is not None and not outcome.prompt.fim
    assert outcome.suggestion is not None
    assert outcome.suggestion.text == "1, 2) + add("


def test_complete_and_list_with_the_pulled_bundle(
    codegen_bundle: Path, hub: Path, models: Path, tmp_path: Path
) -> None:
    env = env_for(hub, models)
    source = tmp_path / "fib.py"
    source.write_text(PROMPT)
    settings = json.dumps({"model": {"path": CODEGEN}})  # the repo id as a short name
    out = jpilot(env, "complete", str(source), "--line", "4", "--col", "12", "--json",
                 "--settings", settings)  # fmt: skip
    answer = json.loads(out.stdout)  # a random model's answer may be dropped: exit status 1
    assert out.returncode == (0 if answer["status"] == "ok" else 1), out.stderr
    assert answer["range"]["start"] == {"line": 3, "character": 11}
    assert answer["status"] in ("ok", "empty")

    listing = jpilot(env, "model", "list")
    assert listing.returncode == 0, listing.stderr
    row = next(x for x in listing.stdout.splitlines() if x.startswith("Salesforce--codegen"))
    assert row.split() == [codegen_bundle.name, _mib(codegen_bundle), "MiB", "fp32", "0.1M", "no",
                           CODEGEN]  # fmt: skip
    as_json = json.loads(jpilot(env, "model", "list", "--json").stdout)
    (entry,) = [m for m in as_json["models"] if m["source"] == CODEGEN]
    assert entry["dtype"] == "fp32" and entry["fim"] is False and entry["parameters"] > 50_000


def _mib(folder: Path) -> str:
    """Return a folder's size as `model list` prints it."""
    return f"{sum(f.stat().st_size for f in folder.iterdir()) / 2**20:.1f}"


def test_model_host_loads_a_short_name(codegen_bundle: Path, models: Path, monkeypatch) -> None:
    """The server's model.path takes the installed name, with or without org and variant."""
    from jpilot.lsp.model_host import ModelHost
    from jpilot.plugins.settings import ModelSettings

    monkeypatch.setenv("JPILOT_MODELS_DIR", str(models))
    for name in ("codegen-tiny-mono", "codegen-tiny-mono-fp32", CODEGEN, codegen_bundle.name):
        assert resolve_bundle(name) == codegen_bundle
    host = ModelHost()
    engine = host.load(ModelSettings(path="codegen-tiny-mono")).result(timeout=60)
    assert engine is not None and host.error is None
    assert engine.bundle.path == codegen_bundle
    host.close()
    with pytest.raises(ModelError, match="neither a bundle folder nor an installed model"):
        resolve_bundle("codegen-huge-mono")
    assert resolve_bundle("/nonexistent/bundle") == Path("/nonexistent/bundle")


def test_serve_loads_the_pulled_model_by_name(codegen_bundle: Path, hub: Path, models: Path):
    """`jpilot serve` with model.path = the short name: the model loads and completions come."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
    from rawclient import RawClient

    env = {k: v for k, v in env_for(hub, models).items() if k.startswith(("HF_", "JPILOT_"))}
    client = RawClient(env=env)
    try:
        client.initialize({"model": {"path": "codegen-tiny-mono-fp32"}})
        for _ in range(400):
            model = client.status()["model"]
            if model["state"] != "loading":
                break
            time.sleep(0.05)
        assert model["state"] == "ready", model
        assert model["path"] == str(codegen_bundle)
        uri = "file:///fib.py"
        client.open(uri, PROMPT, "python")
        reply = client.response(client.inline(uri, 3, 11))
        assert "error" not in reply and isinstance(reply["result"]["items"], list)
        client.request("shutdown")
        client.notify("exit")
        assert client.wait_exit() == 0
    finally:
        client.close()


def test_default_variant_and_ambiguous_names(hub: Path, tmp_path: Path, monkeypatch) -> None:
    """A CPU pull defaults to int8; two variants of one model make the bare name ambiguous."""
    models = tmp_path / "models"
    out = jpilot(env_for(hub, models), "model", "pull", GPTJ, "--device", "cpu")
    assert out.returncode == 0, out.stderr
    int8 = models / store_name(GPTJ, "int8")
    assert read_manifest(int8).dtype == "int8"
    monkeypatch.setenv("JPILOT_MODELS_DIR", str(models))
    assert resolve_bundle("gpt-j-tiny") == int8
    shutil.copytree(int8, models / store_name(GPTJ, "fp16"))  # stands in for a GPU pull
    with pytest.raises(ModelError, match="matches several installed models"):
        resolve_bundle("gpt-j-tiny")
    assert resolve_bundle("gpt-j-tiny-int8") == int8
    again = jpilot(env_for(hub, models), "model", "pull", GPTJ, "--device", "cpu")
    assert again.returncode == 1 and "--force" in again.stderr
    assert sorted(p.name for p in models.iterdir()) == [
        store_name(GPTJ, "fp16"), store_name(GPTJ, "int8")]  # fmt: skip


def test_formats_follow_the_device() -> None:
    shape = {"model_type": "codegen", "n_head": 16, "vocab_size": 51200}
    small = {**shape, "n_embd": 1024, "n_layer": 20}  # codegen-350M
    big = {**shape, "n_embd": 2560, "n_layer": 32}  # codegen-2B
    assert 340e6 < estimate_parameters(small) < 370e6
    assert 2.5e9 < estimate_parameters(big) < 2.9e9
    assert choose_format(small, "cpu", None, None) == ("fp32", "int8")
    assert choose_format(big, "cpu", None, None) == ("fp32", "int4")
    assert choose_format(big, "cuda", None, None) == ("fp16", None)
    assert choose_format(big, "cpu", "fp16", None) == ("fp16", None)
    assert choose_format(small, "cuda", None, "int4") == ("fp32", "int4")


@pytest.mark.parametrize(
    ("repo", "message"),
    [
        (LLAMA, f"error: {LLAMA} is a 'llama' model; jpilot pull supports gptj, gpt_neo, gpt2, "
         "gpt_bigcode, codegen"),
        ("nobody/nothing", "error: nobody/nothing is not in the Hugging Face cache and "
         "HF_HUB_OFFLINE is set"),
        (NO_WEIGHTS, f"error: {NO_WEIGHTS} at 222222222222 has neither model*.safetensors nor "
         "pytorch_model*.bin in the cache"),
        (NO_CONFIG, f"error: {NO_CONFIG} at 333333333333 has no config.json in the cache"),
    ],
)  # fmt: skip
def test_bad_repos_fail_in_one_line(hub: Path, tmp_path: Path, repo: str, message: str) -> None:
    models = tmp_path / "models"
    out = jpilot(env_for(hub, models), "model", "pull", repo)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith(message), out.stderr
    assert not any(x.startswith("error") for x in lines[:-1]) and "Traceback" not in out.stderr
    assert not models.exists() or not any(models.iterdir())


@pytest.fixture
def offline_hub(hub: Path, tmp_path: Path, monkeypatch) -> Path:
    """Point an in-process huggingface_hub at the test hub, offline; return the store."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("JPILOT_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_full_disk_leaves_no_bundle(offline_hub: Path, monkeypatch, capsys) -> None:
    from jpilot.lsp.cli import main

    def full(*_args, **_kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("jpilot.model.export._write_tokenizer", full)
    assert main(["model", "pull", GPTJ]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: the disk is full while writing")
    assert err.endswith("(nothing was installed)")
    assert list(offline_hub.iterdir()) == []  # no bundle, no temporary folder


def test_interrupted_download_says_how_to_resume(offline_hub: Path, monkeypatch, capsys) -> None:
    import huggingface_hub
    import requests

    real = huggingface_hub.snapshot_download

    def flaky(repo_id, **kw):
        if any("safetensors" in p for p in kw.get("allow_patterns", [])):
            raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
        return real(repo_id, **kw)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", flaky)
    from jpilot.lsp.cli import main

    assert main(["model", "pull", GPTJ]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"error: download of {GPTJ} was interrupted (Connection broken: "
                       "IncompleteRead); run the same command again to resume it")  # fmt: skip
    assert not offline_hub.exists() or list(offline_hub.iterdir()) == []


def test_the_hub_cache_resolves_like_a_download(hub: Path) -> None:
    """huggingface_hub itself finds the test repos offline, by branch and by commit."""
    from huggingface_hub import snapshot_download

    by_ref = snapshot_download(CODEGEN, cache_dir=hub, local_files_only=True)
    by_sha = snapshot_download(CODEGEN, revision=CODEGEN_SHA, cache_dir=hub, local_files_only=True)
    assert Path(by_ref) == Path(by_sha) == snapshot(hub, CODEGEN, CODEGEN_SHA)
    assert (Path(by_ref) / "pytorch_model.bin").resolve().parent.name == "blobs"


def test_unknown_revision_offline(offline_hub: Path, capsys) -> None:
    from jpilot.lsp.cli import main

    assert main(["model", "pull", CODEGEN, "--revision", "v9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {CODEGEN} at revision 'v9' is not in the Hugging Face cache")
    assert not offline_hub.exists()
