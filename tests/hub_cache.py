"""Build a Hugging Face hub cache in a folder, laid out as huggingface_hub writes it.

`models--ORG--NAME/refs/main` holds the commit sha, `snapshots/SHA/FILE` links to
`blobs/<sha256>`. With HF_HUB_CACHE pointing at the folder and HF_HUB_OFFLINE=1,
`snapshot_download` resolves these repos exactly as it would after a real download.
Also builds the repos: a tiny random CodeGen saved as the Salesforce repos are
(pytorch_model.bin, vocab.json + merges.txt + added_tokens.json, no tokenizer.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from tiny_models import make_gptj, tiny_codegen, training_text

SPACE_RUNS = [" " * n for n in range(31, 1, -1)]  # CodeGen's added whitespace tokens
TAB_RUNS = ["\t" * n for n in range(9, 1, -1)]
README = "---\nlicense: bsd-3-clause\n---\n# tiny test model\n"


def add_repo(cache: Path, repo_id: str, files: Path, sha: str, ref: str = "main") -> Path:
    """Put every file of folder `files` into the cache as `repo_id` at commit `sha`."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / sha
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for src in sorted(p for p in files.rglob("*") if p.is_file()):
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        shutil.copyfile(src, blob)
        link = snapshot / src.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(sha)
    return snapshot


def make_codegen_repo(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random CodeGen as Salesforce ships codegen: .bin, slow-tokenizer files."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_text(), trainer)
    tok.model.save(str(folder))  # vocab.json + merges.txt, as GPT-2 and CodeGen ship them
    base = tok.get_vocab_size()
    added = {text: base + i for i, text in enumerate(SPACE_RUNS + TAB_RUNS)}
    (folder / "added_tokens.json").write_text(json.dumps(added))
    eos = "<|endoftext|>"
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": eos, "eos_token": eos, "unk_token": eos})
    )
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "unk_token": eos, "bos_token": eos, "eos_token": eos, "add_prefix_space": False,
        "model_max_length": 256, "tokenizer_class": "CodeGenTokenizer",
    }))  # fmt: skip
    (folder / "README.md").write_text(README)

    # vocabulary padded past the tokenizer, as CodeGen's 51200 is past its 50295
    model = tiny_codegen(seed, vocab_size=384)
    model.save_pretrained(folder, safe_serialization=False)  # pytorch_model.bin only
    assert not (folder / "tokenizer.json").exists()
    return folder


def make_gptj_repo(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random GPT-J with model.safetensors and tokenizer.json."""
    make_gptj(folder, seed=seed, n_head=2, rotary_dim=16)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny GPT-J\n")
    return folder
