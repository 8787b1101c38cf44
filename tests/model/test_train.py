"""Tests for `jpilot model train`: corpus filters, tokenizer, FIM layout, a toy run, resume."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import string
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import GPTJForCausalLM  # noqa: E402

from jpilot.model.errors import ModelError  # noqa: E402
from jpilot.model.train import cli, runctl  # noqa: E402
from jpilot.model.train.corpus import (  # noqa: E402
    NEAR_DUPLICATE,
    NEAR_DUPLICATE_SPLIT,
    TRAIN_DUPLICATE_SPLIT,
    Document,
    build_corpus,
    default_sources,
    drop_training_near_duplicates,
    split_of,
    stdlib_test_files,
)
from jpilot.model.train.data import (  # noqa: E402
    IGNORE,
    WindowSampler,
    fingerprint,
    prepare_data,
)
from jpilot.model.train.licences import is_permissive  # noqa: E402
from jpilot.model.train.tokenizer import (  # noqa: E402
    SPECIAL_TOKENS,
    check_round_trip,
    special_ids,
    train_tokenizer,
)
from jpilot.model.train.trainer import train  # noqa: E402
from jpilot.model.train.warmstart import (  # noqa: E402
    add_blocks,
    model_from_bundle,
    with_context,
)

SAMPLE = (
    'import os\r\n\r\nclass Greeter:\r\n    """Say hello — ünïcödé 😀."""\r\n\r\n'
    '    def hi(self, name):\r\n        if name:\r\n            return f"hi {name}"\r\n'
    "\treturn None\r\n"
)


def _code(i: int) -> str:
    """Return a small distinct Python module."""
    return (
        f'"""Module {i}."""\n\nimport os\n\n\nclass Thing{i}:\n    def __init__(self, x):\n'
        f"        self.x = x + {i}\n\n    def value(self):\n        if self.x > {i}:\n"
        f"            return self.x * {i}\n        return os.getpid()\n"
    )


@pytest.fixture(scope="module")
def user_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 40 small Python files, one duplicated, one non-UTF-8."""
    root = tmp_path_factory.mktemp("corpus") / "proj"
    root.mkdir()
    for i in range(40):
        (root / f"mod{i}.py").write_text(_code(i) * 3)
    (root / "copy_of_mod3.py").write_text((_code(3) * 3).replace("\n", "   \n"))
    (root / "latin1.py").write_bytes(b"x = '\xe9'\n")
    (root / "notes.txt").write_text("not python")
    return root


def test_licence_filter() -> None:
    for ok in ("MIT", "BSD-3-Clause", "Apache-2.0", "Apache 2.0", "PSF-2.0", "MIT OR GPL-3.0"):
        assert is_permissive(ok), ok
    for bad in ("GPL-3.0-or-later", "MPL-2.0", "LGPL-2.1", "Mozilla Public License 2.0", "UNKNOWN"):
        assert not is_permissive(bad), bad
    assert not is_permissive("MIT AND GPL-2.0-only")
    assert is_permissive(None, ["License :: OSI Approved :: BSD License"])
    assert not is_permissive(
        None, ["License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)"]
    )
    assert not is_permissive(None, [])
    assert not is_permissive("Limited use licence")  # "mit" is a word, not a substring
    assert is_permissive("Apache-2.0 AND Apache-2.0 WITH LLVM-exception")


def test_licence_given_as_its_full_text() -> None:
    apache = "Copyright 2018 Acme Inc. All rights reserved.\n\n  Apache License\n  Version 2.0"
    gpl = ("GNU GENERAL PUBLIC LICENSE\nVersion 3\nEveryone is permitted to copy or submit "
           "verbatim copies, without limitation or MIT-style terms.")  # fmt: skip
    assert is_permissive(apache + "\n\nLegal Entity authorized to submit, or not limited to")
    assert not is_permissive(gpl)
    unrecognised = "Copyright 2018 Acme Inc.\nAll rights reserved. Permission needed or not."
    assert not is_permissive(unrecognised)
    # an unrecognised field leaves the decision to the classifiers
    assert is_permissive(unrecognised, ["License :: OSI Approved :: MIT License"])


def test_corpus_dedup_and_filters(user_corpus: Path) -> None:
    corpus = build_corpus([str(user_corpus)])
    names = {d.name.split("/")[-1] for d in corpus.documents}
    assert corpus.skipped["duplicate"] == 1  # copy_of_mod3 differs only by line-end blanks
    assert len({"copy_of_mod3.py", "mod3.py"} & names) == 1  # the first one seen is kept
    assert corpus.skipped["not utf-8"] == 1 and "latin1.py" not in names
    assert not any(n.endswith(".txt") for n in names)
    assert corpus.manifest()["files"] == 40


def _install(site: Path, name: str, licence: str, files: dict[str, str]) -> None:
    """Lay out a distribution in `site` the way `pip install --target site` does."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
                                   f"License: {licence}\n")  # fmt: skip
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    (info / "RECORD").write_text("".join(f"{rel},,\n" for rel in files))


def test_packages_dir_adds_its_permissive_pure_python_packages(
    tmp_path: Path, user_corpus: Path
) -> None:
    site = tmp_path / "site"
    _install(site, "goodpkg", "MIT", {"goodpkg/__init__.py": _code(101),
                                      "goodpkg/tests/test_x.py": _code(102)})  # fmt: skip
    _install(site, "leftpkg", "GPL-3.0-or-later", {"leftpkg/__init__.py": _code(103)})
    _install(site, "fastpkg", "MIT", {"fastpkg/__init__.py": _code(104), "fastpkg/_c.so": ""})
    _install(site, "copypkg", "MIT", {"copypkg/__init__.py": _code(1) * 3})  # mod1.py again
    corpus = build_corpus([str(user_corpus)], package_dirs=[site])
    names = {d.name for d in corpus.documents}
    assert "goodpkg/goodpkg/__init__.py" in names
    assert not any(n.startswith(("leftpkg/", "fastpkg/")) for n in names)  # licence, .so
    assert "goodpkg/goodpkg/tests/test_x.py" not in names  # tests are left out, as in site
    assert corpus.skipped["duplicate"] == 2  # copypkg's file is the user corpus's mod1.py
    manifest = {p["name"]: p for p in corpus.manifest()["packages"]}
    assert manifest["goodpkg"]["licence"] == "MIT" and manifest["goodpkg"]["version"] == "1.0"
    assert set(manifest) == {"user", "goodpkg"}


def test_packages_dir_is_part_of_the_cache_key_and_must_exist(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    before = fingerprint(None, None, 512, "", [str(site)])
    assert before != fingerprint(None, None, 512)
    _install(site, "goodpkg", "MIT", {"goodpkg/__init__.py": _code(1)})
    assert fingerprint(None, None, 512, "", [str(site)]) != before  # one more package
    with pytest.raises(ModelError, match="pip install --no-deps --target"):
        prepare_data(tmp_path / "data", None, 512, package_dirs=[str(tmp_path / "nope")])


def test_split_is_by_file_and_deterministic() -> None:
    names = [f"pkg/file{i}.py" for i in range(5000)]
    first = [split_of(n) for n in names]
    assert first == [split_of(n) for n in names]
    share = first.count("val") / len(names)
    assert 0.01 < share < 0.03


def _random_module(rng: random.Random, lines: int = 120) -> str:
    """Return a module of random assignments: unrelated to any other such module."""
    word = lambda: "".join(rng.choices(string.ascii_lowercase, k=6))  # noqa: E731
    return "".join(f"{word()} = {word()}({word()}, {rng.randrange(100)})\n" for _ in range(lines))


def test_held_out_near_copies_of_training_files_are_set_aside(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    names = [f"m{i}.py" for i in range(1000)]
    val = [n for n in names if split_of(f"user/proj/{n}") == "val"][:2]
    train = [n for n in names if split_of(f"user/proj/{n}") == "train"][:3]
    rng = random.Random(0)
    texts = {n: _random_module(rng) for n in train}
    edited = texts[train[0]].splitlines(keepends=True)
    edited[::10] = [_random_module(rng, 1) for _ in edited[::10]]  # a tenth of it rewritten
    texts[val[0]] = "".join(edited)  # a near copy of a training file: not held out
    texts[val[1]] = _random_module(rng)  # new code: held out
    for name, text in texts.items():
        (root / name).write_text(text)
    corpus = build_corpus([str(root)])
    assert [d.name for d in corpus.split("val")] == [f"user/proj/{val[1]}"]
    assert [d.name for d in corpus.split(NEAR_DUPLICATE_SPLIT)] == [f"user/proj/{val[0]}"]
    source, jaccard = corpus.near_duplicates[f"user/proj/{val[0]}"]
    assert source == f"user/proj/{train[0]}" and NEAR_DUPLICATE <= jaccard < 1
    assert len(corpus.split("train")) == 3  # the training split is left as it was
    manifest = corpus.manifest()
    assert manifest["val_files"] == 1 and manifest["near_duplicate_files"] == 1
    assert manifest["packages"][0]["val_files"] == 1


@pytest.fixture(scope="module")
def tokenizer(user_corpus: Path):
    """A small BPE trained on the toy corpus."""
    texts = [p.read_text() for p in sorted(user_corpus.glob("mod*.py"))]
    return train_tokenizer(texts * 5, vocab_size=600)


def test_tokenizer_round_trips_and_learns_indents(tokenizer) -> None:
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert check_round_trip(tokenizer, [SAMPLE, " \t \n\n  x", "", "a\rb"]) == 4
    tokens = tokenizer.encode("\n        return self", add_special_tokens=False).tokens
    assert tokens[0] == "Ċ" + "Ġ" * 8  # newline plus an 8-space indent is one token


@pytest.mark.parametrize("order", ["spm", "psm"])
def test_fim_layout(tokenizer, order: str) -> None:
    ids = special_ids(tokenizer)
    text = "def f(x):\n    return x + 1\n"
    stream = np.array(tokenizer.encode(text).ids + [ids["eot"]] * 80, dtype=np.uint16)
    sampler = WindowSampler(
        stream, np.array([0]), tokenizer, seq_len=64, fim_rate=1.0, fim_order=order
    )
    for seed in range(20):
        seq, labels = sampler.fim_window(text, np.random.default_rng(seed))
        assert seq.shape == labels.shape == (65,)
        s = seq.tolist()
        end = s.index(ids["eot"])
        if order == "psm":  # <pre> P <suf> S <mid> M <eot>
            assert s[0] == ids["fim_prefix"]
            p_end, s_end = s.index(ids["fim_suffix"]), s.index(ids["fim_middle"])
            assert 0 < p_end < s_end < end
            prefix = tokenizer.decode(s[1:p_end])
            suffix = tokenizer.decode(s[p_end + 1 : s_end])
            assert prefix + tokenizer.decode(s[s_end + 1 : end]) + suffix == text
        else:  # <pre> <suf> S <mid> P M <eot>: the middle continues the prefix
            assert s[:2] == [ids["fim_prefix"], ids["fim_suffix"]]
            s_end = s.index(ids["fim_middle"])
            assert 1 < s_end < end
            suffix = tokenizer.decode(s[2:s_end])
            assert tokenizer.decode(s[s_end + 1 : end]) + suffix == text
        assert all(t == ids["fim_pad"] for t in s[end + 1 :])
        assert (labels[end + 1 :] == IGNORE).all() and (labels[: end + 1] != IGNORE).all()
    inputs, targets = sampler.batch(step=3, batch_size=4)
    again = sampler.batch(step=3, batch_size=4)
    assert inputs.shape == targets.shape == (4, 64)
    assert (inputs == again[0]).all() and (targets == again[1]).all()


def _args(out: Path, corpus: Path, steps: int, *extra: str) -> argparse.Namespace:
    """Parse toy-run options through the real argument parser."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(
        ["--out", str(out), "--corpus", str(corpus), "--max-steps", str(steps), "--layers", "2",
         "--d-model", "64", "--heads", "2", "--seq-len", "64", "--vocab-size", "512",
         "--batch-size", "4", "--no-export", "--no-compile", "--seed", "1", *extra]
    )  # fmt: skip


def test_weights_come_back_from_an_fp32_bundle(tiny_checkpoint: Path, tiny_bundle: Path) -> None:
    original = GPTJForCausalLM.from_pretrained(tiny_checkpoint).state_dict()
    rebuilt = model_from_bundle(tiny_bundle).state_dict()
    weights = [k for k in original if k.endswith((".weight", ".bias")) and ".attn.bias" not in k]
    assert len(weights) == 2 * 10 + 5  # per block: ln_1, q, k, v, out, fc_in, fc_out (+ biases)
    for k in weights:
        torch.testing.assert_close(rebuilt[k], original[k], rtol=0, atol=1e-6, msg=k)


def test_weights_come_back_dequantized_from_an_int8_bundle(
    tiny_checkpoint: Path, tiny_bundle_int8: Path
) -> None:
    original = GPTJForCausalLM.from_pretrained(tiny_checkpoint).state_dict()
    rebuilt = model_from_bundle(tiny_bundle_int8).state_dict()
    for k in ("transformer.h.1.attn.k_proj.weight", "transformer.h.0.mlp.fc_out.weight",
              "lm_head.weight"):  # fmt: skip
        step = original[k].abs().amax(dim=1, keepdim=True) / 127  # per output row, symmetric
        assert ((rebuilt[k] - original[k]).abs() <= step).all(), k
        assert not torch.equal(rebuilt[k], original[k])  # it really went through int8


def test_init_from_an_int4_bundle_is_refused_with_a_way_out(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from jpilot.model.export import export_bundle

    int4 = export_bundle(tiny_checkpoint, tmp_path / "int4", quantize="int4", kv_cache="concat")
    with pytest.raises(ModelError, match="4-bit weights.*fp32 or int8 bundle"):
        model_from_bundle(int4)


def test_init_from_a_bundle_keeps_its_weights_and_tokenizer(
    tmp_path: Path, user_corpus: Path, tiny_bundle: Path
) -> None:
    out = tmp_path / "run"
    assert cli.run(_args(out, user_corpus, 1, "--init-from", str(tiny_bundle), "--lr", "0")) == 0
    trained = GPTJForCausalLM.from_pretrained(out / "checkpoint")
    assert trained.config.n_embd == 64 and trained.config.n_layer == 2  # the bundle's sizes
    assert (out / "checkpoint" / "tokenizer.json").read_bytes() == (
        tiny_bundle / "tokenizer.json"
    ).read_bytes()
    for name in ("jpilot.json", "MODEL_CARD.md"):  # for the card of the new model
        assert (out / "init_from" / name).read_bytes() == (tiny_bundle / name).read_bytes()
    start = model_from_bundle(tiny_bundle).state_dict()
    for k, v in trained.state_dict().items():  # lr 0: one step leaves every weight as it was
        torch.testing.assert_close(v, start[k], msg=k)


@pytest.mark.parametrize(("n", "copied"), [(1, [1]), (2, [0, 1]), (3, [0, 1, 1])])
def test_added_blocks_start_as_the_identity(tiny_bundle: Path, n: int, copied: list[int]) -> None:
    model = model_from_bundle(tiny_bundle).eval()
    deeper = add_blocks(model, n).eval()
    assert deeper.config.n_layer == 2 + n and model.config.n_layer == 2
    ids = torch.randint(0, model.config.vocab_size, (2, 24))
    with torch.no_grad():
        torch.testing.assert_close(deeper(ids).logits, model(ids).logits)
    old = [b.state_dict() for b in model.transformer.h]
    kinds = []  # for each block of the deeper model: (old block it copies, is a new block)
    for block in deeper.transformer.h:
        new = block.state_dict()
        source = [i for i, o in enumerate(old) if torch.equal(o["ln_1.weight"], new["ln_1.weight"])
                  and torch.equal(o["attn.q_proj.weight"], new["attn.q_proj.weight"])]  # fmt: skip
        zeroed = not new["attn.out_proj.weight"].any() and not new["mlp.fc_out.weight"].any()
        assert len(source) == 1 and zeroed != torch.equal(
            new["mlp.fc_out.weight"], old[source[0]]["mlp.fc_out.weight"]
        )
        kinds.append((source[0], zeroed))
    assert [i for i, z in kinds if not z] == [0, 1]  # the old blocks keep their order
    assert [i for i, z in kinds if z] == copied  # each new one right after the block it copies
    assert all(kinds[k - 1][0] == i for k, (i, z) in enumerate(kinds) if z)


def test_a_longer_context_keeps_what_the_model_computes(tiny_bundle: Path) -> None:
    model = model_from_bundle(tiny_bundle).eval()
    longer = with_context(model, 512).eval()
    assert (model.config.n_positions, longer.config.n_positions) == (256, 512)
    ids = torch.randint(0, model.config.vocab_size, (1, 400))
    with torch.no_grad():
        torch.testing.assert_close(longer(ids[:, :200]).logits, model(ids[:, :200]).logits)
        assert longer(ids).logits.shape[1] == 400  # past the old context: positions exist


def test_a_grown_run_trains_the_deeper_model_on_longer_windows(
    tmp_path: Path, user_corpus: Path, tiny_bundle: Path
) -> None:
    out = tmp_path / "run"
    # windows longer than the bundle's 256-token context: the run lengthens it
    extra = ("--init-from", str(tiny_bundle), "--add-layers", "2", "--seq-len", "300")
    assert cli.run(_args(out, user_corpus, 2, *extra)) == 0
    trained = GPTJForCausalLM.from_pretrained(out / "checkpoint")
    assert trained.config.n_layer == 4 and trained.config.n_embd == 64
    assert trained.config.n_positions == 300
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["config"]["add_layers"] == 2 and summary["config"]["layers"] == 4
    assert cli.run(_args(out, user_corpus, 3, *extra)) == 0  # resumes the 4-block run
    assert GPTJForCausalLM.from_pretrained(out / "checkpoint").config.n_layer == 4


def test_add_layers_needs_a_model_to_grow(tmp_path: Path, user_corpus: Path) -> None:
    with pytest.raises(ModelError, match="--add-layers grows a trained model.*--init-from"):
        cli.run(_args(tmp_path / "run", user_corpus, 1, "--add-layers", "2"))


@pytest.mark.slow
def test_toy_run_end_to_end_and_resume(tmp_path: Path, user_corpus: Path) -> None:
    out = tmp_path / "run"
    assert cli.run(_args(out, user_corpus, steps=3)) == 0
    model = GPTJForCausalLM.from_pretrained(out / "checkpoint")
    # the context the checkpoint declares is the one it was trained on (no extrapolation)
    assert model.config.n_layer == 2 and model.config.n_positions == 64
    assert model.config.fim_order == "spm"  # export copies it into jpilot.json
    assert (out / "checkpoint" / "tokenizer.json").is_file()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and np.isfinite(log[-1]["val_loss_plain"])
    first = {k: v.clone() for k, v in model.state_dict().items()}

    assert cli.run(_args(out, user_corpus, steps=5)) == 0  # same --out: resumes at step 3
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 5 and all(r["step"] != 1 for r in log[1:])
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 5 and summary["tokens_seen"] > 0
    assert summary["corpus"]["packages"][0]["tokens"] > 0
    resumed = GPTJForCausalLM.from_pretrained(out / "checkpoint").state_dict()
    assert any(not torch.equal(first[k], resumed[k]) for k in first)

    optimizer = load_file(str(out / "state" / "optimizer.safetensors"))
    assert int(optimizer["state.0.step"]) == 5  # AdamW moments carried over, not restarted
    with pytest.raises(ModelError, match="--fim-order spm"):  # one run, one FIM layout
        cli.run(_args(out, user_corpus, 6, "--fim-order", "psm"))


def test_empty_corpus_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(ModelError, match="--corpus"):
        cli.run(_args(tmp_path / "out", tmp_path / "src", steps=1))


def test_a_stopped_run_resumes_exactly_where_it_stopped(tmp_path: Path, user_corpus: Path) -> None:
    straight = tmp_path / "straight"
    assert cli.run(_args(straight, user_corpus, steps=4)) == 0

    stopped = tmp_path / "stopped"

    def sigterm_after_first_step(msg: str) -> None:
        if msg.startswith("step 1 "):  # the first step's validation line
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill -TERM` would: checkpoint, stop

    summary = train(cli.config_from_args(_args(stopped, user_corpus, 4)), sigterm_after_first_step)
    assert summary["stopped"] and summary["steps"] == 1
    assert not (stopped / "bundle").exists()  # a stopped run is not exported
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--resume", str(stopped)])) == 0  # no other options
    done = json.loads((stopped / "training_summary.json").read_text())
    assert done["steps"] == 4 and not done["stopped"]
    a = GPTJForCausalLM.from_pretrained(straight / "checkpoint").state_dict()
    b = GPTJForCausalLM.from_pretrained(stopped / "checkpoint").state_dict()
    for k in a:  # same data order, optimizer moments and schedule: the same weights
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)


def test_resume_needs_a_run_folder(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(ModelError, match="holds no training run"):
        cli.run(parser.parse_args(["--resume", str(tmp_path)]))


def test_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    for fast, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(runctl, "bf16_is_fast", lambda fast=fast: fast)
        assert runctl.choose_precision("auto") == want
    assert runctl.choose_precision("fp32") == "fp32"
    with pytest.raises(ModelError, match="--precision must be one of"):
        runctl.choose_precision("fp8")


def test_paused_time_is_given_back(tmp_path: Path) -> None:
    (tmp_path / runctl.PAUSE_FILE).touch()
    lines: list[str] = []
    timer = threading.Timer(0.2, (tmp_path / runctl.PAUSE_FILE).unlink)
    timer.start()
    slept = runctl.wait_while_paused(tmp_path, lines.append, poll=0.05)
    assert slept > 0 and lines[0].startswith("paused:") and lines[1].startswith("resumed")
    assert runctl.wait_while_paused(tmp_path, lines.append) == 0.0 and len(lines) == 2


def test_training_copies_are_dropped_and_the_first_kept() -> None:
    original = _code(5) * 3
    docs = [
        Document("p", "p/a.py", original),
        Document("p", "p/b.py", original.replace("\n", "  # same\n", 2)),  # a near copy
        Document("p", "p/c.py", _code(9) * 3),
        Document("p", "p/v.py", original, split="val"),  # held out: not this step's business
    ]
    moved = drop_training_near_duplicates(docs)
    assert [d.name for d in moved] == ["p/b.py"]
    assert [d.split for d in docs] == ["train", TRAIN_DUPLICATE_SPLIT, "train", "val"]


def test_the_stdlib_tests_come_only_when_asked() -> None:
    names = [info.name for info, _ in itertools.islice(default_sources(tests=True), 2)]
    assert names == ["stdlib", "stdlib-tests"]
    assert [i.name for i, _ in itertools.islice(default_sources(), 2)][1] != "stdlib-tests"
    files = dict(stdlib_test_files())
    assert "test_json/test_decode.py" in files and all(p.suffix == ".py" for p in files.values())


def test_init_from_takes_only_gptj_bundles(tmp_path: Path, tiny_bundle: Path) -> None:
    other = tmp_path / "bigcode"
    shutil.copytree(tiny_bundle, other)
    manifest = json.loads((other / "jpilot.json").read_text())
    (other / "jpilot.json").write_text(json.dumps(manifest | {"architecture": "gpt_bigcode"}))
    with pytest.raises(ModelError, match="holds a gpt_bigcode model.*--init-from takes GPT-J"):
        model_from_bundle(other)
