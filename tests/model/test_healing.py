"""Token healing: the dropped bytes are regenerated first, and are not in the result text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jpilot.model.engine import Engine, GenerationConfig
from jpilot.model.healing import Healer, byte_decoder


@pytest.fixture(scope="module")
def engine(tiny_bundle: Path) -> Engine:
    return Engine(tiny_bundle)


def test_byte_decoder_covers_every_byte() -> None:
    assert sorted(byte_decoder().values()) == list(range(256))
    assert byte_decoder()["Ġ"] == ord(" ") and byte_decoder()["Ċ"] == ord("\n")


def test_token_bytes_match_decode(engine: Engine) -> None:
    healer = engine.healer
    for i, piece in enumerate(healer.token_bytes):
        if piece is not None and all(b < 128 for b in piece):
            assert piece.decode() == engine.tokenizer.decode([i])
    assert healer.token_bytes[engine.tokenizer.eos_id] is None  # specials never heal


def test_allowed_matches_brute_force(engine: Engine) -> None:
    healer: Healer = engine.healer
    for remaining in (b"de", b"    ", b"self", b"x", b"\n"):
        brute = {
            i
            for i, b in enumerate(healer.token_bytes)
            if b and (b.startswith(remaining) or remaining.startswith(b))
        }
        assert set(healer.allowed(remaining).tolist()) == brute


def test_split_drops_the_last_text_token(engine: Engine) -> None:
    ids = engine.tokenizer.encode("def function_na")
    kept, dropped = engine.healer.split(ids)
    assert kept == ids[:-1]
    assert dropped == engine.tokenizer.decode(ids[-1:]).encode()
    assert engine.healer.split(ids[:1]) == (ids[:1], b"")


def test_generation_regenerates_the_healed_bytes(engine: Engine) -> None:
    ids = engine.tokenizer.encode("def function_na")
    kept, dropped = engine.healer.split(ids)
    result = engine.generate(kept, GenerationConfig(max_new_tokens=12, heal=dropped))
    full = engine.tokenizer.decode(result.tokens)
    assert full.startswith(dropped.decode())
    assert result.text == full[len(dropped.decode()) :]
    # the first token was constrained to fit the dropped bytes
    first = engine.healer.token_bytes[result.tokens[0]]
    assert first is not None and (first.startswith(dropped) or dropped.startswith(first))
    np.testing.assert_equal(len(result.tokens), 12)


def test_infill_prompt_budgets_prefix_and_suffix(engine: Engine) -> None:
    tok = engine.tokenizer
    prefix, suffix = "def f(x):\n" * 30, "    return x\n" * 30
    ids = tok.infill_prompt(prefix, suffix, 64)
    assert len(ids) <= 64 and tok.fim is not None
    assert ids[0] == tok.fim.prefix and ids[-1] == tok.fim.middle
    cut = ids.index(tok.fim.suffix)
    assert ids[1:cut] == tok.encode(prefix)[-(cut - 1) :]  # the end of the prefix
    assert ids[cut + 1 : -1] == tok.encode(suffix)[:16]  # a quarter: the start of the suffix
