"""Read, validate and write a model bundle: `model.onnx`, `tokenizer.json`, `jpilot.json`.

A bundle is a folder, and the engine reads nothing else. Validation turns every way a
bundle can be broken (missing files, wrong checksum, external data outside the folder,
an architecture jpilot cannot serve) into a ModelError that says how to fix it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jpilot.model import verified
from jpilot.model.errors import ModelError
from jpilot.model.families import FAMILIES
from jpilot.model.manifest_checks import check_values
from jpilot.model.tokenizer import FIM_ORDERS, FimTokens, Tokenizer

MANIFEST = "jpilot.json"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "MODEL_CARD.md"
FORMAT_VERSION = 1
MAX_TOKENIZER_BYTES = 64 << 20  # real ones are 1-20 MB (a 250k vocabulary is about 17 MB)
HOW_TO_GET_ONE = (  # said by the server and by the CLI, so it names both ways to the default
    "pull one with `jpilot model pull Salesforce/codegen-350M-mono`, export one with "
    "`jpilot model export HF_CHECKPOINT_DIR BUNDLE_DIR`, or use the embedded default "
    "(leave the editor's model.path setting empty; on the command line, drop --bundle)"
)


@dataclass
class Manifest:
    """The contents of `jpilot.json`: what the engine needs to know about the model."""

    architecture: str  # the family (families.FAMILIES); CodeGen is converted to "gptj"
    n_layer: int  # transformer blocks
    n_head: int  # attention heads per block
    head_dim: int  # width of one head; n_embd = n_head * head_dim
    rotary_dim: int  # dims of each head that get rotary position embedding (0: learned)
    vocab_size: int  # rows of the output logits
    n_positions: int  # longest sequence the model was built for
    eos_token_id: int | None  # end-of-text id, stops generation
    fim: dict[str, int] | None  # {"prefix", "suffix", "middle"} ids, or None without FIM
    dtype: str  # "fp32", "fp16", "int8" (dynamic int8 weights) or "int4" (4-bit weight blocks)
    source: str  # the checkpoint it was exported from
    onnx_sha256: str  # sha256 of model.onnx, checked on load
    external_data: list[str] = field(default_factory=list)  # external-data files, if any
    # sha256 of each external-data file, checked on load like onnx_sha256
    external_data_sha256: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION  # manifest format version
    created_by: str = ""  # jpilot version that wrote it
    fim_order: str = "psm"  # FIM layout the model was trained on: "psm" or "spm"
    # what `jpilot model eval --abilities` measured (jpilot.model.abilities): score -> value;
    # empty for a bundle never evaluated, which turns no model-written feature on by default
    abilities: dict[str, float] = field(default_factory=dict)
    # the optional bug detector (`jpilot model train-detector`): {"file", "sha256",
    # "threshold", "kinds", "scores"}; empty when the bundle has none (surprisal hints then)
    detector: dict[str, Any] = field(default_factory=dict)

    @property
    def fim_tokens(self) -> FimTokens | None:
        """Return the FIM ids and order as a FimTokens, or None."""
        return FimTokens(**self.fim, order=self.fim_order) if self.fim else None


@dataclass
class Bundle:
    """A validated bundle folder."""

    path: Path
    manifest: Manifest
    tokenizer: Tokenizer

    @property
    def onnx_path(self) -> Path:
        """Return the path of model.onnx."""
        return self.path / ONNX_FILE


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    """Return the JSON object in `path`; raise ModelError saying `what` is wrong and `fix`."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{what} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"{what} must hold a JSON object; {fix}")
    return raw


def read_manifest(folder: Path) -> Manifest:
    """Parse and check `jpilot.json` in a bundle folder."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelError(f"model bundle {folder} has no {MANIFEST}; {HOW_TO_GET_ONE}")
    raw = read_json_object(path, str(path), "re-export the bundle")
    check_values(path, raw)
    arch = raw.get("architecture")
    if arch not in FAMILIES:
        raise ModelError(
            f"model bundle {folder} is architecture {arch!r}, but jpilot serves "
            f"{', '.join(FAMILIES)}; export or pull a checkpoint of one of those"
        )
    if raw.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise ModelError(f"{path} was written by a newer jpilot; upgrade jpilot")
    if raw.get("fim_order", "psm") not in FIM_ORDERS:
        raise ModelError(
            f"{path} has fim_order {raw['fim_order']!r}; it must be one of {', '.join(FIM_ORDERS)}"
        )
    abilities = raw.get("abilities", {})
    if not isinstance(abilities, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in abilities.values()
    ):
        raise ModelError(
            f"{path}: abilities must map score names to numbers; "
            "run `jpilot model eval --abilities --record` on the bundle again"
        )
    if not isinstance(raw.get("detector", {}), dict):
        raise ModelError(
            f"{path}: detector must be an object; run `jpilot model train-detector` again"
        )
    known = set(Manifest.__dataclass_fields__)
    try:
        return Manifest(**{k: v for k, v in raw.items() if k in known})
    except TypeError as exc:
        raise ModelError(f"{path} is incomplete ({exc}); re-export the bundle") from exc


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write `jpilot.json` into a bundle folder."""
    text = json.dumps(asdict(manifest), indent=2, sort_keys=True)
    (folder / MANIFEST).write_text(text + "\n", encoding="utf-8")


def external_data_files(onnx_path: Path) -> list[str]:
    """List the external-data locations an ONNX file refers to, without loading the data."""
    import onnx

    try:
        model = onnx.load_model(str(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(
            f"{onnx_path} is not a readable ONNX model ({exc}); re-export the bundle"
        ) from exc
    locations: set[str] = set()
    for tensor in _all_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
    return sorted(locations)


def _all_tensors(graph: Any) -> Any:
    """Yield the initializers and constant-node tensors of a graph and its subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def check_external_data(folder: Path, locations: list[str]) -> None:
    """Refuse external-data paths that are absolute or leave the bundle folder."""
    root = folder.resolve()
    for location in locations:
        target = (root / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(root):
            raise ModelError(
                f"model bundle {folder} refers to external data {location!r} outside the "
                "bundle folder; refusing to load it. Re-export the bundle so that all its "
                "files live inside the folder"
            )
        if not target.is_file():
            raise ModelError(
                f"model bundle {folder} is missing its external data file {location!r}; "
                "copy the whole bundle folder or re-export it"
            )


def check_external_sha256(folder: Path, locations: list[str], recorded: dict[str, str]) -> None:
    """Refuse external-data files whose sha256 is not the one the manifest records."""
    for location in locations:
        expected = recorded.get(location)
        if expected is None:
            raise ModelError(
                f"model bundle {folder}: {MANIFEST} records no sha256 for its external data "
                f"file {location!r}; re-export the bundle with this jpilot"
            )
        actual = verified.digest(folder / location, sha256_file)
        if actual != expected:
            raise ModelError(
                f"{folder / location} does not match the sha256 in {MANIFEST} "
                f"({actual[:12]}… != {expected[:12]}…): the file is corrupt or was changed; "
                "copy the bundle again or re-export it"
            )


def load_bundle(folder: str | Path, verify: bool = True) -> Bundle:
    """Validate a bundle folder and return it; raise ModelError saying how to fix problems."""
    folder = Path(folder).expanduser()
    if folder.is_file():
        raise ModelError(f"model bundle {folder} is a file, not a bundle folder; {HOW_TO_GET_ONE}")
    if not folder.is_dir():
        raise ModelError(f"model bundle {folder} does not exist; {HOW_TO_GET_ONE}")
    manifest = read_manifest(folder)
    onnx_path = folder / ONNX_FILE
    if not onnx_path.is_file():
        raise ModelError(f"model bundle {folder} has no {ONNX_FILE}; {HOW_TO_GET_ONE}")
    tok_path = folder / TOKENIZER_FILE
    if not tok_path.is_file():
        raise ModelError(
            f"model bundle {folder} has no {TOKENIZER_FILE}; re-export it with "
            "`jpilot model export SRC DST` from a checkpoint that has a tokenizer"
        )
    if verify:
        actual = verified.digest(onnx_path, sha256_file)
        if actual != manifest.onnx_sha256:
            raise ModelError(
                f"{onnx_path} does not match the sha256 in {MANIFEST} "
                f"({actual[:12]}… != {manifest.onnx_sha256[:12]}…): the file is corrupt or "
                "was changed; copy the bundle again or re-export it"
            )
    locations = external_data_files(onnx_path)
    check_external_data(folder, locations)
    if verify:
        check_external_sha256(folder, locations, manifest.external_data_sha256)
    if tok_path.stat().st_size > MAX_TOKENIZER_BYTES:
        raise ModelError(
            f"model bundle {folder}: {TOKENIZER_FILE} is over {MAX_TOKENIZER_BYTES >> 20} MiB, "
            "far more than any real tokenizer; the file is not what it should be: re-export it"
        )
    tokenizer = Tokenizer(tok_path, manifest.eos_token_id, manifest.fim_tokens)
    if tokenizer.vocab_size > manifest.vocab_size:
        raise ModelError(
            f"model bundle {folder}: tokenizer has {tokenizer.vocab_size} tokens but the "
            f"model only {manifest.vocab_size}; the tokenizer belongs to another model"
        )
    return Bundle(folder, manifest, tokenizer)
