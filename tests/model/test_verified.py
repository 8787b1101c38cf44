"""Big bundle files are hashed once, and again whenever they change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jpilot.model import verified
from jpilot.model.bundle import sha256_file


@pytest.fixture
def big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JPILOT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(verified, "MIN_BYTES", 16)
    path = tmp_path / "model.onnx.data"
    path.write_bytes(b"weights " * 64)
    return path


def test_an_unchanged_file_is_not_hashed_again(big: Path) -> None:
    calls: list[Path] = []

    def counting(path: Path) -> str:
        calls.append(path)
        return sha256_file(path)

    first = verified.digest(big, counting)
    assert first == sha256_file(big) and len(calls) == 1
    assert verified.digest(big, counting) == first and len(calls) == 1


def test_a_changed_file_is_hashed_again(big: Path) -> None:
    before = verified.digest(big, sha256_file)
    stat = big.stat()
    big.write_bytes(b"WEIGHTS " * 64)  # same size
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = verified.digest(big, sha256_file)
    assert after != before and after == sha256_file(big)


def test_a_damaged_record_means_hashing_again(big: Path) -> None:
    verified.record_path().parent.mkdir(parents=True, exist_ok=True)
    verified.record_path().write_text("{not json", encoding="utf-8")
    assert verified.digest(big, sha256_file) == sha256_file(big)


def test_small_files_are_always_hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPILOT_CACHE_DIR", str(tmp_path / "cache"))
    small = tmp_path / "model.onnx"
    small.write_bytes(b"x")
    calls: list[Path] = []
    for _ in range(2):
        verified.digest(small, lambda p: calls.append(p) or sha256_file(p))
    assert len(calls) == 2 and not verified.record_path().exists()
