"""Run a bundle's bug detector on a whole file: where the bug likely is, and its repair.

A bundle may carry `detector.onnx` (`jpilot model train-detector`), recorded in its
manifest's `detector` entry with its sha256 and the threshold calibrated on clean files.
`Detector.find` scores every rewrite site of a file (rewrites.py) with the network of
head.py fed by the GPT-J's features (features.py), then, for the likeliest sites only,
asks the language model how much likelier the code after each candidate repair reads
(`Engine.score_variants`, the what-if of the slip hints) and lets the repair head choose.
The work is chunked: the LM runs window by window, checking the cancel token before
each, and the what-if scores at most `REPAIR_SITES` sites.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jpilot.model.bundle import Bundle, sha256_file
from jpilot.model.decode import CancelToken
from jpilot.model.detector.features import LOG2, FeatureModel, FileFeatures
from jpilot.model.detector.head import candidate_inputs, token_inputs
from jpilot.model.detector.rewrites import Site, sites
from jpilot.model.errors import ModelError

DETECTOR_FILE = "detector.onnx"
WHATIF_TOKENS = 48  # most tokens of code after a site that judge a repair (as slips do)
REPAIR_SITES = 8  # sites whose repairs are scored per file, likeliest first


@dataclass
class Suspect:
    """A likely bug: where, how likely, and what the detector would write instead."""

    start: int  # character offset of the span to replace
    end: int
    line: int  # 0-based
    probability: float  # the detector's probability that this is a bug
    was: str  # the text as written
    new: str  # the repair
    kind: str  # the rewrite kind of the repair


def token_sites(feats: FileFeatures, found: list[Site]) -> dict[int, list[Site]]:
    """Map each token index to the sites that start inside it."""
    out: dict[int, list[Site]] = {}
    for site in found:
        out.setdefault(feats.token_at(site.start), []).append(site)
    return out


def merged(by_token: dict[int, list[Site]]) -> dict[int, Site]:
    """Return one Site per token holding all its sites' candidates (for the token inputs)."""
    return {i: Site(s[0].start, s[0].end, s[0].original, tuple(c for x in s for c in x.candidates))
            for i, s in by_token.items()}  # fmt: skip


def whatif_gains(
    engine: Any, text: str, feats: FileFeatures, options: list[tuple[int, int, str]],
    cancel: CancelToken | None = None,
) -> list[float]:  # fmt: skip
    """Return, per (start, end, new), how many bits likelier the code from the site on reads
    with `new` than as written (the rest of the line and the next line, at most
    WHATIF_TOKENS tokens)."""
    if not options:
        return []
    tok = engine.tokenizer
    begins = [a for a, _b in feats.offsets]
    cuts = []
    for start, end, new in options:
        cut = max(bisect_right(begins, start) - 1, 1)
        s = begins[cut]
        e = text.find("\n", text.find("\n", end) + 1)
        e = len(text) if e < 0 or text.find("\n", end) < 0 else e
        written = tok.encode(text[s:e])[:WHATIF_TOKENS]
        variant = tok.encode(text[s:start] + new + text[end:e])[:WHATIF_TOKENS]
        cuts.append((cut, [written or [0], variant or [0]]))
    logps = engine.score_variants(feats.ids, cuts, cancel)
    return [(lp[1] - lp[0]) / LOG2 for lp in logps]


class Detector:
    """A bundle's detector.onnx with the feature model it reads."""

    def __init__(self, bundle: Bundle, threads: int = 0) -> None:
        import onnxruntime as ort

        entry = bundle.manifest.detector
        path = bundle.path / str(entry.get("file", DETECTOR_FILE))
        if not path.is_file() or Path(entry.get("file", "")).name != entry.get("file"):
            raise ModelError(f"{bundle.path}: its detector file is missing; run "
                             "`jpilot model train-detector` on the bundle again")  # fmt: skip
        if sha256_file(path) != entry.get("sha256"):
            raise ModelError(f"{path} does not match the sha256 in the manifest; run "
                             "`jpilot model train-detector` on the bundle again")  # fmt: skip
        self.threshold = float(entry.get("threshold", 0.5))
        self.features = FeatureModel(bundle, threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def site_scores(
        self, text: str, cancel: CancelToken | None = None
    ) -> tuple[FileFeatures, dict[int, list[Site]], np.ndarray]:
        """Return the features, the sites per token and each site token's bug probability."""
        found = sites(text)
        feats = self.features.features(text, cancel)
        by_token = token_sites(feats, found)
        if not by_token:
            return feats, by_token, np.zeros(0)
        x = token_inputs(feats.hidden, feats.surprisal, merged(by_token))[None]
        empty = np.zeros((0, self.session.get_inputs()[1].shape[1]), dtype=np.float32)
        logits, nobug, _ = self.session.run(None, {"tokens": x, "candidates": empty})
        return feats, by_token, 0.5 * (1 + np.tanh((logits - nobug[0]) / 2))  # sigmoid

    def repair(
        self, text: str, feats: FileFeatures, at: list[Site], cancel: CancelToken | None,
        engine: Any,
    ) -> tuple[Site, str, str]:  # fmt: skip
        """Return the (site, new text, kind) the repair head likes best among `at`'s."""
        options = [(s, new, kind) for s in at for new, kind in s.candidates]
        gains = whatif_gains(engine, text, feats, [(s.start, s.end, n) for s, n, _k in options],
                             cancel)  # fmt: skip
        flat = Site(at[0].start, at[0].end, at[0].original, tuple((n, k) for _s, n, k in options))
        x = candidate_inputs(flat, gains, text)
        dummy = np.zeros((1, 1, self.session.get_inputs()[0].shape[2]), dtype=np.float32)
        _, _, scores = self.session.run(None, {"tokens": dummy, "candidates": x})
        site, new, kind = options[int(np.argmax(scores))]
        return site, new, kind

    def find(
        self, text: str, engine: Any, cancel: CancelToken | None = None, max_hints: int = 5,
        threshold: float | None = None,
    ) -> list[Suspect]:  # fmt: skip
        """Return up to `max_hints` likely bugs, likeliest first, at or above the threshold
        (the bundle's calibrated one if None; 0 ranks every site, for evaluation)."""
        scored = self.site_scores(text, cancel)
        return self.publish(text, engine, scored, cancel, max_hints, threshold)

    def publish(
        self, text: str, engine: Any, scored: tuple[FileFeatures, dict[int, list[Site]], Any],
        cancel: CancelToken | None = None, max_hints: int = 5, threshold: float | None = None,
    ) -> list[Suspect]:  # fmt: skip
        """Return the hints `find` returns, from `site_scores`' result."""
        feats, by_token, probs = scored
        bound = self.threshold if threshold is None else threshold
        tokens = sorted(by_token, key=lambda i: -probs[i])
        out = []
        for i in tokens[: min(max_hints, REPAIR_SITES)]:
            if probs[i] < bound:
                break
            site, new, kind = self.repair(text, feats, by_token[i], cancel, engine)
            line = text.count("\n", 0, site.start)
            out.append(Suspect(site.start, site.end, line, float(probs[i]), site.original, new,
                               kind))  # fmt: skip
        return out
