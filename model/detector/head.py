"""The detector's inputs, and (with torch, for training only) its network and ONNX export.

Token inputs [T, F]: the GPT-J's hidden state, its surprisal (features.py), a multi-hot of
the rewrite kinds possible at the token (rewrites.KINDS) and a 1 where a rewrite site
starts. Candidate inputs [C, K] for the repair: how many bits likelier the file's next
tokens are with the candidate than as written (the model's what-if, `Engine.score_variants`),
that gap's rank among the site's candidates, how often the candidate's text occurs in the
file, and the candidate's kind.

The network (`DetectorNet`): a linear projection, then dilated 1-D convolutions over the
tokens in both directions (the GPT-J's states only look left; the convolutions let a site
read about 30 tokens after it), then a score per token. Non-sites are masked out. A
learned "no bug" logit is trained against the file's sites with one softmax (BugLab's
NoBug), and a hint's probability is the sigmoid of its site's logit minus that one. The
repair is a linear score per candidate, softmaxed over the site's candidates. One ONNX file
(`detector.onnx`) holds both; the runtime needs only numpy and onnxruntime.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from jpilot.model.detector.rewrites import KINDS, Site

WIDTH = 64  # channels of the convolutions
DILATIONS = (1, 2, 4, 8)
DROPOUT = 0.3  # a few thousand examples: without it the head overfits after one epoch
N_CAND = 3 + len(KINDS)  # what-if bits, rank, log count, kind one-hot
MASKED = -1e4  # logit of a token that is not a rewrite site


def token_inputs(hidden: np.ndarray, surprisal: np.ndarray, sites: dict[int, Site]) -> np.ndarray:
    """Return the [T, F] token inputs; `sites` maps a token index to the site it starts."""
    t = len(hidden)
    extra = np.zeros((t, len(KINDS) + 1), dtype=np.float32)
    for i, site in sites.items():
        extra[i, -1] = 1.0
        for _new, kind in site.candidates:
            extra[i, KINDS.index(kind)] = 1.0
    return np.concatenate([hidden, surprisal / 10.0, extra], axis=1).astype(np.float32)


def candidate_inputs(site: Site, gains_bits: list[float], text: str) -> np.ndarray:
    """Return the [C, N_CAND] repair inputs of a site's candidates (see the module docstring)."""
    order = np.argsort(-np.asarray(gains_bits), kind="stable")
    rank = np.empty(len(order))
    rank[order] = np.arange(len(order))
    counts = Counter(text.split())
    rows = []
    for (new, kind), gain, r in zip(site.candidates, gains_bits, rank, strict=True):
        row = np.zeros(N_CAND, dtype=np.float32)
        row[0] = np.clip(gain, -40, 40) / 10.0
        row[1] = min(r, 10) / 10.0
        row[2] = np.log1p(counts.get(new, 0) + text.count(new) / 4) / 5.0
        row[3 + KINDS.index(kind)] = 1.0
        rows.append(row)
    return np.stack(rows) if rows else np.zeros((0, N_CAND), dtype=np.float32)


def build_net(features: int):
    """Return a fresh DetectorNet for `features` token inputs (needs torch)."""
    import torch
    from torch import nn

    class DetectorNet(nn.Module):
        """Token site scores, a no-bug logit, and candidate repair scores (see module doc)."""

        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(features, WIDTH)
            self.convs = nn.ModuleList(
                nn.Conv1d(WIDTH, WIDTH, 5, padding=2 * d, dilation=d) for d in DILATIONS
            )
            self.drop = nn.Dropout(DROPOUT)
            self.out = nn.Linear(WIDTH, 1)
            self.nobug = nn.Parameter(torch.zeros(1))
            self.repair = nn.Linear(N_CAND, 1)

        def forward(self, tokens, candidates):  # [1, T, F], [C, N_CAND]
            x = self.drop(torch.nn.functional.gelu(self.proj(self.drop(tokens))))
            x = x.transpose(1, 2)  # [1, W, T]
            for conv in self.convs:
                x = x + self.drop(torch.nn.functional.gelu(conv(x)))
            site = self.out(x.transpose(1, 2))[0, :, 0]  # [T]
            mask = tokens[0, :, -1]
            site = site * mask + (1 - mask) * MASKED
            return site, self.nobug, self.repair(candidates)[:, 0]  # [T], [1], [C]

    return DetectorNet()


def export_onnx(net, features: int, path: str) -> None:
    """Write `net` as ONNX with dynamic token and candidate counts."""
    import torch

    net.eval()
    tokens = torch.zeros(1, 40, features)
    tokens[0, ::3, -1] = 1
    candidates = torch.zeros(4, N_CAND)
    torch.onnx.export(
        net, (tokens, candidates), path, input_names=["tokens", "candidates"],
        output_names=["site_logits", "nobug", "repair_logits"],
        dynamic_axes={"tokens": {1: "T"}, "candidates": {0: "C"}, "site_logits": {0: "T"},
                      "repair_logits": {0: "C"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
