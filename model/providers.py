"""Choose ONNX Runtime execution providers and session options for a `device` setting."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import onnxruntime as ort

from jpilot.model.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Placement:
    """Where tensors live for IO binding: ORT's device type name and device id."""

    device_type: str  # "cpu" or "cuda", as OrtValue and IOBinding spell it
    device_id: int  # GPU ordinal; 0 on CPU


def physical_cores() -> int:
    """Return the number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def provider_list(device: str, device_id: int = 0) -> list[Any]:
    """Return the providers to ask ORT for; raise ModelError if `device` cannot be had."""
    if device not in DEVICES:
        raise ModelError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise ModelError(
            "device 'cuda' was asked for, but this onnxruntime has no CUDA provider; "
            "install the GPU build (`pip uninstall onnxruntime && pip install 'jpilot[gpu]'`) "
            "or set device to 'auto' or 'cpu'"
        )
    if device == "cpu" or not has_cuda:
        return ["CPUExecutionProvider"]
    cuda_options = {
        "device_id": device_id,
        # Let cuDNN pick the fastest kernels once, and copy on a separate stream.
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "do_copy_in_default_stream": True,
    }
    return [("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"]


def session_options(threads: int = 0) -> ort.SessionOptions:
    """Return session options: all graph optimizations, one intra-op thread per core."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only; ORT warnings would go to the LSP's stderr
    return opts


def create_session(model_path: str, device: str, threads: int = 0) -> ort.InferenceSession:
    """Create an InferenceSession for `device`, falling back to CPU under "auto"."""
    providers = provider_list(device)
    try:
        session = ort.InferenceSession(model_path, session_options(threads), providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise ModelError(
            f"ONNX Runtime could not load {model_path}: {exc}. The file may be corrupt or from "
            "an incompatible exporter; re-export it with `jpilot model export`"
        ) from exc
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ModelError(
            "device 'cuda' was asked for, but ONNX Runtime could not start CUDA (no GPU visible, "
            "or CUDA/cuDNN libraries missing); check `nvidia-smi`, or set device to 'auto'"
        )
    return session


def placement(session: ort.InferenceSession, device_id: int = 0) -> Placement:
    """Return where IO binding should keep tensors for the provider the session really uses."""
    if session.get_providers()[0] == "CUDAExecutionProvider":
        return Placement("cuda", device_id)
    return Placement("cpu", 0)
