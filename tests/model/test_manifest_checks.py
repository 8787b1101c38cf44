"""A bundle's manifest values are checked: a bad one is a ModelError that names the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jpilot.model.bundle import MANIFEST, MAX_TOKENIZER_BYTES, TOKENIZER_FILE, load_bundle
from jpilot.model.errors import ModelError


@pytest.fixture
def copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A copy of the tiny bundle that a test may break."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def edit(folder: Path, **changes: object) -> None:
    """Change fields of the manifest in place."""
    path = folder / MANIFEST
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.update(changes)
    path.write_text(json.dumps(raw), encoding="utf-8")


@pytest.mark.parametrize(
    ("changes", "field", "want"),
    [
        ({"n_positions": 10**18}, "n_positions", "an integer from 1 to 1048576"),
        ({"n_positions": -5}, "n_positions", "an integer from 1 to 1048576"),
        ({"n_positions": "512"}, "n_positions", "an integer from 1 to 1048576"),
        ({"n_layer": True}, "n_layer", "an integer from 1 to 1024"),
        ({"vocab_size": "320"}, "vocab_size", "an integer from 1 to 2097152"),
        ({"rotary_dim": 4000}, "rotary_dim", "at most head_dim"),
        ({"eos_token_id": 10**6}, "eos_token_id", "null or a token id from 0 to"),
        ({"fim": {"prefix": 1, "suffix": 2}}, "fim", "null or token ids from 0 to"),
        ({"fim": {"prefix": 1, "suffix": 2, "middle": "3"}}, "fim", "null or token ids"),
        ({"fim": [1, 2, 3]}, "fim", "null or token ids"),
        ({"dtype": "int3"}, "dtype", "one of fp32, fp16, int8, int4"),
        ({"onnx_sha256": 5}, "onnx_sha256", "a sha256 in 64 lowercase hex digits"),
        ({"format": "1"}, "format", "an integer from 1 to 1024"),
        ({"external_data": "model.onnx.data"}, "external_data", "a list of file names"),
        ({"external_data_sha256": {"x": "nope"}}, "external_data_sha256", "an object mapping"),
    ],
)
def test_a_bad_value_names_its_field(copy: Path, changes: dict, field: str, want: str) -> None:
    edit(copy, **changes)
    with pytest.raises(ModelError) as info:
        load_bundle(copy)
    message = str(info.value)
    assert f"{field} is {changes[field]!r}, but it must be {want}" in message
    assert "re-export the bundle" in message and "\n" not in message


def test_a_huge_tokenizer_is_refused_before_it_is_read(copy: Path) -> None:
    with open(copy / TOKENIZER_FILE, "ab") as fh:
        fh.truncate(MAX_TOKENIZER_BYTES + 1)  # sparse: no disk is written
    with pytest.raises(ModelError, match=r"tokenizer.json is over 64 MiB"):
        load_bundle(copy)


def test_the_valid_manifest_still_loads(copy: Path) -> None:
    assert load_bundle(copy).manifest.n_positions == 256
