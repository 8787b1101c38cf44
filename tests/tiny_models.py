"""Build tiny random GPT-J / CodeGen checkpoints and bundles for tests; nothing is downloaded."""

from __future__ import annotations

import sysconfig
from pathlib import Path

SPECIALS = ["<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>"]


def training_text() -> list[str]:
    """Return a few stdlib sources to train the tiny tokenizer on."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = ["textwrap.py", "colorsys.py", "bisect.py", "keyword.py", "fnmatch.py"]
    return [(stdlib / n).read_text(encoding="utf-8") for n in names if (stdlib / n).is_file()]


def make_tokenizer(path: Path, vocab_size: int = 320) -> None:
    """Train a byte-level BPE with FIM specials and save it as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_text(), trainer)
    tok.save(str(path))


def make_gptj(
    folder: Path,
    seed: int = 0,
    vocab_size: int = 320,
    n_positions: int = 256,
    n_head: int = 4,
    rotary_dim: int = 8,
) -> Path:
    """Save a tiny random GPT-J checkpoint (with tokenizer.json) into `folder`."""
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    torch.manual_seed(seed)
    config = GPTJConfig(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=64,
        n_layer=2,
        n_head=n_head,
        rotary_dim=rotary_dim,
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.3,
    )
    model = GPTJForCausalLM(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    make_tokenizer(folder / "tokenizer.json", vocab_size)
    return folder


def make_codegen(folder: Path, seed: int = 0, vocab_size: int = 320) -> Path:
    """Save a tiny random CodeGen checkpoint into `folder`."""
    model = tiny_codegen(seed, vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    make_tokenizer(folder / "tokenizer.json", vocab_size)
    return folder


def tiny_codegen(seed: int, vocab_size: int):
    """Return a tiny random CodeGenForCausalLM (2 layers, 64 wide, 8 heads, rotary 4)."""
    import torch
    from transformers import CodeGenConfig, CodeGenForCausalLM

    torch.manual_seed(seed)
    config = CodeGenConfig(
        vocab_size=vocab_size,
        n_positions=256,
        n_ctx=256,
        n_embd=64,
        n_layer=2,
        n_head=8,
        rotary_dim=4,
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.3,
    )
    return CodeGenForCausalLM(config).eval()
