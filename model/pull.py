"""`jpilot model pull REPO_ID`: a Hugging Face model repo -> a bundle in the store.

Families: GPT-J, CodeGen, GPT-Neo, GPT-2 and gpt_bigcode (StarCoder family). Steps:
fetch config.json and the small tokenizer and README files, and refuse any other
architecture, or options jpilot cannot serve, before a weight byte is downloaded; fetch the weights
(safetensors when the repo has them, else pytorch_model*.bin, which transformers loads
with `torch.load(weights_only=True)` in the export step only: serving never unpickles);
convert CodeGen to GPT-J; export and quantize with `export_bundle`, which builds in a
temporary folder and renames it into place at the end. huggingface_hub does the
downloading, so HF_TOKEN, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE work as for any
Hugging Face tool, its progress bars show, and a download cut short resumes next time.
"""

from __future__ import annotations

import argparse
import errno
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jpilot.model.bundle import read_json_object
from jpilot.model.convert import TOKENIZER_FILES
from jpilot.model.errors import ModelError
from jpilot.model.families import FAMILIES, family, read_dims
from jpilot.model.store import models_dir, store_name
from jpilot.model.tokenizer import FIM_ORDERS

SUPPORTED = (*FAMILIES, "codegen")  # config.json model_type values pull can serve
# small files fetched first: the architecture check needs only config.json
META_FILES = ["config.json", *TOKENIZER_FILES, "README.md"]
SAFETENSORS = ["*.safetensors", "*.safetensors.index.json"]
PICKLES = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]
TOP_LEVEL_ONLY = ["*/*"]  # ignore_patterns: no weights from subfolders (onnx/, flax/ ...)
INT4_FROM = 1e9  # parameters from which a CPU pull defaults to int4 instead of int8
TOTAL_STEPS = 4
NETWORK_MODULES = ("requests", "urllib3", "httpx", "httpcore")  # whose errors mean "cut off"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model pull` arguments."""
    parser.add_argument("repo_id", help="Hugging Face repo, e.g. bigcode/tiny_starcoder_py")
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument("--out", type=Path, help=f"bundle folder (default: in {models_dir()})")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="where it will run; picks the default format: cpu -> int8 (int4 "
                        "from 1B parameters), cuda -> fp16 (default: cuda if this "
                        "onnxruntime has it, else cpu)")  # fmt: skip
    parser.add_argument("--quantize", choices=["int8", "int4"], default=None,
                        help="CPU weight format (overrides the device's default)")  # fmt: skip
    parser.add_argument("--dtype", choices=["fp32", "fp16"], default=None,
                        help="unquantized: fp16 for GPUs, fp32 for exact parity")  # fmt: skip
    parser.add_argument("--fim-order", choices=FIM_ORDERS, default=None,
                        help="the FIM layout the model was trained on, where its config does "
                        "not say (default psm, as StarCoder prompts)")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an installed bundle")


def run(args: argparse.Namespace) -> int:
    """Pull, convert and export the repo; say how to use the result."""
    dst = pull(args.repo_id, args.revision, args.out, args.quantize, args.dtype, args.device,
               args.force, args.fim_order)  # fmt: skip
    name = dst.name if dst.parent == models_dir() else str(dst)
    print(f'done: set the model.path setting to "{name}" (or pass --bundle {name})')
    return 0


def _step(n: int, text: str) -> None:
    """Print one progress line to stderr."""
    print(f"[pull {n}/{TOTAL_STEPS}] {text}", file=sys.stderr, flush=True)


def default_device() -> str:
    """Return "cuda" when this onnxruntime has the CUDA provider, else "cpu"."""
    import onnxruntime as ort

    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"


def estimate_parameters(config: dict[str, Any]) -> int:
    """Estimate a model's parameter count from its config (blocks + embeddings)."""
    if config.get("model_type") == "codegen":  # the same shapes as the GPT-J it becomes
        config = {**config, "model_type": "gptj"}
    return read_dims(config).parameters


def choose_format(
    config: dict[str, Any], device: str, dtype: str | None, quantize: str | None
) -> tuple[str, str | None]:
    """Return (dtype, quantize): what was asked for, else the device's default."""
    if quantize or dtype:
        return dtype or "fp32", quantize
    if device == "cuda":
        return "fp16", None
    return "fp32", "int4" if estimate_parameters(config) >= INT4_FROM else "int8"


def pull(
    repo_id: str,
    revision: str | None = None,
    out: str | Path | None = None,
    quantize: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    force: bool = False,
    fim_order: str | None = None,
) -> Path:
    """Download `repo_id`, convert and export it to a bundle; return the bundle folder."""
    t0 = time.monotonic()
    _check_extra()
    device = device or default_device()
    _step(1, f"fetching the config and tokenizer of {repo_id}")
    snapshot = _download(repo_id, revision, META_FILES)
    sha = snapshot.name  # snapshots/<commit sha>: the revision actually resolved
    config = _read_config(snapshot, repo_id, sha)
    arch = config.get("model_type")
    if arch not in SUPPORTED:
        raise ModelError(f"{repo_id} is a {arch!r} model; jpilot pull supports "
                         f"{', '.join(SUPPORTED)}")  # fmt: skip
    try:
        estimate_parameters(config)  # the family's checks: its options and its keys
    except ModelError as exc:
        raise ModelError(f"{repo_id}: {exc}") from exc
    arch, title = str(arch), family(config).TITLE if arch != "codegen" else ""
    dtype, quantize = choose_format(config, device, dtype, quantize)
    variant = quantize or dtype
    dst = Path(out).expanduser() if out else models_dir() / store_name(repo_id, variant)
    if dst.exists() and any(dst.iterdir()) and not force:
        raise ModelError(f"{dst} already exists; use it, or pass --force to pull it again")
    _step(2, f"fetching the weights of {repo_id} at {sha[:12]}")
    weights = _download(repo_id, sha, SAFETENSORS)
    if not _weight_files(weights):
        weights = _download(repo_id, sha, PICKLES)
    if not _weight_files(weights):
        raise ModelError(
            f"{repo_id} at {sha[:12]} has neither model*.safetensors nor pytorch_model*.bin"
            + (" in the cache (offline: unset HF_HUB_OFFLINE to download them)" if _offline()
               else "; it has no PyTorch weights jpilot can read")
        )  # fmt: skip
    upstream = {
        "repo": repo_id,
        "revision": sha,
        "requested revision": revision or "main",
        "licence": find_licence(weights, config),
        "architecture": "CodeGen, converted to GPT-J" if arch == "codegen" else title,
        "export options": _options(device, dtype, quantize),
    }
    try:
        _export(weights, dst, arch, dtype, quantize, force, repo_id, upstream, fim_order)
    except ModelError:
        raise
    except Exception as exc:  # safetensors' and onnx's write errors are not all OSErrors
        if not (_disk_full(exc) or isinstance(exc, OSError)):
            raise
        if _disk_full(exc):
            raise ModelError(f"the disk is full while writing {dst}; free space or pass "
                             "--out on a bigger disk (nothing was installed)") from exc  # fmt: skip
        raise ModelError(f"cannot write {dst}: {_first_line(exc)}") from exc
    print(f"pulled {repo_id} in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return dst


def _export(
    src: Path, dst: Path, arch: str, dtype: str, quantize: str | None, force: bool,
    repo_id: str, upstream: dict[str, str], fim_order: str | None = None,
) -> None:  # fmt: skip
    """Convert (CodeGen) and export into `dst`; nothing is left at `dst` on failure."""
    from jpilot.model.export import export_bundle

    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=f".{dst.name}.pull.") as tmp:
        if arch == "codegen":
            from jpilot.model.convert import convert_codegen

            _step(3, "converting CodeGen's fused qkv weights to GPT-J's")
            src = convert_codegen(src, Path(tmp) / "gptj")
        else:
            _step(3, f"{arch} checkpoint: no conversion needed")
        _step(4, f"exporting to {dst} ({quantize or dtype})")
        try:
            export_bundle(src, dst, dtype, quantize, force, source=repo_id, upstream=upstream,
                          fim_order=fim_order)  # fmt: skip
        except RuntimeError as exc:  # transformers: weights that do not fit the config
            if "size mismatch" not in str(exc) and "Error(s) in loading" not in str(exc):
                raise
            raise ModelError(f"{repo_id}: weights do not match its config: "
                             f"{_first_line(exc, 'size mismatch')}") from exc  # fmt: skip


def _download(repo_id: str, revision: str | None, patterns: list[str]) -> Path:
    """Fetch the files matching `patterns` with huggingface_hub; return the snapshot folder."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:
        raise ModelError("pull needs the training extra: pip install -e '.[train]'") from exc

    at = f" at revision {revision!r}" if revision else ""
    try:
        folder = snapshot_download(
            repo_id, revision=revision, allow_patterns=patterns, ignore_patterns=TOP_LEVEL_ONLY
        )
    except GatedRepoError as exc:
        raise ModelError(f"{repo_id} is gated: accept its terms on huggingface.co and set "
                         "HF_TOKEN to a token of that account") from exc  # fmt: skip
    except RepositoryNotFoundError as exc:
        raise ModelError(f"no model repo {repo_id!r} on the Hugging Face Hub (if it is "
                         "private, set HF_TOKEN); check the name") from exc  # fmt: skip
    except RevisionNotFoundError as exc:
        raise ModelError(f"{repo_id} has no revision {revision!r}; check --revision") from exc
    except LocalEntryNotFoundError as exc:
        why, fix = ("HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE") if _offline() else (
            "the Hub cannot be reached", "connect to the network")  # fmt: skip
        raise ModelError(
            f"{repo_id}{at} is not in the Hugging Face cache and {why}; {fix} to download "
            "it, or check the name"
        ) from exc
    except HfHubHTTPError as exc:
        raise ModelError(f"download of {repo_id} failed: {_first_line(exc)}") from exc
    except OSError as exc:  # network errors (requests' are OSErrors) and the disk
        if _disk_full(exc):
            raise ModelError(f"the disk is full while downloading {repo_id} to the Hugging "
                             "Face cache; free space, or set HF_HUB_CACHE to a bigger "
                             "disk, and run the same command again") from exc  # fmt: skip
        raise ModelError(f"download of {repo_id} was interrupted ({_first_line(exc)}); run "
                         "the same command again to resume it") from exc  # fmt: skip
    except Exception as exc:  # httpx's and urllib3's network errors are not OSErrors
        if type(exc).__module__.split(".")[0] not in NETWORK_MODULES:
            raise
        raise ModelError(f"download of {repo_id} was interrupted ({_first_line(exc)}); run "
                         "the same command again to resume it") from exc  # fmt: skip
    return Path(folder)


def _check_extra() -> None:
    """Refuse to start a download that the export step could not finish."""
    import importlib.util

    missing = [m for m in ("huggingface_hub", "torch", "transformers", "onnx")
               if importlib.util.find_spec(m) is None]  # fmt: skip
    if missing:
        raise ModelError(f"pull needs {', '.join(missing)}: pip install torch==2.13.0 && "
                         "pip install -e '.[train]'")  # fmt: skip


def _offline() -> bool:
    """Return whether huggingface_hub is in offline mode (HF_HUB_OFFLINE)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _read_config(snapshot: Path, repo_id: str, sha: str) -> dict[str, Any]:
    """Read the repo's config.json, or say why there is none."""
    path = snapshot / "config.json"
    if not path.is_file():
        where = " in the cache (offline: unset HF_HUB_OFFLINE to download it)" if _offline() else ""
        raise ModelError(f"{repo_id} at {sha[:12]} has no config.json{where}; is it a "
                         "Hugging Face transformers model repo?")  # fmt: skip
    return read_json_object(path, f"{repo_id}: config.json", "is it a transformers model repo?")


def _weight_files(folder: Path) -> list[Path]:
    """Return the weight files present in a snapshot folder."""
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")])


def find_licence(snapshot: Path, config: dict[str, Any]) -> str:
    """Return the licence a repo states in its README metadata or config, else a note."""
    readme = snapshot / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        front = re.match(r"---\s*\n(.*?)\n---", text, re.S)
        if front:
            found = re.search(r"^licen[cs]e:\s*(.+)$", front.group(1), re.M)
            if found:
                return found.group(1).strip().strip("'\"")
    for key in ("license", "licence"):
        if config.get(key):
            return str(config[key])
    return "not stated in the repository; check it before use"


def _options(device: str, dtype: str, quantize: str | None) -> str:
    """Describe the export options for the model card."""
    fmt = f"--quantize {quantize}" if quantize else f"--dtype {dtype}"
    return f"{fmt} (for --device {device})"


def _disk_full(exc: BaseException) -> bool:
    """Return whether an error means the disk is full."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
        "No space left on device" in str(exc)
    )


def _first_line(exc: BaseException, containing: str = "") -> str:
    """Return the first line of an error message (the one containing `containing`)."""
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()] or [type(exc).__name__]
    return next((x for x in lines if containing and containing in x), lines[0])
