"""`jpilot model train`: build the corpus and tokenizer, train a small GPT-J, write a checkpoint.

Re-running the same command with the same --out resumes from the last checkpoint, and so
does `--resume RUN` with no other options. A long run in the background, niced, that a
benchmark can pause (see docs/TRAINING.md):
    nice -n 19 jpilot model train --out runs/big --minutes 600 ... > runs/big.log 2>&1 &
    touch runs/big/PAUSE; ...benchmark...; rm runs/big/PAUSE
    kill -TERM %1   # checkpoints, then stops; later: jpilot model train --resume runs/big
Example (a toy run of about a minute):
    jpilot model train --out runs/toy --max-files 50 --minutes 1 --layers 2 --d-model 128
"""

from __future__ import annotations

import argparse
import sys

from jpilot.model.errors import ModelError
from jpilot.model.tokenizer import FIM_ORDERS
from jpilot.model.train.config import TrainConfig
from jpilot.model.train.runctl import DEVICES, PRECISIONS, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `jpilot model train`."""
    d = TrainConfig(out="")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="output folder (resumes if it holds a run)")
    where.add_argument(
        "--resume", metavar="RUN",
        help="continue the run in RUN with the options it started with (optimizer, data "
        "order and schedule); only --minutes and --threads may change",
    )  # fmt: skip
    parser.add_argument(
        "--corpus", nargs="+", metavar="PATH",
        help="your own folders/files of Python code (default: stdlib + permissive site-packages)",
    )  # fmt: skip
    parser.add_argument(
        "--packages-dir", nargs="+", metavar="DIR",
        help="also train on the permissive pure-Python packages installed in DIR "
        "(fill it with `pip install --no-deps --target DIR PACKAGE ...`)",
    )  # fmt: skip
    parser.add_argument(
        "--with-tests", action="store_true",
        help="add the stdlib's test suite to the default corpus (users write tests)",
    )  # fmt: skip
    parser.add_argument(
        "--dedup-train", action="store_true",
        help="drop training files that nearly duplicate another (MinHash, Jaccard >= 0.85)",
    )  # fmt: skip
    parser.add_argument("--data-dir", help="tokenized-corpus cache to share (default OUT/data)")
    parser.add_argument(
        "--init-from", metavar="BUNDLE",
        help="start from this bundle's weights and tokenizer (its sizes replace the size options)",
    )  # fmt: skip
    parser.add_argument(
        "--add-layers", type=int, default=0, metavar="N",
        help="with --init-from: make the model N blocks deeper; each new block starts as a "
        "copy of the one below with its output zeroed, so training starts where the bundle is",
    )  # fmt: skip
    parser.add_argument(
        "--minutes", type=float, help=f"training time budget (default {d.minutes:g})"
    )
    parser.add_argument("--max-steps", type=int, help="stop after N steps (schedule by steps)")
    parser.add_argument("--max-files", type=int, help="cap the number of corpus files")
    parser.add_argument("--layers", type=int, default=d.layers)
    parser.add_argument("--d-model", type=int, default=d.d_model)
    parser.add_argument("--heads", type=int, default=d.heads)
    parser.add_argument("--rotary-dim", type=int, help="rotary dims per head (default head/2)")
    parser.add_argument("--seq-len", type=int, default=d.seq_len)
    parser.add_argument("--vocab-size", type=int, default=d.vocab_size)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    parser.add_argument("--fim-rate", type=float, default=d.fim_rate)
    parser.add_argument(
        "--fim-order", choices=FIM_ORDERS, default=d.fim_order,
        help="FIM layout: spm puts the suffix first so the middle continues the prefix",
    )  # fmt: skip
    parser.add_argument("--evals", type=int, default=d.evals, help="validation runs in budget")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument(
        "--device", choices=DEVICES, default=d.device, help="train on the CPU or a CUDA GPU"
    )
    parser.add_argument(
        "--tokenizer", metavar="JSON",
        help="use this tokenizer.json (e.g. the default bundle's) instead of training one",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS, default=d.precision,
        help="matmul precision; auto: bf16 where the CPU has bf16 instructions, else fp32",
    )  # fmt: skip
    parser.add_argument("--no-export", action="store_true", help="skip writing OUT/bundle")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Validate the parsed options and turn them into a TrainConfig."""
    if args.minutes is not None and args.minutes <= 0:
        raise ModelError("--minutes must be positive")
    if args.resume:
        cfg = load_config(args.resume)
        cfg.minutes = args.minutes or cfg.minutes
        cfg.threads = args.threads if args.threads > 0 else cfg.threads
        return cfg
    if args.minutes is None:
        args.minutes = TrainConfig(out="").minutes
    if args.minutes <= 0 and not args.max_steps:
        raise ModelError("--minutes must be positive (or give --max-steps)")
    for name in ("layers", "d_model", "heads", "seq_len", "batch_size", "threads"):
        if getattr(args, name) <= 0:
            raise ModelError(f"--{name.replace('_', '-')} must be positive")
    if args.max_files is not None and args.max_files <= 0:
        raise ModelError("--max-files must be positive")
    if args.add_layers and not args.init_from:
        raise ModelError("--add-layers grows a trained model: give it with --init-from BUNDLE")
    if args.add_layers < 0:
        raise ModelError("--add-layers must be positive")
    if not 0.0 <= args.fim_rate <= 1.0:
        raise ModelError("--fim-rate must be between 0 and 1")
    return TrainConfig(
        out=args.out,
        corpus=args.corpus,
        package_dirs=args.packages_dir,
        data_dir=args.data_dir,
        max_files=args.max_files,
        with_tests=args.with_tests,
        dedup_train=args.dedup_train,
        init_from=args.init_from,
        add_layers=args.add_layers,
        minutes=args.minutes,
        max_steps=args.max_steps,
        layers=args.layers,
        d_model=args.d_model,
        heads=args.heads,
        rotary_dim=args.rotary_dim,
        seq_len=args.seq_len,
        vocab_size=args.vocab_size,
        batch_size=args.batch_size,
        lr=args.lr,
        fim_rate=args.fim_rate,
        fim_order=args.fim_order,
        evals=args.evals,
        seed=args.seed,
        threads=args.threads,
        export=not args.no_export,
        compile=not args.no_compile,
        precision=args.precision,
        device=args.device,
        tokenizer=args.tokenizer,
    )


def run(args: argparse.Namespace) -> int:
    """Train per the parsed options; return the exit code."""
    from jpilot.model.train.trainer import train  # torch: imported only to train

    cfg = config_from_args(args)
    summary = train(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(
        f"trained {summary['params'] / 1e6:.1f}M params on {summary['tokens_seen']:,} tokens; "
        f"val loss {summary['final_val_loss']}; checkpoint at {summary['checkpoint']}"
    )
    return 0
