"""The GPU path, as far as it runs without a GPU: provider selection and an fp16 bundle.

IO binding, the fp16 KV cache and the device-side KV slicer run the same code on CPU and
CUDA; only the Placement differs. These tests run that code on CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jpilot.model import providers
from jpilot.model.engine import Engine, EngineConfig, GenerationConfig
from jpilot.model.errors import ModelError

PROMPT = "class Point:\n    def __init__(self, x, y):\n"


def test_provider_selection_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert providers.provider_list("auto") == ["CPUExecutionProvider"]
    assert providers.provider_list("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ModelError, match="no CUDA provider.*jpilot\\[gpu\\]"):
        providers.provider_list("cuda")
    with pytest.raises(ModelError, match="device must be one of auto, cpu, cuda"):
        providers.provider_list("tpu")


def test_provider_selection_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: available)
    for device in ("auto", "cuda"):
        chosen = providers.provider_list(device, device_id=1)
        assert chosen[0][0] == "CUDAExecutionProvider" and chosen[0][1]["device_id"] == 1
        assert chosen[1] == "CPUExecutionProvider"
    assert providers.provider_list("cpu") == ["CPUExecutionProvider"]


def test_placement_follows_the_provider_in_use() -> None:
    class FakeSession:
        def __init__(self, first: str) -> None:
            self.first = first

        def get_providers(self) -> list[str]:
            return [self.first, "CPUExecutionProvider"]

    assert providers.placement(FakeSession("CUDAExecutionProvider")) == providers.Placement(
        "cuda", 0
    )  # type: ignore[arg-type]
    assert providers.placement(FakeSession("CPUExecutionProvider")) == providers.Placement("cpu", 0)  # type: ignore[arg-type]


def test_session_options_use_every_core() -> None:
    opts = providers.session_options()
    assert opts.intra_op_num_threads == providers.physical_cores()
    assert opts.inter_op_num_threads == 1


def test_fp16_bundle_runs_with_an_fp16_cache(tiny_bundle_fp16: Path, tiny_bundle: Path) -> None:
    import numpy as np

    fp16 = Engine(tiny_bundle_fp16, EngineConfig(device="cpu"))
    assert fp16.bundle.manifest.dtype == "fp16"
    assert fp16.kv_dtype == np.float16
    prompt = fp16.tokenizer.encode(PROMPT)
    cfg = GenerationConfig(max_new_tokens=16)
    cold = fp16.generate(prompt, cfg)
    assert fp16.cache.best_match(prompt)[0] is not None
    # prefix reuse through the fp16 device-side slicer gives the same tokens
    warm = fp16.generate(prompt[:-1] + fp16.tokenizer.encode(" "), cfg)
    assert warm.reused_tokens == len(prompt) - 1
    again = fp16.generate(prompt, cfg)
    assert again.tokens == cold.tokens
    fp32 = Engine(tiny_bundle).generate(prompt, cfg).tokens
    agree = next((i for i, (x, y) in enumerate(zip(cold.tokens, fp32, strict=True)) if x != y), 16)
    assert agree >= 4, f"fp16 diverges from fp32 after {agree} tokens"


CUDA = "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers()


def check_cuda_engine(bundle: Path, cpu_bundle: Path) -> Engine:
    """Generate on CUDA: the cache stays on the GPU, reuse is exact, tokens track the CPU."""
    gpu = Engine(bundle, EngineConfig(device="cuda"))
    assert gpu.where == providers.Placement("cuda", 0)
    prompt = gpu.tokenizer.encode(PROMPT)
    cfg = GenerationConfig(max_new_tokens=16)
    cold = gpu.generate(prompt, cfg)
    entry, _ = gpu.cache.best_match(prompt)
    assert entry is not None and entry.kv[0].device_name().lower() == "cuda"
    warm = gpu.generate(prompt[:-1] + gpu.tokenizer.encode(" "), cfg)
    assert warm.reused_tokens == len(prompt) - 1
    assert gpu.generate(prompt, cfg).tokens == cold.tokens
    cpu = Engine(cpu_bundle).generate(prompt, cfg).tokens
    assert cold.tokens[:4] == cpu[:4]
    return gpu


@pytest.mark.skipif(not CUDA, reason="needs onnxruntime-gpu and a GPU")
def test_cuda_engine_keeps_the_cache_on_the_gpu(tiny_bundle_fp16: Path, tiny_bundle: Path) -> None:
    assert not check_cuda_engine(tiny_bundle_fp16, tiny_bundle).static_kv


@pytest.mark.skipif(not CUDA, reason="needs onnxruntime-gpu and a GPU")
def test_cuda_static_kv_runs_gqa_on_the_gpu(
    tiny_checkpoint_gqa: Path, tiny_bundle_static: Path, tmp_path: Path
) -> None:
    """The GPU format of the static-KV graph: fp16 GQA updating its buffers on the device."""
    from jpilot.model.export import export_bundle

    fp16 = export_bundle(tiny_checkpoint_gqa, tmp_path / "fp16", dtype="fp16", kv_cache="static")
    assert check_cuda_engine(fp16, tiny_bundle_static).static_kv
