"""A bug detector trained for seconds on a fixture, installed into a copy of a tiny bundle.

The fixture is the same small loop written many times, with comparison bugs injected by
the real rewrites; the tiny GPT-J is random, so what the head learns is mostly which
token sits at a site (the fixture always writes `and`), which is enough to rank an obvious
injected `or` first. Used by tests/model/test_detector.py and tests/e2e/test_lsp_detector.py.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

FUNCTION = """def total_{k}(items):
    i = 0
    total = 0
    while i < len(items) and items[i] is not None:
        total = total + items[i]
        i = i + 1
    return total


"""
CLEAN = "".join(FUNCTION.format(k=k) for k in range(4))
BUGGY = CLEAN.replace("len(items) and", "len(items) or", 1)  # in total_0
BUG_LINE = 3
KINDS = ("boolean", "comparison")


def install_tiny_detector(bundle: Path, dest: Path, examples: int = 48, epochs: int = 6) -> Path:
    """Copy `bundle` to `dest` and train and install a detector into the copy."""
    from jpilot.model.bundle import load_bundle
    from jpilot.model.detector.features import FeatureModel
    from jpilot.model.detector.train import generate, install, train
    from jpilot.model.engine import Engine, EngineConfig

    shutil.copytree(bundle, dest)
    loaded = load_bundle(dest)
    fm = FeatureModel(loaded, threads=1)
    engine = Engine(loaded, EngineConfig(threads=1))
    texts = ["".join(FUNCTION.format(k=k + 10 * n) for k in range(3)) for n in range(8)]
    data = generate(fm, engine, texts, 120, random.Random(0), KINDS, limit=examples)
    net = train(data, epochs, seed=0, log=lambda _m: None)
    install(dest, net, data[0]["x"].shape[1], 0.5, KINDS, {})
    engine.close()
    return dest
