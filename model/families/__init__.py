"""The model families jpilot serves, one small module each, and what they share.

A family module (gptj.py, gpt2.py, gpt_neo.py, gpt_bigcode.py) reads its config.json
into `Dims`, refuses options jpilot cannot serve (`check`), and describes one block of
the static-KV graph (`block`) with the shared builder in model/static_kv.py. The
checkpoint's `model_type` picks the module: `family(config)`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from jpilot.model.errors import ModelError

# config.json model_type -> family module; CodeGen is converted to GPT-J first (convert.py)
FAMILIES = ("gptj", "gpt_neo", "gpt2", "gpt_bigcode")
# activation_function values the graph computes: tanh approximations (FastGelu) and erf
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
GELUS = (*TANH_GELUS, "gelu")
# position schemes no family here has; a config that asks for one is refused by name
OTHER_POSITIONS = ("alibi", "use_alibi", "rope_scaling", "position_embedding_type")


@dataclass(frozen=True)
class Dims:
    """What the graph builder needs to know about a checkpoint, whatever its family."""

    family: str  # config.json model_type
    n_layer: int  # transformer blocks
    n_head: int  # query heads
    kv_heads: int  # key/value heads: n_head, or 1 for multi-query attention
    n_embd: int  # residual width
    n_inner: int  # MLP width
    rotary_dim: int  # rotary dims per head; 0 = learned position embeddings (wpe)
    n_positions: int  # longest sequence (rows of the rotary tables or of wpe)
    vocab_size: int
    layer_norm_epsilon: float
    activation: str  # one of GELUS
    scale: float  # attention-score scale (GPT-Neo: 1, others 1/sqrt(head_dim))
    windows: tuple[int, ...] = ()  # per layer: keys a query sees (0 = all), GPT-Neo's local
    scale_by_layer: bool = False  # layer i's scale is divided by i + 1 (CodeParrot's GPT-2)
    tie_word_embeddings: bool = True  # lm_head reuses wte when the checkpoint has none

    @property
    def head_dim(self) -> int:
        """Width of one head."""
        return self.n_embd // self.n_head

    @property
    def parameters(self) -> int:
        """Roughly how many weights: blocks plus embeddings (picks pull's default format)."""
        d, kv = self.n_embd, self.kv_heads * self.head_dim
        block = d * d + 2 * d * kv + d * d + 2 * d * self.n_inner
        return self.n_layer * block + 2 * self.vocab_size * d


def family(config: dict[str, Any]) -> ModuleType:
    """Return the family module of a config.json dict; ModelError for any other model_type."""
    kind = config.get("model_type")
    if kind not in FAMILIES:
        raise ModelError(
            f"a {kind!r} model; jpilot serves {', '.join(FAMILIES)} (and codegen, converted "
            "to gptj)"
        )
    return importlib.import_module(f"jpilot.model.families.{kind}")


def read_dims(config: dict[str, Any]) -> Dims:
    """Check a config.json dict and return its Dims; ModelError naming what is wrong."""
    module = family(config)
    check_common(config)
    module.check(config)
    try:
        return module.dims(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"config.json is not a complete {config['model_type']} config "
                         f"(bad or missing {exc})") from exc  # fmt: skip


def refuse(config: dict[str, Any], option: str, why: str) -> ModelError:
    """The one-line error for a config option jpilot cannot serve."""
    return ModelError(
        f"{config.get('model_type')} config sets {option}={config.get(option)!r}, which "
        f"jpilot cannot serve ({why})"
    )


def check_common(config: dict[str, Any]) -> None:
    """Refuse the options every family shares: activation, cross-attention, positions."""
    if config.get("activation_function", "gelu_new") not in GELUS:
        raise refuse(config, "activation_function", f"it computes {', '.join(GELUS)}")
    if config.get("add_cross_attention"):
        raise refuse(config, "add_cross_attention", "it serves decoder-only models")
    for option in OTHER_POSITIONS:
        value = config.get(option)
        if value and value not in ("absolute", "learned"):
            raise refuse(config, option, "it has no such position scheme")


def describe(manifest: Any) -> str:
    """Name a bundle's family and shape in words (model card, `jpilot model info`)."""
    m = manifest
    title = family({"model_type": m.architecture}).TITLE
    rotary = f", rotary {m.rotary_dim}" if m.rotary_dim else ", learned positions"
    return f"{title}, {m.n_layer} layers, {m.n_head} heads x {m.head_dim}{rotary}"


def windows_of(n_layer: int, window: int, local: list[bool]) -> tuple[int, ...]:
    """Return per-layer windows: `window` for local layers, 0 for global ones."""
    return tuple(window if is_local else 0 for is_local in local[:n_layer])
