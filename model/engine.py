"""The ONNX Runtime GPT-J engine: prompt tokens in, generated tokens out, fast.

- IO binding keeps the KV cache as OrtValues on the model's device (CPU or CUDA, one path).
  Bundles exported with `--kv-cache static` (model/static_kv.py) keep it in one buffer per
  tensor that the model updates in place: no per-step copy, and cutting a cache back is free.
- The KV caches of recent sequences live in a PrefixCache; a new prompt feeds only the
  tokens after its longest cached prefix.
- Decoding is greedy or temperature/top-p; it stops on eos, stop strings, max tokens,
  a deadline, a cancel token checked at every step, or a per-token callback.
- Greedy decoding can verify prompt-lookup drafts (`draft_tokens`): guessed tokens the
  model agrees with cost no forward pass of their own. With fp32 weights the output is
  the plain greedy output; int8 bundles quantize activations per forward pass, so a
  near-tie can go the other way when several tokens share a pass.
- Token healing (`GenerationConfig.heal`) lets a completion start mid-token.
- Greedy decoding can branch on its first token (`branches`): the k most likely starts are
  each continued to the end of their first line, and the likeliest line wins.
- All inference runs on one dedicated worker thread (`submit`), never the caller's pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from jpilot.model.bundle import Bundle, load_bundle
from jpilot.model.errors import ModelError
from jpilot.model.graph import KEEP_INPUT
from jpilot.model.healing import Healer
from jpilot.model.kv import ORT_TO_NUMPY, KVSlicer, empty_kv, kv_nbytes
from jpilot.model.prefix_cache import PrefixCache
from jpilot.model.providers import create_session, placement, provider_list
from jpilot.model.sampling import log_softmax, sample
from jpilot.model.static_kv import STATIC_INPUTS


class CancelToken(Protocol):
    """Anything with `is_set()`, e.g. threading.Event; set it to stop generation."""

    def is_set(self) -> bool: ...


@dataclass
class EngineConfig:
    """How the engine runs; the LSP's `device`/`threads` settings map here."""

    device: str = "auto"  # "auto" (CUDA if onnxruntime-gpu sees a GPU), "cpu" or "cuda"
    threads: int = 0  # intra-op threads; 0 = one per core this process may use
    cache_entries: int = 8  # sequences kept for prefix reuse
    cache_bytes: int = 256 << 20  # memory bound of all kept KV caches
    prefill_chunk: int = 512  # prompt tokens fed per forward; cancel is checked between


@dataclass
class GenerationConfig:
    """What to generate for one request."""

    max_new_tokens: int = 64  # hard cap on generated tokens
    temperature: float = 0.0  # 0 = greedy; otherwise softmax temperature
    top_p: float = 1.0  # nucleus sampling mass, used when temperature > 0
    stop: Sequence[str] = ()  # stop strings; the text is cut before the first one
    deadline: float | None = None  # time.monotonic() after which generation stops
    seed: int | None = None  # sampling seed, for reproducible non-greedy output
    draft_tokens: int = 0  # prompt-lookup guesses verified per pass (greedy only; 0 = off)
    branches: int = 1  # greedy only: first tokens tried, likeliest first line kept (1 = off)
    heal: bytes = b""  # bytes the output must start with (token healing; see healing.py);
    # the caller removed them from the prompt, and they are not part of the result's text


@dataclass
class GenerationResult:
    """The outcome of one generate() call."""

    tokens: list[int]  # generated ids (a stop string may end mid-token)
    text: str  # decoded text, cut before any stop string
    finish_reason: str  # "eos", "stop", "length", "deadline", "cancelled" or "callback"
    prompt_tokens: int  # tokens in the (possibly left-truncated) prompt
    reused_tokens: int  # prompt tokens whose KV came from the prefix cache
    time_to_first_token: float  # seconds from call to the first sampled token
    elapsed: float  # seconds for the whole call
    timings: dict[str, float] = field(default_factory=dict)  # prefill/decode seconds
    decode_passes: int = 0  # forward passes after prefill (branches included)
    drafted_accepted: int = 0  # prompt-lookup guesses the model confirmed (free tokens)


class Engine:
    """Generate and score tokens with a bundle's model.onnx on ONNX Runtime."""

    def __init__(self, bundle: Bundle | str, config: EngineConfig | None = None) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.config = config or EngineConfig()
        self.tokenizer = self.bundle.tokenizer
        self.session = create_session(
            str(self.bundle.onnx_path), self.config.device, self.config.threads
        )
        self.where = placement(self.session)
        self._read_signature()
        self.cache = PrefixCache(self.config.cache_entries, self.config.cache_bytes)
        providers = provider_list("cuda" if self.where.device_type == "cuda" else "cpu")
        self._slicer = None
        if not self.static_kv:
            self._slicer = KVSlicer(len(self.past_names), self.kv_dtype, providers, self.where)
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jpilot-engine")

    def _read_signature(self) -> None:
        """Read input/output names, KV shapes and dtypes from the session once."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.static_kv = all(name in inputs for name in STATIC_INPUTS)
        positions = STATIC_INPUTS if self.static_kv else ("attention_mask", "position_ids")
        missing = {"input_ids", *positions} - set(inputs)
        if missing:
            raise ModelError(
                f"{self.bundle.onnx_path} lacks inputs {sorted(missing)}; it is not a GPT-J "
                "text-generation-with-past export. Re-export with `jpilot model export`"
            )
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        if not self.past_names:
            raise ModelError(f"{self.bundle.onnx_path} has no KV-cache inputs; re-export it")
        self.kv_shapes = [(inputs[n].shape[1], inputs[n].shape[3]) for n in self.past_names]
        self.kv_dtype = ORT_TO_NUMPY[inputs[self.past_names[0]].type]
        self.id_dtype = ORT_TO_NUMPY[inputs["input_ids"].type]
        self.n_positions = self.bundle.manifest.n_positions
        self.has_keep_input = KEEP_INPUT in inputs

    def _empty_kv(self) -> list[Any]:
        """Return a fresh KV cache holding no tokens (static: buffers of unread rows)."""
        # static: one row more than any total, so GQA stays in its in-place (static) mode
        length = self.n_positions + 1 if self.static_kv else 0
        return empty_kv(self.kv_shapes, self.kv_dtype, self.where, length)

    def _slice(self, kv: list[Any], length: int) -> list[Any]:
        """Return `kv` cut to its first `length` positions (static: rows past it go unread)."""
        return kv if self._slicer is None else self._slicer(kv, length)

    # ----------------------------------------------------------------- forward passes
    def _forward(
        self, ids: Sequence[int], past: list[Any], start: int, all_logits: bool = False
    ) -> tuple[np.ndarray, list]:
        """Feed `ids` at positions start.. after `past`; return logits and the new KV.

        Logits are [S, V] with `all_logits`, else [1, V] for the last position when the
        bundle has the `num_logits_to_keep` input (older bundles always give [S, V]).
        """
        n = len(ids)
        dev, dev_id = self.where.device_type, self.where.device_id
        io = self.session.io_binding()
        feeds: dict[str, np.ndarray] = {"input_ids": np.asarray([ids], dtype=self.id_dtype)}
        if self.static_kv:  # GQA: positions and the causal mask follow from the lengths
            feeds["seqlens_k"] = np.array([start + n - 1], dtype=np.int32)  # [1]
            feeds["total_sequence_length"] = np.array(start + n, dtype=np.int32)  # []
        else:
            feeds["attention_mask"] = np.ones((1, start + n), dtype=np.int64)  # [1, past + S]
            feeds["position_ids"] = np.arange(start, start + n, dtype=np.int64)[None, :]
        if self.has_keep_input:
            feeds[KEEP_INPUT] = np.array([n if all_logits else 1], dtype=np.int64)  # [1]
        for name, array in feeds.items():
            if name == "total_sequence_length":  # GQA reads it on the host, even on CUDA
                io.bind_cpu_input(name, array)
            else:
                io.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, dev, dev_id))
        for name, value in zip(self.past_names, past, strict=True):
            io.bind_ortvalue_input(name, value)
        io.bind_output("logits", "cpu")  # sampling happens on the host; bound first, read first
        for name, value in zip(self.present_names, past, strict=True):
            if self.static_kv:
                io.bind_ortvalue_output(name, value)  # the same buffer: updated in place
            else:
                io.bind_output(name, dev, dev_id)  # the cache stays on the device
        self.session.run_with_iobinding(io)
        outputs = io.get_outputs()
        logits = outputs[0].numpy()[0]  # [S, V]
        return logits, past if self.static_kv else list(outputs[1:])

    def _prefill(
        self, ids: Sequence[int], cancel: CancelToken | None
    ) -> tuple[np.ndarray | None, list[Any], int, int]:
        """Feed a prompt, reusing the longest cached prefix.

        Returns the last position's logits (None if cancelled), the KV, how many tokens
        came from the cache, and how many tokens the KV covers.
        """
        entry, common = self.cache.best_match(ids)
        reused = min(common, len(ids) - 1)  # always feed at least one token to get logits
        if entry is not None and reused > 0:
            past = entry.kv if reused == len(entry.tokens) else self._slice(entry.kv, reused)
            if self.static_kv:  # this request writes into the entry's buffers from `reused` on
                self.cache.take(entry)
        else:
            reused, past = 0, self._empty_kv()
        logits = None
        pos = reused
        while pos < len(ids):
            if _cancelled(cancel):
                return None, past, reused, pos
            chunk = ids[pos : pos + self.config.prefill_chunk]
            logits, past = self._forward(chunk, past, pos)
            pos += len(chunk)
        assert logits is not None
        return logits[-1], past, reused, pos

    # ----------------------------------------------------------------------- generate
    def generate(
        self,
        prompt: Sequence[int],
        config: GenerationConfig | None = None,
        cancel: CancelToken | None = None,
        on_token: Callable[[int, str], bool | None] | None = None,
    ) -> GenerationResult:
        """Generate a continuation of `prompt` token ids; see GenerationConfig for stops."""
        cfg = config or GenerationConfig()
        if not prompt:
            raise ValueError("generate() needs at least one prompt token")
        with self._lock:
            return self._generate(list(prompt), cfg, cancel, on_token)

    def _generate(self, prompt, cfg, cancel, on_token) -> GenerationResult:
        """Run prefill and the decode loop; the caller holds the lock.

        With greedy decoding, the loop also verifies prompt-lookup drafts (see
        `lookup_draft`): the sampled token and a guessed continuation are fed in one
        forward pass, and every guessed token the model agrees with costs no pass of its
        own (see the module docstring for how exact this is).
        """
        t0 = time.monotonic()
        prompt = prompt[-max(1, self.n_positions - cfg.max_new_tokens) :]  # keep the end
        max_new = min(cfg.max_new_tokens, self.n_positions - len(prompt))
        rng = np.random.default_rng(cfg.seed)
        logits, past, reused, covered = self._prefill(prompt, cancel)
        t_prefill = time.monotonic() - t0
        in_kv = prompt[:covered]  # the tokens whose keys/values `past` holds, in order
        rows = [] if logits is None else [logits]  # rows[0] predicts the next token
        forced: list[int] = []  # tokens chosen by branching, emitted before any sampling
        passes = 0
        branching = cfg.branches > 1 and cfg.temperature <= 0 and not _expired(cfg.deadline)
        if logits is not None and branching:
            forced, passes = self._best_start(logits, past, covered, max_new, cfg, cancel)
        draft: list[int] = []  # fed but unverified guesses; rows[i + 1] follows draft[i]
        tokens: list[int] = []
        text, reason, ttft = "", "cancelled", 0.0
        healing, healed = cfg.heal, len(cfg.heal.decode("utf-8", errors="replace"))
        accepted = 0
        while rows:
            if _cancelled(cancel):
                break
            if _expired(cfg.deadline) and not forced:
                reason = "deadline"  # tokens chosen by branching are emitted first
                break
            branched = bool(forced)
            if branched:  # chosen by branching, which kept to the healing constraint
                rows.pop(0)
                token = forced.pop(0)
            else:
                row = self._constrain(rows.pop(0), healing)
                token = sample(row, cfg.temperature, cfg.top_p, rng)
            healing = self.healer.consume(healing, token) if healing else b""
            ttft = ttft or time.monotonic() - t0
            verified = bool(draft) and token == draft[0]
            if verified:
                draft.pop(0)
                accepted += not branched  # prompt-lookup guesses only
            if token == self.tokenizer.eos_id:
                reason = "eos"
                break
            tokens.append(token)
            text, stopped = _apply_stops(self.tokenizer.decode(tokens)[healed:], cfg.stop)
            if stopped:
                reason = "stop"
                break
            if on_token is not None and on_token(token, text) is False:
                reason = "callback"
                break
            if len(tokens) >= max_new:
                reason = "length"
                break
            if verified:
                continue  # its logits row is already in `rows`
            if draft:  # the model disagreed with a guess: drop the guesses from the cache
                in_kv = in_kv[: len(prompt) + len(tokens) - 1]
                past, draft = self._slice(past, len(in_kv)), []
            room = max(0, min(max_new - len(tokens), self.n_positions - len(in_kv) - 1))
            if forced:  # fed in one pass, like a draft the model is sure to confirm
                draft = forced[:room]
            elif cfg.temperature <= 0 and not healing and cfg.draft_tokens:
                draft = lookup_draft(prompt + tokens, min(cfg.draft_tokens, room))
            feed = [token, *draft]
            out, past = self._forward(feed, past, len(in_kv), all_logits=bool(draft))
            in_kv += feed
            rows = list(out)
            passes += 1
        self.cache.put(in_kv, past, kv_nbytes(past))
        elapsed = time.monotonic() - t0
        return GenerationResult(
            tokens,
            text,
            reason,
            len(prompt),
            reused,
            ttft,
            elapsed,
            {"prefill": t_prefill, "decode": elapsed - t_prefill},
            passes,
            accepted,
        )

    def _best_start(
        self,
        row: np.ndarray,
        past: list[Any],
        covered: int,
        max_new: int,
        cfg: GenerationConfig,
        cancel: CancelToken | None,
    ) -> tuple[list[int], int]:
        """Return the likeliest first line among `cfg.branches` starts, and the passes it took.

        Greedy decoding commits to its first token, where a small model most often goes
        wrong (which of several plausible tokens opens the line, how a half-typed word goes
        on). Leading whitespace the model is surest of (a new line's indentation, which
        token healing makes it regenerate) is taken first, greedily; then each of the k
        most likely next tokens is continued greedily to the end of its first line with
        code, a stop string, eos or `max_new`, and the branch with the highest sum of
        log-probabilities wins (the sum, not the mean: it measured better on `jpilot model
        eval`). Branches write the KV from `covered` on; the static cache's rows past the
        length are scratch, and the concat cache's passes return new arrays, so `past`
        still holds the prompt afterwards. Written by hand: ONNX Runtime has no beam search
        for this graph.
        """
        healed = len(cfg.heal.decode("utf-8", errors="replace"))
        limit = min(max_new, self.n_positions - covered)  # tokens one line may take
        eos = self.tokenizer.eos_id

        def ends(tokens: list[int]) -> bool:
            text = self.tokenizer.decode(tokens)[healed:]
            stopped = _apply_stops(text, cfg.stop)[1]
            return tokens[-1] == eos or "\n" in text.lstrip() or stopped or len(tokens) >= limit

        lead: list[int] = []  # whitespace the model is surest of, shared by every branch
        healing, kv, passes = cfg.heal, past, 0
        while True:
            first = log_softmax(self._constrain(row, healing))
            top = int(np.argmax(first))
            if self.tokenizer.decode([top]).strip() or ends([*lead, top]):  # content
                break
            if len(lead) >= 4 or _cancelled(cancel) or _expired(cfg.deadline):
                break
            lead.append(top)
            healing = self.healer.consume(healing, top) if healing else b""
            out, kv = self._forward([top], kv, covered + len(lead) - 1)
            row, passes = out[-1], passes + 1
        best: list[int] = []
        best_logp = -np.inf
        for start in np.argsort(-first)[: cfg.branches]:
            if not np.isfinite(first[start]):
                break  # healing allows fewer tokens than branches
            tokens, logp = [*lead, int(start)], float(first[start])
            branch_healing, branch_kv = healing, kv
            while True:
                if branch_healing:
                    branch_healing = self.healer.consume(branch_healing, tokens[-1])
                if ends(tokens):
                    break
                if _cancelled(cancel):
                    return [], passes  # the caller stops too
                if _expired(cfg.deadline):
                    return best or tokens, passes  # the caller emits these, then stops
                out, branch_kv = self._forward([tokens[-1]], branch_kv, covered + len(tokens) - 1)
                passes += 1
                lp = log_softmax(self._constrain(out[-1], branch_healing))
                tokens.append(int(np.argmax(lp)))
                logp += float(lp[tokens[-1]])
            if logp > best_logp:
                best, best_logp = tokens, logp
        return best, passes

    @property
    def healer(self) -> Healer:
        """Return the token-healing index of this bundle's vocabulary."""
        return self.tokenizer.healer

    def _constrain(self, logits: np.ndarray, remaining: bytes) -> np.ndarray:
        """Mask logits to tokens consistent with the bytes healing still has to produce
        (none left: the logits as they are)."""
        if not remaining:
            return logits
        allowed = self.healer.allowed(remaining)
        if not len(allowed):
            return logits
        masked = np.full_like(logits, -np.inf)
        masked[allowed] = logits[allowed]
        return masked

    # -------------------------------------------------------------------------- score
    def score(self, ids: Sequence[int], cancel: CancelToken | None = None) -> np.ndarray:
        """Return log p(ids[i] | ids[:i]) for i >= 1, in nats, as a [len(ids) - 1] array."""
        return self.score_detail(ids, cancel).logp

    def score_detail(self, ids: Sequence[int], cancel: CancelToken | None = None) -> Scored:
        """Score every token after the first, with the model's own top choice at each.

        Long inputs are scored in windows of the model's context that overlap by half, so
        every token but those of the first window sees at least half a context before it.
        The engine lock is taken per window: scoring a big file never holds completions
        back for more than one window's forward pass.
        """
        ids = list(ids)
        n = len(ids)
        logp, top, top_logp = (np.zeros(max(n - 1, 0)) for _ in range(3))
        window, done = self.n_positions, 1  # `done`: positions < done are scored
        while done < n:
            if _cancelled(cancel):
                raise CancelledError("scoring was cancelled")
            begin = 0 if done == 1 else max(0, done - window // 2)
            chunk = ids[begin : begin + window]
            empty = self._empty_kv()
            with self._lock:  # per window, so a completion can run between windows
                logits, _ = self._forward(chunk, empty, 0, all_logits=True)
            lp = log_softmax(logits[:-1])  # [len(chunk) - 1, V]: predicts chunk[1:]
            targets = np.arange(done, begin + len(chunk))  # positions scored now
            rows = targets - begin - 1
            logp[targets - 1] = lp[rows, [ids[t] for t in targets]]
            top[targets - 1] = lp[rows].argmax(-1)
            top_logp[targets - 1] = lp[rows].max(-1)
            done = begin + len(chunk)
        return Scored(logp, top.astype(np.int64), top_logp)

    def score_variants(
        self,
        ids: Sequence[int],
        cuts: Sequence[tuple[int, Sequence[Sequence[int]]]],
        cancel: CancelToken | None = None,
    ) -> list[list[float]]:
        """Return, for each (cut, variants), the log-probability (nats) of each variant
        token list as the continuation of ids[:cut] (what-if scoring: "the code here,
        written this way or that way instead").

        The context of a cut is the window's worth of tokens before it
        (`variant_context_begin`). Cuts that share a context share one prefill: its KV is
        computed once, then the cuts are taken from last to first, so each variant's
        forward pass only writes KV rows that no cut still to come reads (a static cache
        is updated in place; a dynamic one is cut back with `_slice`). The KV is this
        call's own, so the engine lock is taken per forward pass: a completion waits for
        one pass at most, as with `score_detail`.
        """
        ids = list(ids)
        if not cuts:
            return []
        longest = max(len(v) for _cut, variants in cuts for v in variants)
        if longest > self.n_positions // 2 or any(not 1 <= c <= len(ids) for c, _v in cuts):
            raise ValueError("variants must be at most half a context long, cuts in 1..len(ids)")
        groups: dict[int, list[int]] = {}
        for k, (cut, _variants) in enumerate(cuts):
            begin = variant_context_begin(cut, self.n_positions, longest)
            groups.setdefault(begin, []).append(k)
        out: list[list[float]] = [[] for _ in cuts]
        for begin, members in groups.items():
            members.sort(key=lambda k: -cuts[k][0])
            full = self._empty_kv()
            top = cuts[members[0]][0] - 1  # ids[cut - 1] is fed again: it gives the 1st logits
            if top > begin:
                with self._lock:
                    _, full = self._forward(ids[begin:top], full, 0)
            for k in members:
                if _cancelled(cancel):
                    raise CancelledError("scoring was cancelled")
                cut, variants = cuts[k]
                at = cut - 1 - begin
                for variant in variants:
                    with self._lock:
                        past = self._slice(full, at)
                        logits, _ = self._forward([ids[cut - 1], *variant], past, at, True)
                    lp = log_softmax(logits[: len(variant)])
                    out[k].append(float(lp[np.arange(len(variant)), list(variant)].sum()))
        return out

    # ---------------------------------------------------------------- worker thread
    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run `fn(*args, **kwargs)` on the engine's own worker thread."""
        return self._worker.submit(fn, *args, **kwargs)

    def close(self) -> None:
        """Stop the worker thread and drop cached KV."""
        self._worker.shutdown(wait=False, cancel_futures=True)
        self.cache.clear()


@dataclass
class Scored:
    """Per-token scores of a sequence; index i is about token i + 1."""

    logp: np.ndarray  # [N - 1] log-probability of the actual token, nats
    top: np.ndarray  # [N - 1] the model's most likely token at that position
    top_logp: np.ndarray  # [N - 1] its log-probability


class CancelledError(Exception):
    """Raised by score() when its cancel token is set."""


def lookup_draft(history: Sequence[int], k: int, longest: int = 4, shortest: int = 2) -> list[int]:
    """Guess the next k tokens by prompt lookup: what followed the last n-gram before.

    Code repeats itself (names, call patterns, parallel branches), so the tokens that
    followed the most recent earlier occurrence of the last n tokens are a cheap draft.
    Tries n = longest..shortest. Written by hand: ORT has no speculative decoding.
    """
    if k <= 0 or len(history) <= shortest:
        return []
    seq = np.asarray(history)
    for n in range(min(longest, len(seq) - 1), shortest - 1, -1):
        tail = seq[-n:]
        starts = np.flatnonzero(seq[: len(seq) - n] == tail[0])
        for i in starts[::-1]:  # most recent first
            if np.array_equal(seq[i : i + n], tail):
                return seq[i + n : i + n + k].tolist()
    return []


def variant_context_begin(cut: int, n_positions: int, longest: int) -> int:
    """Return where the context of a variant after ids[:cut] starts (Engine.score_variants).

    The context and the variant (at most `longest` tokens, after the re-fed token
    ids[cut - 1]) must fit the model's window. Starts snap to multiples of a quarter of the
    room, so that nearby cuts share one context, which keeps at least three quarters of
    the room.
    """
    room = n_positions - longest - 1  # context tokens before the cut, ids[cut - 1] included
    if cut <= room:
        return 0
    step = max(room // 4, 1)
    return ((cut - room) // step + 1) * step


def _cancelled(cancel: CancelToken | None) -> bool:
    """Return whether a cancel token (None: never cancelled) has been set."""
    return cancel is not None and cancel.is_set()


def _expired(deadline: float | None) -> bool:
    """Return whether a `time.monotonic()` deadline (None: no deadline) has passed."""
    return deadline is not None and time.monotonic() >= deadline


def _apply_stops(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string; return the text and whether one hit."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
