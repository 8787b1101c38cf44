"""The ONNX Runtime engine (model/families/): prompt tokens in, generated tokens out, fast.

- IO binding keeps the KV cache as OrtValues on the model's device (CPU or CUDA, one path).
  Bundles exported with `--kv-cache static` (model/static_kv.py) keep it in one buffer per
  tensor that the model updates in place: no per-step copy, and cutting a cache back is free.
- The KV caches of recent sequences live in a PrefixCache; a new prompt feeds only the
  tokens after its longest cached prefix.
- Decoding is greedy or temperature/top-p; it stops on eos, stop strings, max tokens,
  a deadline, a cancel token checked at every step, or a per-token callback. The loop's
  state, its stop reasons, drafts and branching are in model/decode.py.
- Greedy decoding can verify prompt-lookup drafts (`draft_tokens`): the chosen token and
  a guessed continuation are fed in one pass, and guessed tokens the model agrees with
  cost no forward pass of their own. With fp32 weights the output is the plain greedy
  output; int8 bundles quantize activations per forward pass, so a near-tie can go the
  other way when several tokens share a pass.
- Token healing (`GenerationConfig.heal`) lets a completion start mid-token.
- Greedy decoding can branch on its first token (`branches`): the k most likely starts are
  each continued to the end of their first line, and the likeliest line wins.
- Scoring (log-probabilities of given tokens, what-if variants) is in model/scoring.py.
- All inference runs on one dedicated worker thread (`submit`), never the caller's pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnxruntime as ort

from jpilot.model import scoring
from jpilot.model.bundle import Bundle, load_bundle
from jpilot.model.decode import (
    CancelToken,
    Decoding,
    best_start,
    cancelled,
    expired,
    line_confidence,
)
from jpilot.model.decode import lookup_draft as lookup_draft  # re-exported
from jpilot.model.errors import ModelError
from jpilot.model.graph import KEEP_INPUT
from jpilot.model.healing import Healer
from jpilot.model.kv import ORT_TO_NUMPY, KVSlicer, empty_kv, kv_nbytes
from jpilot.model.manifest_checks import check_graph
from jpilot.model.prefix_cache import PrefixCache
from jpilot.model.providers import create_session, placement, provider_list
from jpilot.model.sampling import log_softmax, sample
from jpilot.model.scoring import CancelledError as CancelledError  # re-exported
from jpilot.model.scoring import ScoringMixin
from jpilot.model.scoring import variant_context_begin as variant_context_begin  # re-exported
from jpilot.model.static_kv import STATIC_INPUTS


@dataclass
class EngineConfig:
    """How the engine runs; the LSP's `device`/`threads` settings map here."""

    device: str = "auto"  # "auto" (CUDA if onnxruntime-gpu sees a GPU), "cpu" or "cuda"
    threads: int = 0  # intra-op threads; 0 = one per core this process may use
    cache_entries: int = 8  # sequences kept for prefix reuse
    cache_bytes: int = 256 << 20  # memory bound of all kept KV caches; raised to hold at
    # least two whole sequences (a 350M model's static KV buffer alone is 335 MB in fp32)
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
    session: str = ""  # who asks (remote.session_id): a pool routes on it; Engine ignores it


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
    # geometric-mean probability of the tokens of the first line with code (line_confidence);
    # None: no such line, or an engine that does not report it (a pool)
    confidence: float | None = None
    token_logprobs: list[float] = field(default_factory=list)  # log p of each of `tokens`
    token_ends: list[int] = field(default_factory=list)  # len(text) after each of `tokens`

    def token_texts(self) -> list[str]:
        """Return the text each of `tokens` wrote: text[token_ends[i-1]:token_ends[i]]."""
        starts = [0, *self.token_ends[:-1]]
        return [self.text[a:b] for a, b in zip(starts, self.token_ends, strict=True)]


class Engine(ScoringMixin):
    """Generate and score tokens with a bundle's model.onnx on ONNX Runtime."""

    scorer = scoring  # score_detail and score_variants (ScoringMixin)

    def __init__(self, bundle: Bundle | str, config: EngineConfig | None = None) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.config = config or EngineConfig()
        self.tokenizer = self.bundle.tokenizer
        self.session = create_session(
            str(self.bundle.onnx_path), self.config.device, self.config.threads
        )
        self.where = placement(self.session)
        self._read_signature()
        bound = max(self.config.cache_bytes, 2 * self._sequence_kv_bytes())
        self.cache = PrefixCache(self.config.cache_entries, bound)
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
                f"{self.bundle.onnx_path} lacks inputs {sorted(missing)}; it is not a "
                "text-generation-with-past export. Re-export with `jpilot model export`"
            )
        self.past_names = [n for n in inputs if n.startswith("past_key_values.")]
        self.present_names = [n.replace("past_key_values.", "present.") for n in self.past_names]
        if not self.past_names:
            raise ModelError(f"{self.bundle.onnx_path} has no KV-cache inputs; re-export it")
        logits = [o.shape for o in self.session.get_outputs() if o.name == "logits"]
        check_graph(
            self.bundle.path, self.bundle.manifest, self.past_names, logits[0] if logits else None
        )
        self.kv_shapes = [(inputs[n].shape[1], inputs[n].shape[3]) for n in self.past_names]
        self.kv_dtype = ORT_TO_NUMPY[inputs[self.past_names[0]].type]
        self.id_dtype = ORT_TO_NUMPY[inputs["input_ids"].type]
        self.n_positions = self.bundle.manifest.n_positions
        self.has_keep_input = KEEP_INPUT in inputs

    def _sequence_kv_bytes(self) -> int:
        """Return the bytes of the KV cache of one full-length sequence."""
        per_token = sum(h * d for h, d in self.kv_shapes) * np.dtype(self.kv_dtype).itemsize
        return per_token * (self.n_positions + (1 if self.static_kv else 0))

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
        """Feed `ids` at positions start.. after `past`; return logits and the new KV."""
        # Logits are [S, V] with `all_logits`, else [1, V] for the last position when the
        # bundle has the `num_logits_to_keep` input (older bundles always give [S, V]).
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
        """Feed a prompt after its longest cached prefix; return logits, KV, reused, covered."""
        # logits: the last position's [V] row, None if cancelled; reused: tokens whose KV
        # came from the cache; covered: tokens the KV holds.
        entry, common = self.cache.best_match(ids)
        reused = min(common, len(ids) - 1)  # always feed at least one token to get logits
        if self.static_kv and entry is not None and 2 * reused < min(len(entry.tokens), len(ids)):
            # taking the entry would overwrite most of another sequence's cache (another
            # document's, which shares only e.g. the FIM markers) to save a few tokens
            entry = None
        if entry is not None and reused > 0:
            past = entry.kv if reused == len(entry.tokens) else self._slice(entry.kv, reused)
            if self.static_kv:  # this request writes into the entry's buffers from `reused` on
                self.cache.take(entry)
        else:
            reused, past = 0, self._empty_kv()
        logits = None
        pos = reused
        while pos < len(ids):
            if cancelled(cancel):
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
        """Prefill the prompt, then take tokens until one of the stops; hold the lock to call."""
        t0 = time.monotonic()
        prompt = prompt[-max(1, self.n_positions - cfg.max_new_tokens) :]  # keep the end
        rng = np.random.default_rng(cfg.seed)
        run = self._start(prompt, cfg, cancel)
        t_prefill = time.monotonic() - t0
        if run.rows and cfg.branches > 1 and cfg.temperature <= 0 and not expired(cfg.deadline):
            run.forced, run.passes = best_start(self, run, cancel)
        reason: str | None = None  # stays None only when the prefill was cancelled
        while run.rows:
            if reason := run.stop_before(cancel):  # cancelled, or past the deadline
                break
            token, confirmed, logprob = self._next_token(run, rng)
            run.ttft = run.ttft or time.monotonic() - t0
            if reason := run.emit(token, self.tokenizer, on_token, logprob):  # eos, stop, ...
                break
            if not confirmed:  # a confirmed guess's logits row is in `run.rows` already
                self._feed(run, token)
        self.cache.put(run.in_kv, run.past, kv_nbytes(run.past))
        elapsed = time.monotonic() - t0
        return GenerationResult(
            tokens=run.tokens,
            text=run.text,
            finish_reason=reason or "cancelled",
            prompt_tokens=len(prompt),
            reused_tokens=run.reused,
            time_to_first_token=run.ttft,
            elapsed=elapsed,
            timings={"prefill": t_prefill, "decode": elapsed - t_prefill},
            decode_passes=run.passes,
            drafted_accepted=run.accepted,
            confidence=line_confidence(run.text, run.ends, run.logprobs),
            token_logprobs=run.logprobs,
            token_ends=run.ends,
        )

    def _start(
        self, prompt: list[int], cfg: GenerationConfig, cancel: CancelToken | None
    ) -> Decoding:
        """Prefill `prompt` and return the decode state it leaves (no rows: cancelled)."""
        logits, past, reused, covered = self._prefill(prompt, cancel)
        return Decoding(
            cfg=cfg,
            prompt=prompt,
            max_new=min(cfg.max_new_tokens, self.n_positions - len(prompt)),
            past=past,
            in_kv=prompt[:covered],
            rows=[] if logits is None else [logits],
            reused=reused,
            healing=cfg.heal,
        )

    def _next_token(self, run: Decoding, rng: np.random.Generator) -> tuple[int, bool, float]:
        """Choose the next token; return it, whether it confirms the first guess fed, and
        its log-probability."""
        row = self._constrain(run.rows.pop(0), run.healing)
        branched = bool(run.forced)
        if branched:  # chosen by branching, which kept to the healing constraint
            token = run.forced.pop(0)
        else:
            token = sample(row, run.cfg.temperature, run.cfg.top_p, rng)
        logprob = float(log_softmax(row)[token])
        run.healing = self.healer.consume(run.healing, token) if run.healing else b""
        confirmed = bool(run.draft) and token == run.draft[0]
        if confirmed:
            run.draft.pop(0)
            run.accepted += not branched  # prompt-lookup guesses only
        return token, confirmed, logprob

    def _feed(self, run: Decoding, token: int) -> None:
        """Run `token` and the next guesses through the model; keep their logits rows."""
        if run.draft:  # the model disagreed with a guess: drop the guesses from the cache
            run.in_kv = run.in_kv[: len(run.prompt) + len(run.tokens) - 1]
            run.past, run.draft = self._slice(run.past, len(run.in_kv)), []
        room = max(0, min(run.max_new - len(run.tokens), self.n_positions - len(run.in_kv) - 1))
        if run.forced:  # fed in one pass, like a draft the model is sure to confirm
            run.draft = run.forced[:room]
        elif run.cfg.temperature <= 0 and not run.healing and run.cfg.draft_tokens:
            run.draft = lookup_draft(run.prompt + run.tokens, min(run.cfg.draft_tokens, room))
        feed = [token, *run.draft]
        out, run.past = self._forward(feed, run.past, len(run.in_kv), all_logits=bool(run.draft))
        run.in_kv += feed
        run.rows = list(out)  # rows[i + 1] follows draft[i]
        run.passes += 1

    @property
    def healer(self) -> Healer:
        """Return the token-healing index of this bundle's vocabulary."""
        return self.tokenizer.healer

    def _constrain(self, logits: np.ndarray, remaining: bytes) -> np.ndarray:
        """Mask logits to tokens that fit the bytes healing still has to produce."""
        if not remaining:  # healing is done: the logits as they are
            return logits
        allowed = self.healer.allowed(remaining)
        if not len(allowed):
            return logits
        masked = np.full_like(logits, -np.inf)
        masked[allowed] = logits[allowed]
        return masked

    # ---------------------------------------------------------------- worker thread
    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run `fn(*args, **kwargs)` on the engine's own worker thread."""
        return self._worker.submit(fn, *args, **kwargs)

    def close(self) -> None:
        """Stop the worker thread and drop cached KV."""
        self._worker.shutdown(wait=False, cancel_futures=True)
        self.cache.clear()
