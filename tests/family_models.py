"""Small random checkpoints of each family jpilot serves, at a realistic head layout.

Head width 64 with 4 query heads, as the real models have (GPT-2 and StarCoder: 64);
gpt2 with CodeParrot's scale_attn_by_inverse_layer_idx and reorder_and_upcast_attn;
gpt_bigcode with multi-query attention (one KV head); gpt_neo with a global and a local
layer whose window (8) is shorter than the tests' sequences. Tokenizers: the tiny BPE
with StarCoder's FIM specials, except GPT-2's (as CodeParrot's: no FIM tokens).
Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from tiny_models import make_tokenizer, training_text

HEADS, HEAD_DIM, VOCAB, POSITIONS = 4, 64, 320, 128
WIDTH = HEADS * HEAD_DIM
NEO_WINDOW = 8  # gpt_neo's local layer sees the 8 latest keys
FAMILY_REPOS = {  # family -> the repo id the tests pull it as
    "gpt2": "codeparrot/tiny-codeparrot",
    "gpt_neo": "EleutherAI/tiny-gpt-neo",
    "gpt_bigcode": "bigcode/tiny_starcoder_py",
    "gptj": "EleutherAI/tiny-gpt-j",
}
HF_CLASSES = {  # family -> transformers model class
    "gpt2": "GPT2LMHeadModel",
    "gpt_neo": "GPTNeoForCausalLM",
    "gpt_bigcode": "GPTBigCodeForCausalLM",
    "gptj": "GPTJForCausalLM",
}


def family_config(family: str, **changes: object) -> object:
    """Return the transformers config of a small random `family` model."""
    import transformers

    common = {"vocab_size": VOCAB, "bos_token_id": 0, "eos_token_id": 0}
    if family == "gpt_neo":
        return transformers.GPTNeoConfig(
            hidden_size=WIDTH, num_layers=2, num_heads=HEADS, max_position_embeddings=POSITIONS,
            attention_types=[[["global", "local"], 1]], window_size=NEO_WINDOW,
            initializer_range=0.05, **common, **changes,
        )  # fmt: skip
    shape = {"n_embd": WIDTH, "n_layer": 2, "n_head": HEADS, "n_positions": POSITIONS}
    if family == "gpt2":
        return transformers.GPT2Config(  # CodeParrot's options: per-layer scale, fp32 scores
            **shape, scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True,
            initializer_range=0.1, **common, **changes,
        )  # fmt: skip
    if family == "gpt_bigcode":
        changes = {"multi_query": True, **changes}  # StarCoder's; False: one K/V per head
        return transformers.GPTBigCodeConfig(**shape, initializer_range=0.1, **common,
                                             **changes)  # fmt: skip
    return transformers.GPTJConfig(**shape, rotary_dim=32, initializer_range=0.1,
                                   **common, **changes)  # fmt: skip


def make_family(folder: Path, family: str, seed: int = 0, **changes: object) -> Path:
    """Save a small random `family` checkpoint (safetensors, tokenizer.json) into `folder`."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, HF_CLASSES[family])(family_config(family, **changes)).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if family == "gpt2":
        make_plain_tokenizer(folder / "tokenizer.json")
    else:
        make_tokenizer(folder / "tokenizer.json", VOCAB)
    license_ = "bigcode-openrail-m" if family == "gpt_bigcode" else "apache-2.0"
    (folder / "README.md").write_text(f"---\nlicense: {license_}\n---\n# tiny {family}\n")
    return folder


def make_plain_tokenizer(path: Path) -> None:
    """A byte-level BPE with only <|endoftext|>: no FIM tokens, as GPT-2 and CodeParrot."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(training_text(), trainer)
    tok.save(str(path))
