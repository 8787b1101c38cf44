"""`jpilot model export`: Hugging Face checkpoint folder -> jpilot bundle.

Families: GPT-J, GPT-Neo, GPT-2 and gpt_bigcode (model/families/). Stages: the
static-KV graph built tensor by tensor (model/static_kv.py), or for a GPT-J whose rotary
width GroupQueryAttention cannot take, optimum-onnx's export (`text-generation-with-past`)
then ONNX Runtime dynamic int8 quantization (CPU) or fp16 conversion (GPU); then the
tokenizer, the manifest and a model-card stub. The bundle
is written to a temporary folder beside DST and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jpilot.model.bundle import (
    CARD_FILE,
    MANIFEST,
    ONNX_FILE,
    TOKENIZER_FILE,
    Manifest,
    external_data_files,
    load_bundle,
    sha256_file,
    write_manifest,
)
from jpilot.model.errors import ModelError
from jpilot.model.families import describe, read_dims
from jpilot.model.graph import add_logits_to_keep
from jpilot.model.static_kv import KV_CACHES, export_static, resolve_kv_cache
from jpilot.model.tokenizer import FIM_ORDERS
from jpilot.model.version import package_version

FIM_NAMES = {  # spellings of the FIM markers across tokenizers, ours first
    "prefix": ("<fim_prefix>", "<|fim_prefix|>", "<fim-prefix>"),
    "suffix": ("<fim_suffix>", "<|fim_suffix|>", "<fim-suffix>"),
    "middle": ("<fim_middle>", "<|fim_middle|>", "<fim-middle>"),
}
EOS_NAMES = ("<|endoftext|>", "</s>", "<eos>")
QUANTIZATIONS = ("int8", "int4")
INT4_BLOCK = 32  # weights per 4-bit block, each with its own fp32 scale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model export` arguments."""
    parser.add_argument(
        "src", type=Path, help="Hugging Face checkpoint folder (gptj, gpt_neo, gpt2, gpt_bigcode)"
    )
    parser.add_argument("dst", type=Path, help="bundle folder to write")
    parser.add_argument(
        "--dtype",
        choices=["fp32", "fp16"],
        default="fp32",
        help="fp16 halves size and suits the CUDA provider (default fp32)",
    )
    parser.add_argument(
        "--quantize",
        choices=list(QUANTIZATIONS),
        default=None,
        help="CPU serving: int8 = per-channel int8 weights (dynamic quantization); int4 = "
        "4-bit weight blocks (MatMulNBits), half the weight bytes per decode step",
    )
    parser.add_argument("--no-fim", action="store_true",
                        help="declare no FIM tokens: serve prefix-only prompts")  # fmt: skip
    parser.add_argument("--fim-order", choices=FIM_ORDERS, default=None,
                        help="the FIM layout the model was trained on (default: the config's "
                        "fim_order, else psm, as StarCoder and SantaCoder prompt)")  # fmt: skip
    parser.add_argument(
        "--kv-cache", choices=KV_CACHES, default="auto",
        help="static: build the graph with ORT GroupQueryAttention and an in-place KV buffer "
        "(no per-step cache copy; a GPT-J's rotary_dim must be a multiple of 16; on CUDA use "
        "--dtype fp16); concat: optimum's export (GPT-J only); auto (default): static where "
        "it can",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an existing DST")


def run(args: argparse.Namespace) -> int:
    """Run the export from parsed arguments."""
    export_bundle(args.src, args.dst, args.dtype, args.quantize, args.force,
                  fim=not args.no_fim, kv_cache=args.kv_cache,
                  fim_order=args.fim_order)  # fmt: skip
    return 0


def _step(n: int, total: int, text: str) -> None:
    """Print one progress line to stderr."""
    print(f"[{n}/{total}] {text}", file=sys.stderr, flush=True)


def read_config(src: Path) -> dict[str, Any]:
    """Read and check a checkpoint's config.json: a family jpilot serves, options it can."""
    path = src / "config.json"
    if not path.is_file():
        raise ModelError(f"{src} has no config.json; point export at a Hugging Face checkpoint")
    config = json.loads(path.read_text(encoding="utf-8"))
    kind = config.get("model_type")
    if kind == "codegen":
        raise ModelError(
            f"{src} is a CodeGen checkpoint; convert it first with "
            f"`jpilot model convert-codegen {src} GPTJ_DIR`, then export GPTJ_DIR"
        )
    try:
        read_dims(config)
    except ModelError as exc:
        raise ModelError(f"{src}: {exc}") from exc
    return config


def export_bundle(
    src: str | Path,
    dst: str | Path,
    dtype: str = "fp32",
    quantize: str | None = None,
    force: bool = False,
    fim: bool = True,
    kv_cache: str = "auto",
    source: str | None = None,
    upstream: dict[str, str] | None = None,
    fim_order: str | None = None,
) -> Path:
    """Export a checkpoint folder to a validated bundle at `dst`; return its path.

    `source` names the checkpoint in the manifest (default: its config's name or folder);
    `upstream` rows (repo, revision, licence, export options) go into MODEL_CARD.md.
    """
    src, dst = Path(src), Path(dst)
    if dtype == "fp16" and quantize:
        raise ModelError(f"choose either --dtype fp16 (GPU) or --quantize {quantize} (CPU), "
                         "not both")  # fmt: skip
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ModelError(f"--quantize takes {' or '.join(QUANTIZATIONS)}, not {quantize!r}")
    config = read_config(src)
    kv_cache = resolve_kv_cache(kv_cache, config)
    if dst.exists() and any(dst.iterdir()) and not force:
        raise ModelError(f"{dst} already exists and is not empty; pass --force to replace it")
    total = 5
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=f".{dst.name}.") as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "bundle"
        out.mkdir()
        t0 = time.monotonic()
        if kv_cache == "static":  # tensor by tensor: checkpoints bigger than RAM export too
            _step(1, total, f"building the static-KV graph of {src} (GroupQueryAttention)")
            _step(2, total, _convert_note(dtype, quantize) + ", tensor by tensor")
            export_static(src, out, dtype, quantize)
        else:
            _step(1, total, f"exporting {src} with optimum-onnx (text-generation-with-past)")
            _optimum_export(src, raw)
            _step(2, total, _convert_note(dtype, quantize))
            _convert(raw, out, dtype, quantize)
        _step(3, total, "writing tokenizer.json")
        tokenizer = _write_tokenizer(src, out / TOKENIZER_FILE)
        _step(4, total, "writing jpilot.json and MODEL_CARD.md")
        manifest = _manifest(src, out, config, tokenizer, quantize or dtype, source)
        if not fim:  # the tokenizer may have FIM tokens the model never learned to use
            manifest.fim = None
        manifest.fim_order = fim_order or manifest.fim_order
        manifest.external_data_sha256 = {n: sha256_file(out / n) for n in manifest.external_data}
        write_manifest(out, manifest)
        _write_card(out, manifest, upstream)
        _step(5, total, "validating the bundle")
        load_bundle(out)
        if dst.exists():
            shutil.rmtree(dst)
        out.rename(dst)
    size = sum(f.stat().st_size for f in dst.iterdir()) / 2**20
    print(f"wrote {dst} ({size:.1f} MiB, {time.monotonic() - t0:.1f} s)", file=sys.stderr)
    return dst


def _optimum_export(src: Path, raw: Path) -> None:
    """Export with optimum-onnx into `raw` (model.onnx and maybe model.onnx_data)."""
    try:
        from optimum.exporters.onnx import main_export
    except ImportError as exc:
        raise ModelError(
            "export needs the training extra: pip install torch==2.13.0 && "
            "pip install -e '.[train]'"
        ) from exc
    main_export(
        str(src),
        str(raw),
        task="text-generation-with-past",
        do_validation=False,
        local_files_only=True,
    )


def _convert_note(dtype: str, quantize: str | None) -> str:
    """Describe stage 2 for the progress line."""
    if quantize == "int4":
        return f"quantizing weights to 4 bits in blocks of {INT4_BLOCK} (MatMulNBits)"
    if quantize:
        return "quantizing weights to int8 (ONNX Runtime dynamic quantization)"
    return "converting to fp16" if dtype == "fp16" else "keeping fp32 weights"


def _convert(raw: Path, out: Path, dtype: str, quantize: str | None) -> None:
    """Write out/model.onnx from the raw export: last-K logits, then int8/int4 or fp16."""
    import onnx

    model = add_logits_to_keep(onnx.load_model(str(raw / ONNX_FILE)))
    if quantize == "int4":
        _save(quantize_int4(model), out / ONNX_FILE)
        return
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        staged = raw / "staged.onnx"
        _save(model, staged)
        # Per-channel int8 weights on every MatMul; activations are quantized per call.
        # ORT's u8s8 kernels use AVX512-VNNI (and AMX where present) for these.
        quantize_dynamic(
            staged,
            out / ONNX_FILE,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            use_external_data_format=model.ByteSize() > 2**31 - 2**20,
        )
        return
    if dtype == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # keep_io_types=False: the KV cache itself is fp16, halving its memory on the GPU.
        model = convert_float_to_float16(model, keep_io_types=False, disable_shape_infer=True)
    _save(model, out / ONNX_FILE)


def quantize_int4(model: Any) -> Any:
    """Return `model` with every constant-weight MatMul as a 4-bit MatMulNBits.

    Symmetric 4-bit weights in blocks of INT4_BLOCK along the input dimension, one fp32
    scale per block (round to nearest). Accuracy level 4 lets ONNX Runtime's CPU kernel
    quantize the activations to int8 and use int8 dot products (VNNI/AMX), so a decode
    step reads half the weight bytes of the int8 graph. The lm_head is quantized too.
    """
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as exc:  # its onnx-ir dependency comes with the training extra
        raise ModelError(
            f"--quantize int4 needs onnx-ir: pip install -e '.[train]' ({exc})"
        ) from exc

    quantizer = MatMulNBitsQuantizer(
        model, bits=4, block_size=INT4_BLOCK, is_symmetric=True, accuracy_level=4
    )
    quantizer.process()
    return quantizer.model.model


def _save(model: Any, path: Path) -> None:
    """Save an ONNX model, with external data beside it when it is over protobuf's 2 GB."""
    import onnx

    big = model.ByteSize() > 2**31 - 2**20
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=big,
        all_tensors_to_one_file=True,
        location=f"{path.name}.data",
    )


def _write_tokenizer(src: Path, dest: Path) -> Any:
    """Copy or build tokenizer.json for the bundle; return the loaded `tokenizers` object."""
    from tokenizers import Tokenizer as HFTokenizer

    if (src / TOKENIZER_FILE).is_file():
        shutil.copyfile(src / TOKENIZER_FILE, dest)
    else:  # slow-tokenizer files only (vocab.json + merges.txt): let transformers build it
        try:
            from transformers import AutoTokenizer

            AutoTokenizer.from_pretrained(str(src), local_files_only=True).backend_tokenizer.save(
                str(dest)
            )
        except Exception as exc:
            raise ModelError(
                f"{src} has no usable tokenizer ({exc}); add a tokenizer.json to the checkpoint"
            ) from exc
    return HFTokenizer.from_file(str(dest))


def _find_id(tokenizer: Any, names: tuple[str, ...]) -> int | None:
    """Return the id of the first of `names` the tokenizer knows."""
    for name in names:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return int(token_id)
    return None


def _manifest(
    src: Path, out: Path, config: dict, tokenizer: Any, dtype: str, source: str | None = None
) -> Manifest:
    """Build the manifest from the checkpoint config and the written files."""
    fim = {k: _find_id(tokenizer, names) for k, names in FIM_NAMES.items()}
    eos = config.get("eos_token_id")
    if eos is None:
        eos = _find_id(tokenizer, EOS_NAMES)
    dims = read_dims(config)
    return Manifest(
        architecture=dims.family,
        n_layer=dims.n_layer,
        n_head=dims.n_head,
        head_dim=dims.head_dim,
        rotary_dim=dims.rotary_dim,
        vocab_size=dims.vocab_size,
        n_positions=dims.n_positions,
        eos_token_id=None if eos is None else int(eos),
        fim={k: v for k, v in fim.items() if v is not None} if all(fim.values()) else None,
        fim_order=str(config.get("fim_order") or "psm"),  # written by `jpilot model train`
        dtype=dtype,
        source=source or str(config.get("_name_or_path") or src.resolve().name),
        onnx_sha256=sha256_file(out / ONNX_FILE),
        external_data=external_data_files(out / ONNX_FILE),
        created_by=f"jpilot {package_version()}",
    )


def _write_card(out: Path, m: Manifest, upstream: dict[str, str] | None = None) -> None:
    """Write a MODEL_CARD.md stub describing the exported model (and where it came from)."""
    rows = "".join(f"| {k} | {v} |\n" for k, v in (upstream or {}).items())
    origin = f"\n## Upstream\n\n| field | value |\n|---|---|\n{rows}" if rows else ""
    how = "`jpilot model pull`" if upstream else "`jpilot model export`"
    text = f"""# Model card: {m.source}

Exported by {m.created_by} with {how}.

| field | value |
|---|---|
| architecture | {describe(m)} |
| vocabulary | {m.vocab_size} |
| context | {m.n_positions} tokens |
| dtype | {m.dtype} |
| fill-in-the-middle | {"yes" if m.fim else "no"} |
| sha256 of model.onnx | `{m.onnx_sha256}` |
{origin}
Describe the training data, licences, evaluation and limitations here
(see {MANIFEST} for the machine-readable fields).
"""
    (out / CARD_FILE).write_text(text, encoding="utf-8")
