"""Trainer throughput: tokens/s, FLOP/s and MFU of `jpilot model train`'s step, by variant.

Every variant runs the trainer's own pieces (build_model, use_sdpa, make_optimizer,
loss_fn) on random token batches, so no corpus is needed, in one process and interleaved
in rounds, so machine load hits all of them alike. The baseline is the step as the shipped
default was trained (bf16 autocast, torch.compile). MFU is the model's FLOPs (6N per token
plus attention, as in the PaLM paper's appendix B) over this process's own best fp32 matmul
rate, measured first.

    python bench/train_throughput.py                   # the shipped 4x256 size
    python bench/train_throughput.py --layers 8 --d-model 512 --heads 8 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import time

import torch

from jpilot.model.train.config import TrainConfig
from jpilot.model.train.runctl import bf16_is_fast, choose_precision
from jpilot.model.train.trainer import build_model, loss_fn, make_optimizer, use_sdpa


def peak_matmul_flops(seconds: float = 2.0) -> float:
    """Return the best fp32 matmul FLOP/s over a few large shapes (this machine, now)."""
    best = 0.0
    for m, k, n in ((2048, 1024, 1024), (4096, 512, 2048), (2048, 2048, 2048)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        t0, count = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds / 3:
            a @ b
            count += 1
        best = max(best, 2 * m * k * n * count / (time.perf_counter() - t0))
    return best


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Training FLOPs per token: 6 x parameters touched per token + attention scores."""
    cfg = model.config
    n = sum(p.numel() for p in model.parameters()) - model.transformer.wte.weight.numel()
    return 6 * n + 12 * cfg.n_layer * cfg.n_embd * seq_len


class Variant:
    """One way to run the step: precision, compile, micro-batch x accumulation."""

    def __init__(self, name: str, cfg: TrainConfig, bf16: bool, compiled: bool, accum: int):
        self.name, self.cfg, self.accum = name, cfg, accum
        torch.manual_seed(0)
        self.model = build_model(cfg, 8192)
        use_sdpa(self.model)
        self.model.train()
        self.optimizer = make_optimizer(cfg)(self.model)
        loss = functools.partial(loss_fn, self.model, bf16=bf16)
        self.loss = torch.compile(loss) if compiled else loss
        self.times: list[float] = []
        self.tokens = cfg.batch_size * cfg.seq_len * accum

    def step(self) -> float:
        """Run one optimizer step (accum micro-batches); return its seconds."""
        t0 = time.perf_counter()
        micro = self.cfg.batch_size
        for _ in range(self.accum):
            x = torch.randint(0, 8192, (micro, self.cfg.seq_len))
            y = torch.randint(0, 8192, (micro, self.cfg.seq_len))
            (self.loss(x, y) / self.accum).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16, help="tokens/step = this x seq")
    parser.add_argument("--rounds", type=int, default=3, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-bf16", action="store_true", help="leave out the bf16 rows")
    parser.add_argument(
        "--skip-accumulation", action="store_true", help="leave out the accumulation row"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(layers=args.layers, d_model=args.d_model, heads=args.heads, seq_len=args.seq_len)

    def cfg(batch: int) -> TrainConfig:
        return TrainConfig(out="", batch_size=batch, **base)

    b = args.batch_size
    plan = [  # (name, config, bf16, torch.compile, accumulation)
        ("shipped: bf16 autocast, compiled", cfg(b), True, True, 1),
        ("fp32, eager", cfg(b), False, False, 1),
        ("fp32, compiled", cfg(b), False, True, 1),
        ("fp32, compiled, micro-batch / 4, 4 x accum.", cfg(b // 4), False, True, 4),
    ]
    if args.skip_bf16:
        plan = [p for p in plan if not p[2]]
    if args.skip_accumulation:
        plan = [p for p in plan if p[4] == 1]
    peak = peak_matmul_flops()
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}, bf16 instructions: "
          f"{bf16_is_fast()}, --precision auto -> {choose_precision('auto')}; "
          f"{args.threads} threads; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")  # fmt: skip
    variants = [Variant(*p) for p in plan]
    for v in variants:  # warm up (and compile) before timing
        t = v.step()
        print(f"  warm-up {v.name}: {t:.1f} s", file=sys.stderr, flush=True)
    for _ in range(args.rounds):
        for v in variants:
            v.times.append(v.step())
    per_token = flops_per_token(variants[0].model, args.seq_len)
    n_params = sum(p.numel() for p in variants[0].model.parameters())
    print(f"model {args.layers}x{args.d_model}, {n_params / 1e6:.1f}M params, "
          f"{per_token / 1e6:.1f} MFLOP/token, {args.rounds} timed steps each")  # fmt: skip
    head = ("variant", "s/step", "tok/s", "GFLOP/s", "MFU", "vs shipped")
    print(f"{head[0]:<40} {head[1]:>7} {head[2]:>8} {head[3]:>8} {head[4]:>6} {head[5]:>10}")
    first = None
    for v in variants:
        sec = statistics.median(v.times)
        rate = v.tokens / sec
        first = first or rate
        print(f"{v.name:<40} {sec:7.2f} {rate:8.0f} {rate * per_token / 1e9:8.1f} "
              f"{rate * per_token / peak:6.1%} {rate / first:9.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
