"""Train jpilot's byte-level BPE tokenizer for Python code with the `tokenizers` library.

The pre-tokenizer is a regex split tuned for code before the byte-level mapping:
- a newline (with any trailing blanks before it) keeps the next line's indentation, so merges
  learn "\\n" + 4/8/12-space (or tab) indents as single tokens;
- identifiers (letters, digits, underscores) stay whole, with an optional leading space;
- numbers and punctuation runs are separate pieces, each with an optional leading space;
- other runs of blanks stay together, minus the last blank, which joins the next word.
Byte-level BPE covers every byte, so decode(encode(x)) == x for any text (tabs, CRLF, unicode).
Special tokens come first: `<|endoftext|>` is id 0, then the four FIM tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from jpilot.model.errors import ModelError

EOT = "<|endoftext|>"
FIM_PREFIX = "<fim_prefix>"
FIM_SUFFIX = "<fim_suffix>"
FIM_MIDDLE = "<fim_middle>"
FIM_PAD = "<fim_pad>"
SPECIAL_TOKENS = [EOT, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FIM_PAD]  # ids 0..4 in this order

# Alternatives are tried left to right at each position (see the module docstring).
SPLIT_PATTERN = (
    r"[ \t]*(?:\r?\n[ \t]*)+"  # line end(s) plus the next line's indentation
    r"| ?[\p{L}_][\p{L}\p{N}_]*"  # identifier / keyword
    r"| ?\p{N}+"  # number
    r"| ?[^\s\p{L}\p{N}_]+"  # punctuation run
    r"|\s+(?!\S)"  # blanks, leaving the last one to the next piece
    r"|\s+"  # any other whitespace
)


def build_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Return the code-aware split followed by the byte-level mapping."""
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE with the FIM special tokens on `texts`."""
    if vocab_size < 256 + len(SPECIAL_TOKENS) + 1:
        raise ModelError(f"--vocab-size {vocab_size} is too small; use at least 512")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = build_pre_tokenizer()
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    for i, tok in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(tok) != i:
            raise ModelError(f"tokenizer training put {tok} at the wrong id; this is a bug")
    return tokenizer


def sample_texts(texts: list[str], max_bytes: int) -> Iterator[str]:
    """Yield an evenly spread subset of `texts` totalling about `max_bytes` characters."""
    total = sum(len(t) for t in texts)
    stride = max(1, round(total / max(1, max_bytes)))
    for i in range(0, len(texts), stride) if stride > 1 else range(len(texts)):
        yield texts[i]


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """Return the ids of the special tokens by name (eot, fim_prefix, ...)."""
    names = ["eot", "fim_prefix", "fim_suffix", "fim_middle", "fim_pad"]
    ids = {}
    for name, tok in zip(names, SPECIAL_TOKENS, strict=True):
        tid = tokenizer.token_to_id(tok)
        if tid is None:
            raise ModelError(f"tokenizer lacks {tok}; retrain it with `jpilot model train`")
        ids[name] = tid
    return ids


def check_round_trip(tokenizer: Tokenizer, texts: Iterable[str]) -> int:
    """Raise ModelError unless decode(encode(x)) == x for every text; return how many."""
    n = 0
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        back = tokenizer.decode(ids, skip_special_tokens=False)
        if back != text:
            at = next(
                (i for i, (a, b) in enumerate(zip(text, back, strict=False)) if a != b), len(back)
            )
            raise ModelError(
                f"tokenizer does not round-trip near {text[max(0, at - 20) : at + 20]!r}; "
                "delete the tokenizer.json in the output folder and retrain"
            )
        n += 1
    return n


def tokenizer_stats(tokenizer: Tokenizer, texts: list[str]) -> dict:
    """Measure bytes per token and the indentation tokens learned, on `texts`."""
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    n_tokens = sum(len(e.ids) for e in encodings)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    vocab = tokenizer.get_vocab()
    indents = [n for n in (4, 8, 12, 16) if "Ċ" + "Ġ" * n in vocab]
    return {
        "vocab_size": tokenizer.get_vocab_size(),
        "bytes_per_token": round(n_bytes / max(1, n_tokens), 4),
        "sample_bytes": n_bytes,
        "newline_indent_tokens": indents,
    }


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer.json, with a how-to-fix error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist; run `jpilot model train` to build it")
    return Tokenizer.from_file(str(path))
