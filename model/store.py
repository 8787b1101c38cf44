"""The per-user model store: where `jpilot model pull` puts bundles, and short names for them.

Each pulled model is one bundle folder named `<org>--<name>-<variant>` (variant: int8,
int4, fp16 or fp32) in `user_data_dir("jpilot")/models` (platformdirs; on Linux
`~/.local/share/jpilot/models`, or `$JPILOT_MODELS_DIR` when set). The `model.path`
setting takes a bundle folder or a short name: the folder name, the repo id
(`Salesforce/codegen-350M-mono`) or the bare model name (`codegen-350M-mono`), each
optionally with the variant (`codegen-350M-mono-int8`). `jpilot model list` shows them.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

from jpilot.model.bundle import Manifest, read_manifest
from jpilot.model.errors import ModelError

VARIANTS = ("int8", "int4", "fp16", "fp32")  # the suffixes of a store folder's name
MODELS_DIR_ENV = "JPILOT_MODELS_DIR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model list` arguments."""
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def models_dir() -> Path:
    """Return the folder pulled bundles live in (it may not exist yet)."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("jpilot", appauthor=False)) / "models"


def store_name(repo_id: str, variant: str) -> str:
    """Return the store folder name of a repo id in one variant: `org--name-variant`."""
    return f"{repo_id.strip('/').replace('/', '--')}-{variant}"


@dataclass
class Installed:
    """One bundle in the store."""

    name: str  # folder name, e.g. Salesforce--codegen-350M-mono-int8
    path: Path
    manifest: Manifest


def installed_bundles(root: Path | None = None) -> list[Installed]:
    """Return the complete bundles in the store, by name (temporary folders skipped)."""
    root = models_dir() if root is None else root
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue  # ".<name>.xxxx": an export or pull still running, or one cut short
        try:
            found.append(Installed(folder.name, folder, read_manifest(folder)))
        except ModelError:
            continue
    return found


def _matches(name: str, wanted: str) -> bool:
    """Return whether store folder `name` answers to the short name `wanted`."""
    slug = wanted.strip("/").replace("/", "--")
    stem, _, variant = name.rpartition("-")
    if variant not in VARIANTS:
        stem = name
    return name == slug or stem == slug or name.endswith(f"--{slug}") or stem.endswith(f"--{slug}")


def _looks_like_path(text: str) -> bool:
    """Return whether `text` is meant as a folder rather than a short name or repo id."""
    return (
        Path(text).is_absolute()
        or text.startswith(("~", "."))
        or text.count("/") > 1
        or os.sep != "/"
        and os.sep in text
    )


def resolve_bundle(name_or_path: str | Path) -> Path:
    """Return the bundle folder that a model.path setting names: a folder or a short name."""
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if path.is_dir() or _looks_like_path(text):
        return path  # load_bundle says what is wrong with a path that is not a bundle
    installed = installed_bundles()
    hits = [b for b in installed if _matches(b.name, text)]
    if len(hits) == 1:
        return hits[0].path
    if len(hits) > 1:
        names = ", ".join(b.name for b in hits)
        raise ModelError(
            f"model {text!r} matches several installed models ({names}); "
            "set model.path to one of these names"
        )
    have = ", ".join(b.name for b in installed) or "none"
    raise ModelError(
        f"model {text!r} is neither a bundle folder nor an installed model (installed in "
        f"{models_dir()}: {have}); pull it with `jpilot model pull ORG/NAME`, or set "
        "model.path to a bundle folder"
    )


def _row(bundle: Installed) -> dict:
    """Return what `list` shows about one installed bundle."""
    from jpilot.model.bundle import ONNX_FILE
    from jpilot.model.info import count_parameters

    size = sum(f.stat().st_size for f in bundle.path.iterdir() if f.is_file())
    try:
        params: int | None = count_parameters(bundle.path / ONNX_FILE)
    except Exception:  # an unreadable model.onnx: still list the folder
        params = None
    return {
        "name": bundle.name,
        "size_mib": round(size / 2**20, 1),
        "dtype": bundle.manifest.dtype,
        "parameters": params,
        "fim": bool(bundle.manifest.fim),
        "source": bundle.manifest.source,
        "path": str(bundle.path),
    }


def run(args: argparse.Namespace) -> int:
    """Print the installed bundles with size, dtype and parameter count."""
    rows = [_row(b) for b in installed_bundles()]
    if args.json:
        print(json.dumps({"models_dir": str(models_dir()), "models": rows}, indent=2))
        return 0
    if not rows:
        print(
            f"no models in {models_dir()}; pull one: jpilot model pull Salesforce/codegen-350M-mono"
        )
        return 0
    print(f"models in {models_dir()}")
    width = max(len(r["name"]) for r in rows)
    print(f"{'NAME':<{width}}  {'SIZE':>10}  {'DTYPE':<5}  {'PARAMS':>8}  FIM  SOURCE")
    for r in rows:
        params = "?" if r["parameters"] is None else f"{r['parameters'] / 1e6:.1f}M"
        size = f"{r['size_mib']:.1f} MiB"
        fim = "yes" if r["fim"] else "no"
        cells = f"{size:>10}  {r['dtype']:<5}  {params:>8}  {fim:<3}"
        print(f"{r['name']:<{width}}  {cells}  {r['source']}")
    return 0
