"""GPT-2, GPT-Neo, gpt_bigcode (and GPT-J) at a realistic head layout, pulled offline.

Each family's small random checkpoint is put in a Hugging Face hub cache built here and
pulled with HF_HUB_OFFLINE=1, as a user pulls the real repos; the bundles' fp32 logits,
greedy tokens and KV cache are checked against transformers on the same weights.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from family_models import FAMILY_REPOS, HF_CLASSES, NEO_WINDOW, make_family
from hub_cache import add_repo

from jpilot.model.bundle import read_manifest
from jpilot.model.engine import Engine, GenerationConfig
from jpilot.model.errors import ModelError
from jpilot.model.export import export_bundle

FAMILIES = list(FAMILY_REPOS)
# about 40 tokens: longer than GPT-Neo's window, so its local layer drops keys
PROMPT = "def add(a, b):\n    return a + b\n\nclass Point:\n    x = 1\n    y = 2\n"
BAD_REPO = "bigcode/alibi-starcoder"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each family's small random checkpoint folder."""
    root = tmp_path_factory.mktemp("families")
    return {family: make_family(root / family, family) for family in FAMILIES}


@pytest.fixture(scope="module")
def hub(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hub cache: one repo per family, and a config-only repo with an option refused."""
    cache = tmp_path_factory.mktemp("hub") / "cache"
    for i, (family, folder) in enumerate(checkpoints.items()):
        add_repo(cache, FAMILY_REPOS[family], folder, f"{i + 1:040x}")
    bad = tmp_path_factory.mktemp("bad")
    config = json.loads((checkpoints["gpt_bigcode"] / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "position_embedding_type": "alibi"}))
    add_repo(cache, BAD_REPO, bad, "f" * 40)
    return cache


@contextlib.contextmanager
def offline(hub: Path) -> Iterator[None]:
    """huggingface_hub reads `hub` as its cache and never goes online (HF_HUB_OFFLINE=1)."""
    from huggingface_hub import constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(constants, "HF_HUB_CACHE", str(hub))
        mp.setattr(constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def bundles(hub: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every family pulled offline from the hub cache with fp32 weights."""
    from jpilot.model.pull import pull

    store = tmp_path_factory.mktemp("store")
    with offline(hub):
        return {family: pull(repo, out=store / family, dtype="fp32", device="cpu")
                for family, repo in FAMILY_REPOS.items()}  # fmt: skip


@pytest.fixture(scope="module")
def engines(bundles: dict[str, Path]) -> dict[str, Engine]:
    """An engine per family (eos off: random weights must not stop the comparisons early)."""
    out = {family: Engine(bundle) for family, bundle in bundles.items()}
    for engine in out.values():
        engine.tokenizer.eos_id = None
    return out


@pytest.fixture(scope="module")
def references(checkpoints: dict[str, Path]) -> dict:
    """transformers' model of each checkpoint, fp32, eager attention."""
    import transformers

    return {family: getattr(transformers, HF_CLASSES[family]).from_pretrained(
                folder, attn_implementation="eager").eval()
            for family, folder in checkpoints.items()}  # fmt: skip


def hf_logits(model, ids: list[int]) -> np.ndarray:
    """transformers' logits [S, V] for one sequence, without a cache."""
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0].numpy()


def hf_greedy(model, ids: list[int], n: int) -> list[int]:
    """transformers' greedy continuation (no eos stop, as the engines here)."""
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, min_new_tokens=n,
                             do_sample=False, pad_token_id=0)  # fmt: skip
    return out[0, len(ids) :].tolist()


def test_manifest_card_and_graph_record_the_family(bundles: dict[str, Path], engines) -> None:
    for family, bundle in bundles.items():
        manifest = read_manifest(bundle)
        assert (manifest.architecture, manifest.head_dim, manifest.n_head) == (family, 64, 4)
        assert manifest.rotary_dim == (32 if family == "gptj" else 0)
        kv_heads = 1 if family == "gpt_bigcode" else 4  # multi-query: one KV head
        assert engines[family].static_kv
        assert engines[family].kv_shapes == [(kv_heads, 64)] * 4  # key, value x 2 layers
    card = (bundles["gpt_bigcode"] / "MODEL_CARD.md").read_text()
    assert "| architecture | GPTBigCode (StarCoder family), 2 layers, 4 heads x 64" in card
    assert "| licence | bigcode-openrail-m |" in card


@pytest.mark.parametrize("family", FAMILIES)
def test_fp32_logits_match_transformers(family: str, engines, references) -> None:
    engine = engines[family]
    ids = engine.tokenizer.encode(PROMPT)
    assert len(ids) > 3 * NEO_WINDOW
    logits, _ = engine._forward(ids, engine._empty_kv(), 0, all_logits=True)
    expected = hf_logits(references[family], ids)
    assert np.abs(logits - expected).max() < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_kv_cache_equals_no_cache(family: str, engines, references) -> None:
    """Prefill a few tokens, then one token a pass: each row equals the uncached pass's."""
    engine = engines[family]
    ids = engine.tokenizer.encode(PROMPT)
    rows, past = [], engine._empty_kv()
    out, past = engine._forward(ids[:5], past, 0, all_logits=True)
    rows += list(out)
    for pos in range(5, len(ids)):
        out, past = engine._forward(ids[pos : pos + 1], past, pos)
        rows += list(out)
    assert np.abs(np.array(rows) - hf_logits(references[family], ids)).max() < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_tokens_agree_with_transformers(family: str, engines, references) -> None:
    engine = engines[family]
    ids = engine.tokenizer.encode(PROMPT)
    expected = hf_greedy(references[family], ids, 24)
    assert engine.generate(ids, GenerationConfig(max_new_tokens=24)).tokens == expected
    # prompt-lookup drafts verified in one pass change nothing
    drafted = engine.generate(ids, GenerationConfig(max_new_tokens=24, draft_tokens=4))
    assert drafted.tokens == expected


@pytest.mark.parametrize("family", ["gpt_bigcode", "gpt_neo"])
def test_prefix_reuse_and_cancel(family: str, bundles, references) -> None:
    engine = Engine(bundles[family])
    engine.tokenizer.eos_id = None
    ids = engine.tokenizer.encode(PROMPT)
    engine.generate(ids, GenerationConfig(max_new_tokens=4))
    edited = ids[:-1] + [7]  # one keystroke later: everything before it is reused
    warm = engine.generate(edited, GenerationConfig(max_new_tokens=12))
    assert warm.reused_tokens == len(ids) - 1
    assert warm.tokens == hf_greedy(references[family], edited, 12)
    stop = threading.Event()
    cut = engine.generate(edited, GenerationConfig(max_new_tokens=12),
                          on_token=lambda *_: stop.set(), cancel=stop)  # fmt: skip
    assert (cut.finish_reason, len(cut.tokens)) == ("cancelled", 1)


def test_fim_tokens_come_from_the_tokenizer(bundles: dict[str, Path], engines) -> None:
    star = engines["gpt_bigcode"].tokenizer
    names = {"prefix": "<fim_prefix>", "suffix": "<fim_suffix>", "middle": "<fim_middle>"}
    assert read_manifest(bundles["gpt_bigcode"]).fim == {
        k: star.token_to_id(v) for k, v in names.items()
    }
    assert star.fim is not None and star.fim.order == "psm"  # StarCoder's prompt order
    prefix, suffix = star.encode("x = "), star.encode("\nprint(x)\n")
    prompt = star.infill_prompt("x = ", "\nprint(x)\n", 64)
    assert prompt == [star.fim.prefix, *prefix, star.fim.suffix, *suffix, star.fim.middle]
    plain = engines["gpt2"].tokenizer  # CodeParrot-like: no FIM tokens, prefix-only prompts
    assert read_manifest(bundles["gpt2"]).fim is None and plain.fim is None
    assert plain.infill_prompt("x = ", "\nprint(x)\n", 64) == plain.encode("x = ")


def test_fim_order_can_be_declared_at_pull(hub: Path, tmp_path: Path) -> None:
    from jpilot.model.pull import pull

    with offline(hub):
        bundle = pull(FAMILY_REPOS["gpt_bigcode"], out=tmp_path / "spm", dtype="fp32",
                      device="cpu", fim_order="spm")  # fmt: skip
    assert read_manifest(bundle).fim_order == "spm"
    tok = Engine(bundle).tokenizer
    assert tok.fim is not None
    assert tok.infill_prompt("a", "b", 64) == [
        tok.fim.prefix, tok.fim.suffix, *tok.encode("b"), tok.fim.middle, *tok.encode("a")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("family", "option", "value"),
    [
        ("gpt2", "attention_head_type", "multiquery"),  # SantaCoder's custom-code config
        ("gpt2", "activation_function", "silu"),
        ("gpt2", "add_cross_attention", True),
        ("gpt_bigcode", "activation_function", "relu"),
        ("gpt_bigcode", "position_embedding_type", "alibi"),
        ("gpt_neo", "attention_types", [[["global", "sparse"], 1]]),
        ("gptj", "rope_scaling", {"type": "linear", "factor": 2.0}),
    ],
)
def test_options_jpilot_cannot_serve_are_refused_by_name(
    family: str, option: str, value: object, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    shutil.copytree(checkpoints[family], src)
    config = json.loads((src / "config.json").read_text())
    config.pop("attention_layers", None)  # gpt_neo: derived from attention_types
    (src / "config.json").write_text(json.dumps({**config, option: value}))
    with pytest.raises(ModelError, match=f"sets {option}=") as info:
        export_bundle(src, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_pull_refuses_an_option_before_downloading_weights(hub: Path, tmp_path: Path) -> None:
    from jpilot.model.pull import pull

    with offline(hub):
        # the repo has no weights: a pull that got past the config would say so instead
        with pytest.raises(ModelError, match=f"{BAD_REPO}: .*position_embedding_type='alibi'"):
            pull(BAD_REPO, out=tmp_path / "b", dtype="fp32", device="cpu")


def test_concat_graph_is_gptj_only(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="--kv-cache concat is for GPT-J"):
        export_bundle(checkpoints["gpt2"], tmp_path / "b", kv_cache="concat")


def test_weights_in_external_data_still_load(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """Past the embed limit the weights go to model.onnx.data; the small constants that
    shape inference reads (the learned positions' axes) stay in model.onnx."""
    import onnxruntime as ort

    from jpilot.model.static_kv import export_static

    assert export_static(checkpoints["gpt2"], tmp_path, embed_limit=4096) == ["model.onnx.data"]
    ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])


def test_gpt2_weights_without_the_transformer_prefix(
    checkpoints: dict[str, Path], engines, tmp_path: Path
) -> None:
    """openai-community/gpt2 names its weights `h.0.attn.c_attn.weight`, `wte.weight`."""
    from jpilot.model.checkpoint import Checkpoint, write_safetensors

    src = tmp_path / "gpt2"
    shutil.copytree(checkpoints["gpt2"], src)
    ckpt = Checkpoint(checkpoints["gpt2"])
    bare = {name.removeprefix("transformer."): name for name in ckpt.names()}
    specs = [(new, ckpt.entries[old].dtype, ckpt.shape(old)) for new, old in bare.items()]
    write_safetensors(src / "model.safetensors", specs, lambda new: ckpt.raw(bare[new]))
    assert "wte.weight" in Checkpoint(src).names()
    engine = Engine(export_bundle(src, tmp_path / "b"))
    ids = engine.tokenizer.encode(PROMPT)
    want, _ = engines["gpt2"]._forward(ids, engines["gpt2"]._empty_kv(), 0, all_logits=True)
    got, _ = engine._forward(ids, engine._empty_kv(), 0, all_logits=True)
    np.testing.assert_array_equal(got, want)


def test_gpt_bigcode_without_multi_query(tmp_path: Path) -> None:
    """multi_query false: c_attn's rows are grouped per head, regrouped for GQA at export."""
    import transformers

    src = make_family(tmp_path / "mha", "gpt_bigcode", seed=1, multi_query=False)
    engine = Engine(export_bundle(src, tmp_path / "b"))
    assert engine.kv_shapes[0] == (4, 64)
    ids = engine.tokenizer.encode(PROMPT)
    logits, _ = engine._forward(ids, engine._empty_kv(), 0, all_logits=True)
    model = transformers.GPTBigCodeForCausalLM.from_pretrained(src, attn_implementation="eager")
    assert np.abs(logits - hf_logits(model.eval(), ids)).max() < 1e-4


@pytest.mark.parametrize("family", ["gpt_bigcode", "gpt_neo"])
def test_fp16_bundle_tracks_fp32(family: str, checkpoints, engines, tmp_path: Path) -> None:
    """The GPU format (fp16 weights and KV buffers); ORT's CPU provider runs it too."""
    fp16 = Engine(export_bundle(checkpoints[family], tmp_path / "fp16", dtype="fp16"))
    assert fp16.kv_dtype == np.float16
    ids = fp16.tokenizer.encode(PROMPT)
    a, _ = engines[family]._forward(ids, engines[family]._empty_kv(), 0, all_logits=True)
    b, _ = fp16._forward(ids, fp16._empty_kv(), 0, all_logits=True)
    assert np.abs(a - b.astype(np.float32)).max() < 0.02 * np.abs(a).max()
