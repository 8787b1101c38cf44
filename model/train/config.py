"""The training run's configuration, kept free of torch so the CLI starts fast."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_PARAMS = 60_000_000  # the shipped default must stay a small CPU model
HISTORY_DIR = "init_from"  # RUN/init_from/: manifest and card of the --init-from bundle


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in training_summary.json."""

    out: str  # output folder: data/, checkpoint/, state/, train_log.jsonl, bundle/
    corpus: list[str] | None = None  # user folders/files; None = stdlib + permissive packages
    package_dirs: list[str] | None = None  # extra site folders (`pip install --target DIR`)
    data_dir: str | None = None  # tokenized-corpus cache (default OUT/data); share across runs
    tokenizer: str | None = None  # use this tokenizer.json instead of training one
    max_files: int | None = None  # cap on corpus files (toy runs)
    with_tests: bool = False  # add the stdlib's test suite to the default corpus
    dedup_train: bool = False  # drop training files that nearly duplicate another (MinHash)
    init_from: str | None = None  # bundle whose weights and tokenizer a new run starts from
    add_layers: int = 0  # with init_from: new blocks that start as the identity (deeper model)
    minutes: float = 60.0  # wall-clock budget of the training loop
    max_steps: int | None = None  # stop after this many steps and schedule by steps (tests)
    layers: int = 6  # transformer blocks
    d_model: int = 384  # hidden size
    heads: int = 6  # attention heads; head_dim = d_model / heads
    rotary_dim: int | None = None  # rotary dims per head; None = head_dim / 2
    seq_len: int = 512  # training context in tokens
    n_positions: int | None = None  # context the bundle declares; None = seq_len. GPT-J's
    # rotary positions do not extrapolate: a context longer than training gives garbage
    vocab_size: int = 8192  # BPE vocabulary incl. the 5 special tokens
    batch_size: int = 16  # windows per step (tokens per step = batch_size * seq_len)
    lr: float = 2e-3  # peak learning rate
    min_lr_ratio: float = 0.1  # final lr as a fraction of the peak
    warmup: float = 0.03  # fraction of the budget spent warming up linearly
    weight_decay: float = 0.1  # AdamW decay on matrices (not on norms and biases)
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    grad_clip: float = 1.0  # max global gradient norm
    fim_rate: float = 0.5  # fraction of windows turned into FIM examples
    fim_order: str = "spm"  # FIM layout: "spm" (middle continues the prefix) or "psm". A
    # 7M-param model trained 42M tokens in PSM never learned to use the prefix end (0.3% exact
    # match); see MODEL_CARD.md
    seed: int = 0  # seeds init, data sampling and validation windows
    threads: int = 2  # torch intra-op threads
    compile: bool = True  # torch.compile the loss (~1 min to compile, then ~2x faster on CPU)
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when torch sees a GPU)
    precision: str = "auto"  # matmul precision: "bf16" (autocast), "fp32", or "auto": bf16
    # only where the CPU has bf16 instructions (AVX-512 BF16 or AMX) or the GPU does bf16
    val_windows: int = 32  # fixed validation windows (each of plain and FIM)
    evals: int = 20  # validation runs over the budget (plus one at the end)
    checkpoint_minutes: float = 10.0  # save a resumable checkpoint this often
    export: bool = True  # export OUT/bundle with jpilot.model.export when available
    extra: dict = field(default_factory=dict)  # free-form notes copied into the summary
