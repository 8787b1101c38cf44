"""The engine against PyTorch on a tiny random GPT-J: logits, cache, reuse, stops, cancel.

Every test runs on both graph kinds: optimum's export, whose KV cache grows by a Concat
("concat"), and the GroupQueryAttention graph with in-place KV buffers ("static").
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jpilot.model.engine import Engine, EngineConfig, GenerationConfig

PROMPT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n"


@pytest.fixture(scope="module", params=["concat", "static"])
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def checkpoint(kind: str, tiny_checkpoint: Path, tiny_checkpoint_gqa: Path) -> Path:
    return tiny_checkpoint if kind == "concat" else tiny_checkpoint_gqa


@pytest.fixture(scope="module")
def bundle(kind: str, tiny_bundle: Path, tiny_bundle_static: Path) -> Path:
    return tiny_bundle if kind == "concat" else tiny_bundle_static


@pytest.fixture(scope="module")
def bundle_int8(kind: str, tiny_bundle_int8: Path, tiny_bundle_static_int8: Path) -> Path:
    return tiny_bundle_int8 if kind == "concat" else tiny_bundle_static_int8


@pytest.fixture(scope="module")
def engine(bundle: Path, kind: str) -> Engine:
    engine = Engine(bundle)
    assert engine.static_kv == (kind == "static")
    return engine


@pytest.fixture(scope="module")
def torch_model(checkpoint: Path):
    from transformers import GPTJForCausalLM

    return GPTJForCausalLM.from_pretrained(checkpoint).eval()


def greedy_without_cache(engine: Engine, prompt: list[int], n: int) -> list[int]:
    """Greedy decode by re-running the whole sequence each step, no KV cache at all."""
    seq = list(prompt)
    for _ in range(n):
        empty = engine._empty_kv()
        logits, _ = engine._forward(seq, empty, 0)
        seq.append(int(np.argmax(logits[-1])))
    return seq[len(prompt) :]


def test_onnx_logits_match_pytorch(engine: Engine, torch_model) -> None:
    import torch

    ids = engine.tokenizer.encode(PROMPT)
    with torch.no_grad():
        expected = torch_model(torch.tensor([ids])).logits[0].numpy()
    empty = engine._empty_kv()
    logits, _ = engine._forward(ids, empty, 0, all_logits=True)
    assert logits.shape == expected.shape
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_incremental_logits_match_pytorch(engine: Engine, torch_model) -> None:
    import torch

    ids = engine.tokenizer.encode(PROMPT)
    with torch.no_grad():
        expected = torch_model(torch.tensor([ids])).logits[0].numpy()
    empty = engine._empty_kv()
    _, past = engine._forward(ids[:-3], empty, 0)
    logits, _ = engine._forward(ids[-3:], past, len(ids) - 3, all_logits=True)
    np.testing.assert_allclose(logits, expected[-3:], atol=1e-4, rtol=0)


def test_cache_and_prefix_reuse_give_identical_tokens(engine: Engine) -> None:
    engine.cache.clear()
    prompt = engine.tokenizer.encode(PROMPT)
    reference = greedy_without_cache(engine, prompt, 24)
    cold = engine.generate(prompt, GenerationConfig(max_new_tokens=24))
    assert cold.reused_tokens == 0
    assert cold.tokens == reference
    engine.generate(engine.tokenizer.encode("import os\nprint(os.sep)\n"))  # unrelated
    warm = engine.generate(prompt, GenerationConfig(max_new_tokens=24))
    assert warm.reused_tokens == len(prompt) - 1
    assert warm.tokens == reference
    # A prompt that diverges inside a cached sequence reuses a sliced cache.
    edited = prompt[:-2] + engine.tokenizer.encode("x")
    sliced = engine.generate(edited, GenerationConfig(max_new_tokens=12))
    assert sliced.reused_tokens == len(prompt) - 2
    assert sliced.tokens == greedy_without_cache(engine, edited, 12)
    # Continuing with the generated tokens reuses the prompt and all but the last of them.
    # A static cache was written over by the edited prompt from where it diverged.
    follow = engine.generate(prompt + reference[:10], GenerationConfig(max_new_tokens=14))
    assert follow.reused_tokens == len(prompt) + (9 if not engine.static_kv else -2)
    assert follow.tokens == reference[10:24]
    again = engine.generate(prompt + reference[:10], GenerationConfig(max_new_tokens=14))
    assert again.reused_tokens == len(prompt) + 9 and again.tokens == reference[10:24]


def test_chunked_prefill_matches(bundle: Path, engine: Engine) -> None:
    chunked = Engine(bundle, EngineConfig(prefill_chunk=5))
    prompt = engine.tokenizer.encode(PROMPT * 2)
    expected = engine.generate(prompt, GenerationConfig(max_new_tokens=10)).tokens
    assert chunked.generate(prompt, GenerationConfig(max_new_tokens=10)).tokens == expected


def test_cancel_stops_within_one_step(engine: Engine) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def on_token(token: int, _text: str) -> None:
        seen.append(token)
        if len(seen) == 3:
            cancel.set()

    calls = 0
    original = engine._forward

    def counting_forward(*args, **kwargs):
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    engine._forward = counting_forward  # type: ignore[method-assign]
    try:
        result = engine.generate(
            engine.tokenizer.encode(PROMPT), GenerationConfig(max_new_tokens=50), cancel, on_token
        )
    finally:
        del engine._forward
    assert result.finish_reason == "cancelled"
    assert len(result.tokens) == 3
    # one prefill forward, then one forward per token fed before the cancel was seen
    assert calls == 1 + 3


def test_cancel_before_start_computes_nothing(engine: Engine) -> None:
    engine.cache.clear()
    cancel = threading.Event()
    cancel.set()
    result = engine.generate(engine.tokenizer.encode(PROMPT), cancel=cancel)
    assert (result.finish_reason, result.tokens) == ("cancelled", [])


def test_deadline_is_honoured(engine: Engine) -> None:
    prompt = engine.tokenizer.encode(PROMPT)
    past = engine.generate(prompt, GenerationConfig(deadline=time.monotonic() - 1))
    assert (past.finish_reason, past.tokens) == ("deadline", [])
    cfg = GenerationConfig(max_new_tokens=50)
    seen: list[int] = []

    def expire_after_two(token: int, _text: str) -> None:
        seen.append(token)
        if len(seen) == 2:
            cfg.deadline = time.monotonic()

    result = engine.generate(prompt, cfg, on_token=expire_after_two)
    assert result.finish_reason == "deadline"
    assert len(result.tokens) == 2


def test_stop_string_eos_and_length(engine: Engine, bundle: Path) -> None:
    prompt = engine.tokenizer.encode(PROMPT)
    free = engine.generate(prompt, GenerationConfig(max_new_tokens=16))
    assert free.finish_reason == "length" and len(free.tokens) == 16
    # stop on the text of the 4th token: the text is cut right before it
    fourth = engine.tokenizer.decode(free.tokens[3:4])
    prefix = engine.tokenizer.decode(free.tokens[:3])
    if fourth.strip() and fourth not in prefix:
        stopped = engine.generate(prompt, GenerationConfig(max_new_tokens=16, stop=[fourth]))
        assert stopped.finish_reason == "stop"
        assert stopped.text == prefix
    # eos: pretend the 5th generated token is end-of-text
    eos_engine = Engine(bundle)
    eos_engine.tokenizer.eos_id = free.tokens[4]
    first = free.tokens.index(free.tokens[4])
    ended = eos_engine.generate(prompt, GenerationConfig(max_new_tokens=16))
    assert ended.finish_reason == "eos"
    assert ended.tokens == free.tokens[:first]


def test_sampling_is_seeded_and_top_p_narrows(engine: Engine) -> None:
    prompt = engine.tokenizer.encode(PROMPT)
    hot = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.9, seed=7)
    assert engine.generate(prompt, hot).tokens == engine.generate(prompt, hot).tokens
    narrow = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=1e-9, seed=3)
    greedy = GenerationConfig(max_new_tokens=12)
    assert engine.generate(prompt, narrow).tokens == engine.generate(prompt, greedy).tokens


def test_streaming_callback_sees_every_token(engine: Engine) -> None:
    texts: list[str] = []
    result = engine.generate(
        engine.tokenizer.encode(PROMPT),
        GenerationConfig(max_new_tokens=8),
        on_token=lambda _t, text: texts.append(text),
    )
    assert len(texts) == 8 and texts[-1] == result.text
    stopped = engine.generate(
        engine.tokenizer.encode(PROMPT),
        GenerationConfig(max_new_tokens=8),
        on_token=lambda _t, _text: False,
    )
    assert stopped.finish_reason == "callback" and len(stopped.tokens) == 1


def test_score_matches_pytorch(engine: Engine, torch_model) -> None:
    import torch

    ids = engine.tokenizer.encode(PROMPT)
    with torch.no_grad():
        logp = torch.log_softmax(torch_model(torch.tensor([ids])).logits[0], -1).numpy()
    expected = logp[np.arange(len(ids) - 1), ids[1:]]
    np.testing.assert_allclose(engine.score(ids), expected, atol=1e-4)


def test_long_prompt_keeps_its_end(engine: Engine) -> None:
    ids = engine.tokenizer.encode(PROMPT * 40)
    assert len(ids) > engine.n_positions
    result = engine.generate(ids, GenerationConfig(max_new_tokens=8))
    assert result.prompt_tokens == engine.n_positions - 8
    assert len(result.tokens) == 8


def test_worker_thread_runs_generation(engine: Engine) -> None:
    prompt = engine.tokenizer.encode(PROMPT)
    names: list[str] = []

    def job() -> list[int]:
        names.append(threading.current_thread().name)
        return engine.generate(prompt, GenerationConfig(max_new_tokens=4)).tokens

    assert len(engine.submit(job).result(timeout=30)) == 4
    assert names[0].startswith("jpilot-engine")


def has_vnni() -> bool:
    """Return whether this CPU has int8 dot products (AVX-512 VNNI or AVX-VNNI)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return True  # not Linux: no way to tell, so hold the test to the VNNI standard
    return "avx512_vnni" in flags or "avx_vnni" in flags


def test_int8_bundle_agreement(
    bundle_int8: Path, engine: Engine, request: pytest.FixtureRequest
) -> None:
    if not has_vnni():
        # ORT's u8s8 kernels on AVX2 alone use vpmaddubsw, whose 16-bit sums saturate
        # (ORT's quantization docs: try reduce_range on non-VNNI machines); measured here
        # on an AVX2-only EPYC: 1/32 tokens agree on the static graph (docs/BENCHMARKS.md)
        reason = "int8 loses precision on CPUs without VNNI (vpmaddubsw saturation)"
        request.applymarker(pytest.mark.xfail(strict=False, reason=reason))
    int8 = Engine(bundle_int8)
    assert int8.bundle.manifest.dtype == "int8"
    prompt = engine.tokenizer.encode(PROMPT)
    cfg = GenerationConfig(max_new_tokens=32)
    a, b = engine.generate(prompt, cfg).tokens, int8.generate(prompt, cfg).tokens
    agree = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))
    print(f"int8 vs fp32: first {agree}/32 greedy tokens agree")
    # A random tiny model has near-flat logits, the worst case for quantization; still,
    # int8 must track fp32 for the first few tokens or the quantization is broken.
    assert agree >= 4


def test_prefill_computes_logits_for_the_last_position_only(engine: Engine) -> None:
    ids = engine.tokenizer.encode(PROMPT)
    empty = engine._empty_kv()
    assert engine.has_keep_input
    last, _ = engine._forward(ids, empty, 0)
    full, _ = engine._forward(ids, empty, 0, all_logits=True)
    assert last.shape == (1, full.shape[1]) and full.shape[0] == len(ids)
    np.testing.assert_allclose(last[0], full[-1], atol=1e-5)


def test_score_of_a_long_input_uses_overlapping_windows(engine: Engine, torch_model) -> None:
    import torch

    ids = engine.tokenizer.encode(PROMPT * 30)[:400]  # context is 256
    scored = engine.score_detail(ids)
    assert scored.logp.shape == scored.top.shape == (len(ids) - 1,)
    with torch.no_grad():  # the second window is ids[128:384] and scores tokens 256..383
        second = torch.log_softmax(torch_model(torch.tensor([ids[128:384]])).logits[0], -1)
    rows = second.numpy()[127:255]
    np.testing.assert_allclose(scored.logp[255:383], rows[np.arange(128), ids[256:384]], atol=1e-4)
    np.testing.assert_array_equal(scored.top[255:383], rows.argmax(-1))
    assert np.all(scored.top_logp >= scored.logp - 1e-9)


def test_a_cancelled_prefill_leaves_a_consistent_cache(bundle: Path) -> None:
    fresh = Engine(bundle, EngineConfig(prefill_chunk=8))
    prompt = fresh.tokenizer.encode(PROMPT * 3)
    reference = greedy_without_cache(fresh, prompt, 8)
    calls = 0

    class CancelAfterTwoChunks:
        def is_set(self) -> bool:
            nonlocal calls
            calls += 1
            return calls > 2

    cut = fresh.generate(prompt, GenerationConfig(max_new_tokens=8), CancelAfterTwoChunks())
    assert cut.finish_reason == "cancelled" and cut.tokens == []
    again = fresh.generate(prompt, GenerationConfig(max_new_tokens=8))
    assert again.reused_tokens == 16  # the two chunks fed before the cancel
    assert again.tokens == reference


def test_prompt_lookup_drafts_give_plain_greedy_output(engine: Engine) -> None:
    repetitive = "x = [1, 2, 3]\ny = [1, 2, 3]\nz = [1, 2, 3]\nw = [1, 2"
    accepted = 0
    for text in (PROMPT, repetitive, PROMPT * 4):
        prompt = engine.tokenizer.encode(text)
        engine.cache.clear()
        plain = engine.generate(prompt, GenerationConfig(max_new_tokens=40, draft_tokens=0))
        engine.cache.clear()
        drafted = engine.generate(prompt, GenerationConfig(max_new_tokens=40, draft_tokens=6))
        assert drafted.tokens == plain.tokens == greedy_without_cache(engine, prompt, 40)
        # every confirmed guess saves one pass (the last token is never fed)
        saved = plain.decode_passes - drafted.decode_passes
        assert saved in (drafted.drafted_accepted, drafted.drafted_accepted - 1)
        accepted += drafted.drafted_accepted
        # the cache left behind is consistent: continuing reuses it and stays exact
        follow = engine.generate(prompt + plain.tokens[:20], GenerationConfig(max_new_tokens=8))
        assert follow.tokens == plain.tokens[20:28]
    assert accepted > 0  # greedy random models loop, and lookup catches the loops


def test_lookup_draft() -> None:
    from jpilot.model.engine import lookup_draft

    assert lookup_draft([1, 2, 3, 9, 9, 1, 2, 3], 3) == [9, 9, 1]
    assert lookup_draft([5, 1, 2, 7, 1, 2], 2) == [7, 1]  # the most recent match wins
    assert lookup_draft([1, 2, 3, 4], 3) == []  # no earlier occurrence of any tail
    assert lookup_draft([1, 2, 1, 2], 0) == []


def branch_reference(engine: Engine, prompt: list[int], cfg: GenerationConfig) -> list[int]:
    """The likeliest first line among cfg.branches starts, decoded without any KV cache."""
    from jpilot.model.sampling import log_softmax

    def row(seq: list[int], healing: bytes) -> np.ndarray:
        logits, _ = engine._forward(seq, engine._empty_kv(), 0)
        return log_softmax(engine._constrain(logits[-1], healing) if healing else logits[-1])

    healed = len(cfg.heal.decode("utf-8", errors="replace"))

    def ends(line: list[int]) -> bool:
        text = engine.tokenizer.decode(line)[healed:]
        if line[-1] == engine.tokenizer.eos_id or len(line) >= cfg.max_new_tokens:
            return True
        return "\n" in text.lstrip() or any(s in text for s in cfg.stop)

    lead, healing = [], cfg.heal  # leading whitespace: greedy, shared by the branches
    first = row(prompt, healing)
    while len(lead) < 4:
        top = int(np.argmax(first))
        if engine.tokenizer.decode([top]).strip() or ends([*lead, top]):
            break
        lead.append(top)
        healing = engine.healer.consume(healing, top) if healing else b""
        first = row(prompt + lead, healing)
    best, best_logp = [], -np.inf
    for start in np.argsort(-first)[: cfg.branches]:
        line, logp, branch_healing = [*lead, int(start)], float(first[start]), healing
        while True:
            if branch_healing:
                branch_healing = engine.healer.consume(branch_healing, line[-1])
            if ends(line):
                break
            lp = row(prompt + line, branch_healing)
            line.append(int(np.argmax(lp)))
            logp += float(lp[line[-1]])
        if logp > best_logp:
            best, best_logp = line, logp
    return best


def test_branching_keeps_the_likeliest_first_line(engine: Engine) -> None:
    ids = engine.tokenizer.encode(PROMPT + "    x = a")
    kept, dropped = engine.healer.split(ids)  # mid-word: branches obey token healing
    indent, newline = engine.healer.split(engine.tokenizer.encode(PROMPT + "    "))
    assert not newline.strip()  # a new line's indentation: taken before branching
    cases = [(ids, b"", ["\n"]), (kept, dropped, ["\n"]), (ids, b"", ["e"])]
    cases += [(indent, newline, ["\n\n\n"])]
    changed = 0
    for prompt, heal, stop in cases:
        for k in (2, 4):
            cfg = GenerationConfig(max_new_tokens=10, stop=stop, heal=heal, branches=k)
            engine.cache.clear()
            result = engine.generate(prompt, cfg)
            best = branch_reference(engine, prompt, cfg)
            assert result.tokens == [t for t in best if t != engine.tokenizer.eos_id]
            assert result.decode_passes >= k - 1  # branch passes count as decode passes
            plain = engine.generate(
                prompt, GenerationConfig(max_new_tokens=10, stop=stop, heal=heal)
            )
            changed += plain.tokens != result.tokens
            if heal:
                assert engine.tokenizer.decode(result.tokens).encode().startswith(heal)
    assert changed  # branching picked something other than plain greedy at least once


@pytest.fixture(scope="module")
def chatty_engine(checkpoint: Path, kind: str, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The tiny model with its newline logit raised, so that its lines end now and then."""
    import shutil

    import torch
    from tokenizers import Tokenizer
    from transformers import GPTJForCausalLM

    from jpilot.model.export import export_bundle

    folder = tmp_path_factory.mktemp("newlines")
    model = GPTJForCausalLM.from_pretrained(checkpoint)
    (newline,) = Tokenizer.from_file(str(checkpoint / "tokenizer.json")).encode("\n").ids
    with torch.no_grad():
        model.lm_head.bias[newline] += 4.0
    model.save_pretrained(folder / "ckpt")
    shutil.copy(checkpoint / "tokenizer.json", folder / "ckpt" / "tokenizer.json")
    return Engine(export_bundle(folder / "ckpt", folder / "bundle", kv_cache=kind))


def test_branching_continues_past_the_first_line_from_an_intact_cache(
    chatty_engine: Engine,
) -> None:
    """Branches scribble over the KV past the prompt; what follows must not notice."""
    engine = chatty_engine
    cfg = GenerationConfig(max_new_tokens=16, branches=3)
    words = PROMPT.split()
    for i in range(len(words)):  # find a prompt whose best branch ends its line early
        prompt = engine.tokenizer.encode(" ".join(words[i:]))
        line = branch_reference(engine, prompt, cfg)
        if len(line) < cfg.max_new_tokens and line[-1] != engine.tokenizer.eos_id:
            break
    else:
        pytest.fail("no prompt gave a branch that ends before max_new_tokens")
    assert "\n" in engine.tokenizer.decode(line).lstrip()
    engine.cache.clear()
    result = engine.generate(prompt, cfg)
    assert result.tokens[: len(line)] == line
    rest = greedy_without_cache(engine, prompt + line, cfg.max_new_tokens - len(line))
    assert result.tokens[len(line) :] == rest and rest
    follow = engine.generate(prompt + result.tokens[:6], GenerationConfig(max_new_tokens=6))
    assert follow.reused_tokens == len(prompt) + 5  # the cache left behind is consistent
    assert follow.tokens == greedy_without_cache(engine, prompt + result.tokens[:6], 6)


def test_branching_honours_the_deadline(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = engine.tokenizer.encode(PROMPT)
    late = engine.generate(prompt, GenerationConfig(deadline=time.monotonic() - 1, branches=3))
    assert (late.finish_reason, late.tokens) == ("deadline", [])
    cfg = GenerationConfig(max_new_tokens=50, branches=3)
    forward, calls = engine._forward, []

    def expire_after_three(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the prefill and two passes into the first branch
            cfg.deadline = time.monotonic()
        return forward(*args, **kwargs)

    engine.cache.clear()
    monkeypatch.setattr(engine, "_forward", expire_after_three)
    result = engine.generate(prompt, cfg)
    # the prefill, then two branch passes: the partial first branch (plain greedy) is kept
    assert result.finish_reason == "deadline"
    assert result.tokens == greedy_without_cache(engine, prompt, 3)


def test_int4_bundle_runs_4bit_matmuls_and_tracks_fp32(
    tiny_checkpoint_gqa: Path, tiny_bundle_static: Path, tmp_path: Path
) -> None:
    import onnx

    from jpilot.model.export import export_bundle

    int4_dir = export_bundle(tiny_checkpoint_gqa, tmp_path / "int4", quantize="int4")
    graph = onnx.load_model(str(int4_dir / "model.onnx"), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    # every projection (fused qkv, out, fc_in, fc_out per layer) and the lm_head
    assert ops.count("MatMulNBits") == 4 * 2 + 1 and "MatMul" not in ops
    int4, fp32 = Engine(int4_dir), Engine(tiny_bundle_static)
    assert int4.bundle.manifest.dtype == "int4" and int4.static_kv
    ids = fp32.tokenizer.encode(PROMPT)
    a, _ = fp32._forward(ids, fp32._empty_kv(), 0, all_logits=True)
    b, _ = int4._forward(ids, int4._empty_kv(), 0, all_logits=True)
    err = float(np.abs(a - b).mean() / np.abs(a - a.mean()).mean())
    corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    print(f"int4 vs fp32 logits: mean error {err:.3f} of the mean deviation, corr {corr:.4f}")
    assert corr > 0.95 and err < 0.3  # 4-bit blocks of 32 keep the logits' shape
    cfg = GenerationConfig(max_new_tokens=8)
    assert len(int4.generate(ids, cfg).tokens) == 8
