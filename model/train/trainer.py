"""Train a small GPT-J on the code corpus within a wall-clock budget, on CPU.

The schedule is driven by the fraction of the time budget used (`--minutes`), not by a step
count: lr rises linearly over the first `warmup` fraction of the budget, then follows a cosine
down to `min_lr_ratio * lr` at the end of the budget. The clock counts everything inside the
loop (steps, validation, checkpoints), so a run ends on time whatever the machine's speed, and
a resumed run picks up the elapsed time where it stopped. (`max_steps`, for tests, replaces
time with steps.) Matmuls run under bf16 autocast where the CPU has bf16 instructions, in fp32
elsewhere (`--precision`); attention uses PyTorch's SDPA kernel in
place of GPT-J's fp32 eager attention (a compute-only patch: the weights are unchanged).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import time
import types
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPTJConfig, GPTJForCausalLM

from jpilot.model.errors import ModelError
from jpilot.model.progress import Progress
from jpilot.model.train.config import MAX_PARAMS, TrainConfig
from jpilot.model.train.data import (
    IGNORE,
    Prepared,
    WindowSampler,
    prepare_data,
    token_bytes,
    validation_windows,
)
from jpilot.model.train.runctl import (
    StopRequest,
    choose_device,
    choose_precision,
    save_config,
    wait_while_paused,
)
from jpilot.model.train.state import has_run, load_run, save_run
from jpilot.model.train.tokenizer import special_ids
from jpilot.model.train.warmstart import (
    add_blocks,
    keep_history,
    model_from_bundle,
    with_context,
)


def build_model(cfg: TrainConfig, vocab: int) -> GPTJForCausalLM:
    """Create a randomly initialised GPT-J for `cfg` with a `vocab`-sized head."""
    if cfg.d_model % cfg.heads:
        raise ModelError(f"--d-model {cfg.d_model} must be a multiple of --heads {cfg.heads}")
    head_dim = cfg.d_model // cfg.heads
    rotary = cfg.rotary_dim or max(2, head_dim // 2)
    if rotary % 2 or rotary > head_dim:
        raise ModelError(f"rotary_dim {rotary} must be even and <= head_dim {head_dim}")
    config = GPTJConfig(
        vocab_size=vocab,
        n_positions=cfg.n_positions or cfg.seq_len,
        n_embd=cfg.d_model,
        n_layer=cfg.layers,
        n_head=cfg.heads,
        rotary_dim=rotary,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    torch.manual_seed(cfg.seed)
    model = GPTJForCausalLM(config)
    _check_size(model)
    return model


def _check_size(model: GPTJForCausalLM) -> None:
    """Raise ModelError if `model` is over the size cap of a shipped default."""
    n = sum(p.numel() for p in model.parameters())
    if n > MAX_PARAMS:
        raise ModelError(f"the model has {n / 1e6:.1f}M parameters, over the 60M cap; shrink it")


def _sdpa_attn(self, query, key, value, attention_mask=None, head_mask=None):
    """Causal SDPA in the value dtype; stands in for GPT-J's fp32 eager `_attn` in training."""
    dtype = value.dtype
    out = F.scaled_dot_product_attention(
        query.to(dtype), key.to(dtype), value, is_causal=True
    )  # (B, H, T, head_dim)
    return out, None


def use_sdpa(model: GPTJForCausalLM) -> None:
    """Swap each block's eager attention core for causal SDPA (training only, no padding)."""
    for block in model.transformer.h:
        attn: Any = block.attn
        attn._attn = types.MethodType(_sdpa_attn, attn)


def make_optimizer(cfg: TrainConfig):
    """Return a factory building AdamW with decay on matrices only."""

    def factory(model: torch.nn.Module) -> torch.optim.Optimizer:
        decay = [p for p in model.parameters() if p.dim() >= 2]
        other = [p for p in model.parameters() if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": other, "weight_decay": 0.0},
        ]
        # the fused CPU kernel made steps ~4% faster here
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=True)

    return factory


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """Return the learning rate at `progress` (0..1 of the budget): warmup then cosine."""
    if progress < cfg.warmup:
        return cfg.lr * max(progress / cfg.warmup, 0.01)
    t = min(1.0, (progress - cfg.warmup) / max(1e-9, 1 - cfg.warmup))
    low = cfg.lr * cfg.min_lr_ratio
    return low + (cfg.lr - low) * 0.5 * (1 + math.cos(math.pi * t))


def loss_fn(
    model: GPTJForCausalLM, inputs: torch.Tensor, labels: torch.Tensor, bf16: bool = True
) -> torch.Tensor:
    """Return the mean next-token cross entropy (labels already shifted; IGNORE skipped)."""
    device = model.lm_head.weight.device
    inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        hidden = model.transformer(input_ids=inputs, use_cache=False).last_hidden_state
        logits = model.lm_head(hidden)  # (B, T, V)
    return F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="mean"
    )


@torch.no_grad()
def evaluate(model, loss, windows: dict, tok_bytes: np.ndarray, batch_size: int) -> dict:
    """Return val loss (nats/token) on the fixed windows, plus bits/byte on the plain ones."""
    model.eval()
    result = {}
    for name, (inputs, labels) in windows.items():
        total, count = 0.0, 0
        for i in range(0, len(inputs), batch_size):
            x = torch.from_numpy(inputs[i : i + batch_size])
            y = torch.from_numpy(labels[i : i + batch_size])
            n = int((y != IGNORE).sum())
            total += float(loss(x, y)) * n
            count += n
        result[f"val_loss_{name}"] = total / max(1, count)
        if name == "plain":
            n_bytes = int(tok_bytes[labels[labels != IGNORE]].sum())
            result["val_bpb"] = total / math.log(2) / max(1, n_bytes)
    model.train()
    return result


def train(cfg: TrainConfig, log=print) -> dict:
    """Run (or resume) training per `cfg`; write checkpoint, log and summary; return it."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else out / "data"
    init = None
    if cfg.init_from and not has_run(out):
        init = model_from_bundle(Path(cfg.init_from))
        if cfg.add_layers:
            init = add_blocks(init, cfg.add_layers)
            _check_size(init)
        if cfg.seq_len > init.config.n_positions:  # train the bundle on longer windows
            init = with_context(init, cfg.seq_len)
        _sizes_from(init.config, cfg)
        keep_history(Path(cfg.init_from), out)
        log(f"starting from the weights of {cfg.init_from} ({cfg.layers}x{cfg.d_model})")
    given_tokenizer = Path(cfg.init_from) / "tokenizer.json" if cfg.init_from else None
    given_tokenizer = Path(cfg.tokenizer) if cfg.tokenizer else given_tokenizer
    device = choose_device(cfg.device)
    data: Prepared = prepare_data(
        data_dir, cfg.corpus, cfg.vocab_size, cfg.max_files, log=log,
        tokenizer_json=given_tokenizer, package_dirs=cfg.package_dirs,
        tests=cfg.with_tests, dedup_train=cfg.dedup_train,
    )  # fmt: skip
    tokenizer_json = data_dir / "tokenizer.json"
    vocab = data.tokenizer.get_vocab_size()
    vocab = (vocab + 63) // 64 * 64  # pad the head for fast matmuls
    make = make_optimizer(cfg)

    def factory(model: torch.nn.Module) -> torch.optim.Optimizer:
        return make(model.to(device))  # moves the parameters in place, then their states

    if has_run(out):
        model, optimizer, progress = load_run(out, factory)
        if cfg.init_from:
            _sizes_from(model.config, cfg)
        _check_same_model(model.config, cfg, vocab)
        log(f"resuming {out} at step {progress['step']} ({progress['elapsed'] / 60:.1f} min)")
    else:
        model = init if init is not None else build_model(cfg, vocab)
        _check_same_model(model.config, cfg, vocab)
        optimizer = factory(model)
        progress = {"step": 0, "elapsed": 0.0, "tokens": 0}
    use_sdpa(model)
    model.train()
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    precision = choose_precision(cfg.precision, device)
    loss_of = functools.partial(loss_fn, model, bf16=precision == "bf16")
    if cfg.compile:
        loss_of = torch.compile(loss_of)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M params, vocab {vocab}, {cfg.layers}x{cfg.d_model}, "
        f"{precision} on {device}")  # fmt: skip
    save_config(cfg)

    model.config.fim_order = cfg.fim_order  # saved in config.json; export copies it
    samplers = [
        WindowSampler(tokens, docs, data.tokenizer, cfg.seq_len, cfg.fim_rate, cfg.seed,
                      cfg.fim_order)
        for tokens, docs in ((data.train, data.train_docs), (data.val, data.val_docs))
    ]  # fmt: skip
    sampler, val_sampler = samplers
    windows = {
        "plain": validation_windows(val_sampler, cfg.val_windows, fim=False),
        "fim": validation_windows(val_sampler, cfg.val_windows, fim=True),
    }
    tok_bytes = np.append(token_bytes(data.tokenizer), np.zeros(vocab, np.int64))[:vocab]
    budget = cfg.minutes * 60.0

    def fraction(step: int, elapsed: float) -> float:
        return step / cfg.max_steps if cfg.max_steps else elapsed / budget

    log_path = out / "train_log.jsonl"
    start = time.monotonic() - progress["elapsed"]
    last_ckpt = last_eval = progress["elapsed"]
    eval_every = budget / max(1, cfg.evals)
    total = cfg.max_steps or budget
    bar = Progress(total, " steps" if cfg.max_steps else "s", fraction(progress["step"], 0) * total)
    losses: list[float] = []
    step_times: list[float] = []
    record: dict = {}
    with StopRequest() as stop:
        while not stop.requested and fraction(progress["step"], time.monotonic() - start) < 1.0:
            start += wait_while_paused(out, log)  # time paused is not training time
            step = progress["step"]
            elapsed = time.monotonic() - start
            lr = lr_at(cfg, fraction(step, elapsed))
            for group in optimizer.param_groups:
                group["lr"] = lr
            t_step = time.monotonic()
            x, y = (torch.from_numpy(a) for a in sampler.batch(step, cfg.batch_size))
            loss = loss_of(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            step_times.append(time.monotonic() - t_step)
            progress["step"] = step + 1
            progress["tokens"] += int((y != IGNORE).sum())
            progress["elapsed"] = elapsed = time.monotonic() - start
            rate = progress["tokens"] / max(1e-9, elapsed)
            text = f"loss {losses[-1]:.3f} {rate:,.0f} tok/s"
            bar.update(fraction(step + 1, elapsed) * total, text)
            done = fraction(step + 1, elapsed) >= 1.0
            if done or elapsed - last_eval >= eval_every or step == 0:
                last_eval = elapsed
                t_eval = time.monotonic()
                record = {
                    "step": step + 1, "elapsed": round(elapsed, 1), "tokens": progress["tokens"],
                    "lr": lr, "train_loss": float(np.mean(losses[-20:])),
                    **evaluate(model, loss_of, windows, tok_bytes, cfg.batch_size),
                }  # fmt: skip
                record["eval_s"] = round(time.monotonic() - t_eval, 2)
                record["step_s"] = round(float(np.median(step_times[-20:])), 3)
                with log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                log(_describe(record))
            if done or elapsed - last_ckpt >= cfg.checkpoint_minutes * 60:
                last_ckpt = elapsed
                save_run(out, model, optimizer, tokenizer_json, progress)
    bar.close()
    if stop.requested or not (out / "checkpoint" / "model.safetensors").is_file():
        save_run(out, model, optimizer, tokenizer_json, progress)
    summary = _summary(cfg, out, data, model, progress, record, log_path)
    summary["stopped"] = stop.requested
    summary["precision"] = precision
    (out / "training_summary.json").write_text(json.dumps(summary, indent=1))
    log(f"wrote {out / 'checkpoint'} and {out / 'training_summary.json'}")
    if stop.requested:
        log(f"stopped at step {progress['step']}; go on with: jpilot model train --resume {out}")
    elif cfg.export:
        _export(out, log)
    return summary


def _describe(record: dict) -> str:
    """Return a one-line human summary of a log record."""
    return (
        f"step {record['step']} {record['elapsed'] / 60:.1f} min {record['tokens']:,} tok "
        f"lr {record['lr']:.2e} train {record['train_loss']:.3f} "
        f"val {record['val_loss_plain']:.3f} ({record['val_bpb']:.3f} bpb) "
        f"fim {record['val_loss_fim']:.3f} "
        f"({record['step_s']:.2f} s/step, eval {record['eval_s']}s)"
    )


def _sizes_from(config: GPTJConfig, cfg: TrainConfig) -> None:
    """Take the model sizes of `--init-from`'s bundle into `cfg`."""
    cfg.layers, cfg.d_model, cfg.heads = config.n_layer, config.n_embd, config.n_head
    cfg.rotary_dim, cfg.n_positions = config.rotary_dim, config.n_positions
    cfg.vocab_size = config.vocab_size


def _check_same_model(config: GPTJConfig, cfg: TrainConfig, vocab: int) -> None:
    """Raise ModelError if a resumed checkpoint's shape differs from the options given."""
    saved = (config.n_layer, config.n_embd, config.n_head, config.vocab_size)
    wanted = (cfg.layers, cfg.d_model, cfg.heads, vocab)
    if saved != wanted:
        raise ModelError(
            f"{cfg.out} holds a run with layers/d_model/heads/vocab {saved}, not {wanted}; "
            "rerun with the same options to resume, or pick another --out"
        )
    order = getattr(config, "fim_order", None)  # None: a fresh model or a bundle's weights
    if order is not None and order != cfg.fim_order:
        raise ModelError(
            f"{cfg.out} holds a run trained with --fim-order {order}; resume it with the same "
            "order, or start another --out with --init-from"
        )


def _summary(cfg, out: Path, data: Prepared, model, progress: dict, last: dict, log_path: Path):
    """Collect the facts a model card needs."""
    curve = [json.loads(x) for x in log_path.read_text().splitlines()] if log_path.exists() else []
    final = last or (curve[-1] if curve else {})
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "architecture": model.config.to_diff_dict(),
        "steps": progress["step"],
        "tokens_seen": progress["tokens"],
        "wall_time_s": round(progress["elapsed"], 1),
        "final_train_loss": final.get("train_loss"),
        "final_val_loss": final.get("val_loss_plain"),
        "final_val_bpb": final.get("val_bpb"),
        "final_val_loss_fim": final.get("val_loss_fim"),
        "special_tokens": special_ids(data.tokenizer),
        "tokenizer": data.meta["tokenizer"],
        "corpus": data.meta["corpus"],
        "train_tokens_available": data.meta["train_tokens"],
        "config": asdict(cfg),
        "checkpoint": str(out / "checkpoint"),
    }  # fmt: skip


def _export(out: Path, log) -> None:
    """Export OUT/checkpoint to OUT/bundle if jpilot.model.export provides export_bundle."""
    try:
        from jpilot.model.export import export_bundle
    except ImportError as exc:
        log(f"skipping bundle export ({exc}); run `jpilot model export {out / 'checkpoint'}` later")
        return
    kwargs = {"force": True} if "force" in inspect.signature(export_bundle).parameters else {}
    try:
        path = export_bundle(
            out / "checkpoint", out / "bundle", dtype="fp32", quantize=None, **kwargs
        )
        log(f"exported bundle to {path}")
    except Exception as exc:  # noqa: BLE001 - the checkpoint is already safe; report and go on
        log(f"bundle export failed ({type(exc).__name__}: {exc}); the checkpoint is intact")
