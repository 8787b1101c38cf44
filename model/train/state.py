"""Save and restore a training run: HF checkpoint folder plus optimizer/progress state.

    OUT/checkpoint/   config.json, model.safetensors, tokenizer.json (a valid HF GPT-J folder)
    OUT/state/        optimizer.safetensors (AdamW moments, torch RNG), progress.json
Each folder is written beside the old one and swapped in, so a crash mid-write never leaves a
half checkpoint. Nothing is pickled: tensors go to safetensors, the rest to JSON.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import GPTJForCausalLM

from jpilot.model.errors import ModelError


def save_run(
    out: Path,
    model: GPTJForCausalLM,
    optimizer: torch.optim.Optimizer,
    tokenizer_json: Path,
    progress: dict,
) -> None:
    """Write OUT/checkpoint and OUT/state atomically (write beside, then swap)."""
    ckpt_tmp = out / "checkpoint.tmp"
    shutil.rmtree(ckpt_tmp, ignore_errors=True)
    model.save_pretrained(ckpt_tmp, safe_serialization=True)
    shutil.copyfile(tokenizer_json, ckpt_tmp / "tokenizer.json")
    state_tmp = out / "state.tmp"
    shutil.rmtree(state_tmp, ignore_errors=True)
    state_tmp.mkdir(parents=True)
    tensors, groups = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(state_tmp / "optimizer.safetensors"))
    (state_tmp / "progress.json").write_text(json.dumps({**progress, "param_groups": groups}))
    for tmp, final in ((ckpt_tmp, out / "checkpoint"), (state_tmp, out / "state")):
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)


def load_run(out: Path, optimizer_factory) -> tuple[GPTJForCausalLM, torch.optim.Optimizer, dict]:
    """Load the model, a rebuilt optimizer with its saved state, and the progress dict."""
    ckpt, state = out / "checkpoint", out / "state"
    if not (ckpt / "model.safetensors").is_file() or not (state / "progress.json").is_file():
        raise ModelError(
            f"{out} holds an incomplete run (no checkpoint/ or state/); "
            "delete the folder or pick another --out"
        )
    model = GPTJForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32)
    optimizer = optimizer_factory(model)
    progress = json.loads((state / "progress.json").read_text())
    tensors = load_file(str(state / "optimizer.safetensors"))
    _restore_optimizer(optimizer, tensors, progress.pop("param_groups"))
    torch.set_rng_state(tensors["rng.torch"])
    return model, optimizer, progress


def has_run(out: Path) -> bool:
    """Return whether OUT holds a saved run to resume."""
    return (out / "state" / "progress.json").is_file()


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    """Flatten an optimizer state dict into named tensors plus JSON-able param groups."""
    sd = optimizer.state_dict()
    tensors = {}
    for idx, slots in sd["state"].items():
        for name, value in slots.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, groups: list) -> None:
    """Load flattened tensors and param groups back into `optimizer`."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
