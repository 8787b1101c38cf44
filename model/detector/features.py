"""Per-token features of a whole file for the bug detector: the GPT-J's last hidden state and
its surprisal.

`FeatureModel` opens the bundle's model.onnx in a session of its own, with the final layer
norm's output (the hidden state the lm_head reads) added as a graph output in memory; the
file on disk is untouched, so the bundle's checksum holds. A file longer than the model's
context is fed in the windows of `detector_windows` (each after the first overlaps the one
before by a quarter), and every token's features come from the window that first scores it,
as `Engine.score_detail` does.

Features of token i (i >= 1): the hidden state at i (it has read token i), the log-prob of
token i, its gap to the model's top choice (both in bits), and the entropy of the
prediction of token i (bits). Token 0 gets zeros.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from jpilot.model.bundle import Bundle
from jpilot.model.decode import CancelToken, cancelled
from jpilot.model.errors import ModelError
from jpilot.model.graph import KEEP_INPUT
from jpilot.model.kv import ORT_TO_NUMPY
from jpilot.model.providers import session_options
from jpilot.model.scoring import CancelledError
from jpilot.model.static_kv import STATIC_INPUTS

LOG2 = float(np.log(2))
N_SURPRISAL = 3  # logp bits, gap bits, entropy bits


@dataclass
class FileFeatures:
    """A file's tokens and their features."""

    ids: list[int]
    offsets: list[tuple[int, int]]  # character span of each token
    hidden: np.ndarray  # [N, d] float32
    surprisal: np.ndarray  # [N, N_SURPRISAL] float32

    def token_at(self, offset: int) -> int:
        """Return the index of the token holding character `offset`."""
        if not hasattr(self, "_begins"):
            self._begins = [a for a, _b in self.offsets]
        return max(bisect_right(self._begins, offset) - 1, 0)


def hidden_output(graph) -> str:
    """Return the name of the tensor the lm_head reads: the final layer norm's output."""
    for node in graph.node:
        if node.name == "logits_keep_slice":  # graph.add_logits_to_keep put it in front
            return node.input[0]
    norms = [node for node in graph.node if node.op_type == "LayerNormalization"]
    if not norms:
        raise ModelError("the bundle's model.onnx has no final layer norm; re-export it")
    return norms[-1].output[0]


def detector_windows(n: int, window: int) -> list[tuple[int, int, int]]:
    """Return (begin, done, end): features of tokens done..end-1 from ids[begin:end].

    Each window after the first starts a quarter window back (scoring.windows goes back
    half a window; a quarter costs a third less and every token still has context).
    """
    out, done = [], 1
    while done < n:
        begin = 0 if done == 1 else max(0, done - window // 4)
        end = min(begin + window, n)
        out.append((begin, done, end))
        done = end
    return out


class FeatureModel:
    """The bundle's GPT-J run whole-sequence, returning hidden states and logits."""

    def __init__(self, bundle: Bundle, threads: int = 0) -> None:
        import onnx

        model = onnx.load_model(str(bundle.onnx_path), load_external_data=False)
        self.hidden_name = hidden_output(model.graph)
        hidden_dim = bundle.manifest.n_head * bundle.manifest.head_dim
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(self.hidden_name, onnx.TensorProto.FLOAT, None)
        )
        opts = session_options(threads)
        opts.add_session_config_entry(
            "session.model_external_initializers_file_folder_path", str(bundle.path)
        )
        try:
            self.session = ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT's own error types
            raise ModelError(f"could not open {bundle.onnx_path} for the detector: {exc}") from exc
        self.tokenizer = bundle.tokenizer
        self.n_positions = bundle.manifest.n_positions
        self.hidden_dim = hidden_dim
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.static = all(n in inputs for n in STATIC_INPUTS)
        self.past = [(n, inputs[n]) for n in inputs if n.startswith("past_key_values.")]
        self.id_dtype = ORT_TO_NUMPY[inputs["input_ids"].type]
        self.has_keep = KEEP_INPUT in inputs

    def forward(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Return logits [S, V] and hidden states [S, d] of `ids` fed from position 0."""
        n = len(ids)
        feeds: dict[str, np.ndarray] = {"input_ids": np.asarray([ids], dtype=self.id_dtype)}
        if self.static:
            feeds["seqlens_k"] = np.array([n - 1], dtype=np.int32)
            feeds["total_sequence_length"] = np.array(n, dtype=np.int32)
        else:
            feeds["attention_mask"] = np.ones((1, n), dtype=np.int64)
            feeds["position_ids"] = np.arange(n, dtype=np.int64)[None, :]
        if self.has_keep:
            feeds[KEEP_INPUT] = np.array([n], dtype=np.int64)
        length = self.n_positions + 1 if self.static else 0
        for name, info in self.past:
            shape = [1, info.shape[1], length, info.shape[3]]
            feeds[name] = np.zeros(shape, dtype=ORT_TO_NUMPY[info.type])
        logits, hidden = self.session.run(["logits", self.hidden_name], feeds)
        return logits[0], hidden[0].astype(np.float32)

    def features(self, text: str, cancel: CancelToken | None = None) -> FileFeatures:
        """Return the features of every token of `text` (see the module docstring)."""
        ids, offsets = self.tokenizer.encode_offsets(text)
        n = len(ids)
        hidden = np.zeros((n, self.hidden_dim), dtype=np.float32)
        surprisal = np.zeros((n, N_SURPRISAL), dtype=np.float32)
        first = True
        for begin, done, end in detector_windows(n, self.n_positions):
            if cancelled(cancel):
                raise CancelledError("scoring was cancelled")
            logits, h = self.forward(ids[begin:end])
            lo = 0 if first else done - begin  # the first window gives token 0 its state too
            hidden[begin + lo : end] = h[lo:]
            first = False
            z = logits[done - begin - 1 : end - begin - 1]  # predicts ids[done:end]
            z = z - z.max(-1, keepdims=True)
            p = np.exp(z)
            total = p.sum(-1)
            log_total = np.log(total)
            actual = z[np.arange(len(z)), np.asarray(ids[done:end])] - log_total
            entropy = log_total - (p * z).sum(-1) / total
            surprisal[done:end] = np.stack([actual, -log_total - actual, entropy], -1) / LOG2
        return FileFeatures(list(ids), [tuple(o) for o in offsets], hidden, surprisal)
