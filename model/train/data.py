"""Turn the corpus into cached token streams and sample (optionally FIM) training windows.

`prepare_data` builds the corpus, trains the tokenizer on the train split, and tokenizes each
split into one flat stream, documents separated by `<|endoftext|>`:
    DATA/tokenizer.json, DATA/{train,val}.npy (tokens), DATA/{train,val}_docs.npy (doc starts),
    DATA/meta.json (corpus manifest with token counts, tokenizer stats, fingerprint).
A second run with the same options reuses the cache.

`WindowSampler` draws training windows of `seq_len + 1` tokens, seeded by (seed, step), so a
resumed run sees exactly the batches it would have seen. With probability `fim_rate` a window
is turned into a fill-in-the-middle example (Bavarian et al. 2022): a window of one document
is decoded, cut at two random character positions (half the time the middle ends at a line
end, like a rest-of-line completion) and re-tokenized in SPM or PSM order
(`jpilot.model.tokenizer.FimTokens`):
    spm: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle <|endoftext|>
    psm: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <|endoftext|>
Documents are whole files, which are mostly longer than a window, so the FIM span is drawn
inside a window-sized piece of one document ("document-level" within the context length).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from jpilot.model.errors import ModelError
from jpilot.model.train.corpus import build_corpus
from jpilot.model.train.tokenizer import (
    check_round_trip,
    load_tokenizer,
    sample_texts,
    special_ids,
    tokenizer_stats,
    train_tokenizer,
)

IGNORE = -100  # label value the loss skips (FIM padding)
TOKENIZER_SAMPLE_BYTES = 30_000_000  # train the BPE on about this much text
ENCODE_BATCH = 1_000  # documents tokenized at once


@dataclass
class Prepared:
    """The cached token streams and what describes them."""

    tokenizer: Tokenizer  # the trained byte-level BPE
    train: np.ndarray  # (n_train_tokens,) uint16/int32, docs joined by eot
    train_docs: np.ndarray  # (n_train_docs,) int64 start offset of each doc in `train`
    val: np.ndarray  # (n_val_tokens,) like `train`
    val_docs: np.ndarray  # (n_val_docs,) like `train_docs`
    meta: dict  # corpus manifest, tokenizer stats, fingerprint


def fingerprint(
    corpus_paths: Iterable[str] | None,
    max_files: int | None,
    vocab: int,
    tokenizer: str = "",
    package_dirs: Iterable[str] = (),
    options: tuple = (False, False),
) -> str:
    """Return a short hash of the options that determine the cached data.

    For `package_dirs` the distributions installed there count, so installing one more
    package into such a folder rebuilds the cache.
    """
    parts: list = [sorted(corpus_paths or []), max_files, vocab, 3, tokenizer]  # 3: near-dups
    if options != (False, False):  # (tests, dedup_train); older caches keep their print
        parts.append(list(options))
    for d in sorted(package_dirs):
        parts.append([str(Path(d).resolve()), sorted(p.name for p in Path(d).glob("*.dist-info"))])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def prepare_data(
    data_dir: Path,
    corpus_paths: list[str] | None,
    vocab_size: int,
    max_files: int | None = None,
    log=print,
    tokenizer_json: Path | None = None,
    package_dirs: list[str] | None = None,
    tests: bool = False,
    dedup_train: bool = False,
) -> Prepared:
    """Build (or load from `data_dir`) the tokenizer and the tokenized train/val streams.

    With `tokenizer_json` that tokenizer is used as it is instead of training one.
    `package_dirs` add the permissive pure-Python distributions installed in them.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    given = hashlib.sha256(tokenizer_json.read_bytes()).hexdigest() if tokenizer_json else ""
    dirs = package_dirs or []
    for d in dirs:
        if not Path(d).is_dir():
            raise ModelError(f"--packages-dir {d} is not a folder; fill one with "
                             f"`pip install --no-deps --target {d} PACKAGE ...`")  # fmt: skip
    fp = fingerprint(corpus_paths, max_files, vocab_size, given, dirs, (tests, dedup_train))
    meta_path = data_dir / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("fingerprint") == fp:
        return _load(data_dir, json.loads(meta_path.read_text()))
    log("building corpus ...")
    corpus = build_corpus(corpus_paths, max_files, dirs, tests, dedup_train)
    train_docs, val_docs = corpus.split("train"), corpus.split("val")
    if not train_docs:
        where = " ".join(corpus_paths) if corpus_paths else "the stdlib and site-packages"
        raise ModelError(
            f"no usable Python files found in {where} (skipped: {corpus.skipped}); "
            "pass --corpus with folders that contain .py files"
        )
    if not val_docs:  # tiny corpora: hold out the last file so validation is never empty
        train_docs[-1].split = "val"
        val_docs, train_docs = [train_docs[-1]], train_docs[:-1] or train_docs
    log(f"corpus: {len(train_docs)} train / {len(val_docs)} val files")
    if tokenizer_json:
        tokenizer = load_tokenizer(tokenizer_json)
        special_ids(tokenizer)  # a how-to-fix error if it lacks eot or the FIM markers
    else:
        log("training tokenizer ...")
        texts = [d.text for d in train_docs]
        tokenizer = train_tokenizer(sample_texts(texts, TOKENIZER_SAMPLE_BYTES), vocab_size)
    check_round_trip(tokenizer, [d.text for d in val_docs[:200]])
    log("tokenizing ...")
    dtype = np.uint16 if tokenizer.get_vocab_size() <= 65536 else np.int32
    eot = special_ids(tokenizer)["eot"]
    streams = {}
    for name, docs in (("train", train_docs), ("val", val_docs)):
        pieces = []  # per document: its ids then eot
        for i in range(0, len(docs), ENCODE_BATCH):  # batches bound the Encoding objects' memory
            batch = docs[i : i + ENCODE_BATCH]
            encoded = tokenizer.encode_batch([d.text for d in batch], add_special_tokens=False)
            for doc, enc in zip(batch, encoded, strict=True):
                pieces.append(np.array([*enc.ids, eot], dtype=dtype))
                corpus.packages[doc.package].tokens += len(enc.ids)
        lengths = np.array([len(x) for x in pieces], dtype=np.int64)
        tokens = np.concatenate(pieces) if pieces else np.empty(0, dtype=dtype)  # (n_tokens,)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        streams[name] = (tokens, starts)
        np.save(data_dir / f"{name}.npy", tokens)
        np.save(data_dir / f"{name}_docs.npy", starts)
    tokenizer.save(str(data_dir / "tokenizer.json"))
    meta = {
        "fingerprint": fp,
        "corpus": corpus.manifest(),
        "tokenizer": tokenizer_stats(tokenizer, [d.text for d in val_docs]),
        "train_tokens": int(len(streams["train"][0])),
        "val_tokens": int(len(streams["val"][0])),
        "val_bytes": sum(len(d.text.encode("utf-8")) for d in val_docs),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    (train, train_starts), (val, val_starts) = streams["train"], streams["val"]
    return Prepared(tokenizer, train, train_starts, val, val_starts, meta)


def _load(data_dir: Path, meta: dict) -> Prepared:
    """Load a cached data folder written by `prepare_data`."""
    train, train_docs, val, val_docs = (
        np.load(data_dir / f"{n}.npy") for n in ("train", "train_docs", "val", "val_docs")
    )
    return Prepared(
        load_tokenizer(data_dir / "tokenizer.json"), train, train_docs, val, val_docs, meta
    )


class WindowSampler:
    """Draw deterministic training windows (plain or FIM) from a token stream."""

    def __init__(
        self,
        tokens: np.ndarray,
        docs: np.ndarray,
        tokenizer: Tokenizer,
        seq_len: int,
        fim_rate: float = 0.5,
        seed: int = 0,
        fim_order: str = "spm",
    ) -> None:
        if len(tokens) < seq_len + 2:
            raise ModelError(
                f"the corpus has only {len(tokens)} tokens, fewer than one window of "
                f"--seq-len {seq_len}; add files with --corpus or lower --seq-len"
            )
        self.tokens, self.docs, self.tokenizer = tokens, docs, tokenizer
        self.seq_len, self.fim_rate, self.seed = seq_len, fim_rate, seed
        self.fim_order = fim_order
        self.ids = special_ids(tokenizer)
        self.doc_ends = np.append(docs[1:], len(tokens))  # (n_docs,) exclusive ends

    def batch(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (inputs, labels), each (batch_size, seq_len) int64, for one step."""
        rng = np.random.default_rng([self.seed, step])
        rows = [self.sample(rng, rng.random() < self.fim_rate) for _ in range(batch_size)]
        seq = np.stack([r[0] for r in rows])  # (B, seq_len + 1)
        labels = np.stack([r[1] for r in rows])  # (B, seq_len + 1)
        return seq[:, :-1].astype(np.int64), labels[:, 1:].astype(np.int64)

    def sample(self, rng: np.random.Generator, fim: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return one window and its labels, both (seq_len + 1,) int64."""
        n = self.seq_len + 1
        start = int(rng.integers(0, len(self.tokens) - n))
        if not fim:
            window = self.tokens[start : start + n].astype(np.int64)
            return window, window.copy()
        doc = int(np.searchsorted(self.docs, start, side="right")) - 1
        d0, d1 = int(self.docs[doc]), int(self.doc_ends[doc]) - 1  # eot excluded
        span = n - 8  # room for the 4 specials and re-tokenization growth
        start = max(d0, min(start, d1 - span))
        text = self.tokenizer.decode(self.tokens[start : min(d1, start + span)].tolist())
        return self.fim_window(text, rng)

    def fim_window(self, text: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Cut `text` at two random points and lay it out as one padded FIM window."""
        n = self.seq_len + 1
        i, j = sorted(int(x) for x in rng.integers(0, len(text) + 1, size=2))
        if rng.random() < 0.5:  # middle runs to the end of its line: rest-of-line completion
            nl = text.find("\n", i)
            j = len(text) if nl < 0 else nl + 1
        prefix, middle, suffix = text[:i], text[i:j], text[j:]
        enc = self.tokenizer.encode_batch([prefix, middle, suffix], add_special_tokens=False)
        p, m, s = (e.ids for e in enc)
        ids = self.ids
        room = n - 4 - len(m)
        if room < 0:  # middle alone overflows: keep its head
            m, p, s = m[: n - 4], [], []
        else:
            s = s[: max(0, room - len(p))]
            p = p[max(0, len(p) - (room - len(s))) :]
        if self.fim_order == "spm":
            seq = [ids["fim_prefix"], ids["fim_suffix"], *s, ids["fim_middle"], *p, *m]
        else:
            seq = [ids["fim_prefix"], *p, ids["fim_suffix"], *s, ids["fim_middle"], *m]
        seq.append(ids["eot"])
        out = np.full(n, ids["fim_pad"], dtype=np.int64)
        out[: len(seq)] = seq
        labels = out.copy()
        labels[len(seq) :] = IGNORE
        return out, labels


def validation_windows(
    sampler: WindowSampler, count: int, fim: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Return a fixed set of `count` validation (inputs, labels), evenly spread or seeded."""
    n = sampler.seq_len + 1
    if not fim:
        last = len(sampler.tokens) - n
        starts = np.linspace(0, last, num=min(count, max(1, last // n + 1))).astype(np.int64)
        seq = np.stack([sampler.tokens[s : s + n].astype(np.int64) for s in starts])
        return seq[:, :-1], seq[:, 1:].copy()
    rng = np.random.default_rng([sampler.seed, 1_000_003])
    rows = [sampler.sample(rng, True) for _ in range(count)]
    return np.stack([r[0] for r in rows])[:, :-1], np.stack([r[1] for r in rows])[:, 1:]


def token_bytes(tokenizer: Tokenizer) -> np.ndarray:
    """Return (vocab,) UTF-8 byte lengths per token id (0 for special tokens)."""
    table = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
    specials = set(special_ids(tokenizer).values())
    for tok, tid in tokenizer.get_vocab().items():
        if tid not in specials:  # byte-level BPE: one character of a token is one byte
            table[tid] = len(tok)
    return table
