"""Pick the next token from logits: greedy, or temperature with nucleus (top-p) sampling."""

from __future__ import annotations

import numpy as np


def sample(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Return the next token id from a [V] row of logits."""
    if temperature <= 0.0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.searchsorted(np.cumsum(probs[order]), top_p) + 1  # smallest set >= top_p
        kept = order[:keep]
        return int(rng.choice(kept, p=probs[kept] / probs[kept].sum()))
    return int(rng.choice(len(probs), p=probs))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Return log-probabilities along the last axis."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
