"""Build the training corpus: CPython's stdlib plus permissively licensed pure-Python packages.

The default corpus is code that is present on every machine that runs jpilot: the stdlib that
`sysconfig` points at and the pure-Python distributions in site-packages whose licence is
permissive (MIT, BSD, Apache, PSF, ISC, Unlicense, ...). Copyleft and weak-copyleft licences
(GPL, LGPL, AGPL, MPL, EPL, ...) and unknown licences are excluded; `licences.py` decides.
A user can instead pass their own folders or files (`--corpus PATH ...`). More packages can be
added without installing them into the running environment: `pip install --no-deps --target
DIR ...` and `--packages-dir DIR` adds DIR's distributions under the same licence and purity
rules.

Every file is filtered (Python only, <= 1 MB, valid UTF-8, not generated-looking), deduplicated
by a hash of its content with line-end whitespace normalised, and assigned to the train or the
validation split by a hash of its name, so the split is by file and deterministic.

A held-out file that nearly duplicates a training file measures memory, not generalization:
transformers' model files copy whole classes from one another, and on such files the default
model's exact match was three times what it is on the rest (docs/BENCHMARKS.md). So a
validation file whose 5-word shingles overlap a training file's at Jaccard >= NEAR_DUPLICATE
(MinHash LSH, datasketch) is moved out of validation into the "near-duplicate" split, which
neither training nor validation uses. The training split is left exactly as it was.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import itertools
import re
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jpilot.model.errors import ModelError
from jpilot.model.train.licences import dist_is_permissive, distribution_licence

MAX_FILE_BYTES = 1_000_000  # larger files are data, not code
MAX_MEAN_LINE = 100  # mean characters per line above which a file looks generated
MAX_LINE = 2_000  # a single line longer than this marks a file as generated or data
VAL_PER_MILLE = 20  # ~2% of files go to the validation split
NEAR_DUPLICATE = 0.5  # shingle Jaccard from which a held-out file counts as a training copy
SHINGLE_WORDS = 5  # words per shingle (runs of \w), as in BigCode's near-deduplication
MINHASH_PERMUTATIONS = 128  # MinHash size: Jaccard estimates have a standard error ~0.04
NEAR_DUPLICATE_SPLIT = "near-duplicate"  # held out of training, but not used for validation
TRAIN_NEAR_DUPLICATE = 0.85  # training files this close to an earlier one are dropped
TRAIN_DUPLICATE_SPLIT = "train-duplicate"  # dropped training copies (--dedup-train)
_WORD = re.compile(r"\w+")

STDLIB_EXCLUDE = ("test", "tests", "idlelib/idle_test", "lib2to3/tests", "site-packages")
TEST_DIRS = {"test", "tests", "testing", "idle_test"}
VENDOR_DIRS = {"_vendor", "vendor", "_vendored", "vendored", "_vendored_packages"}  # own licences


@dataclass
class Document:
    """One source file of the corpus."""

    package: str  # distribution name, "stdlib", or "user"
    name: str  # stable name "package/relative/path.py"; the split hash is taken of it
    text: str  # the file's content, decoded as UTF-8
    split: str = "train"  # "train", "val" or NEAR_DUPLICATE_SPLIT (a val file that copies train)


@dataclass
class PackageInfo:
    """One manifest row: where a part of the corpus comes from."""

    name: str  # distribution name, "stdlib" or "user"
    version: str  # distribution version, Python version for the stdlib
    licence: str  # the licence string that was accepted
    files: int = 0  # files kept after filtering and deduplication
    val_files: int = 0  # of which in the validation split
    bytes: int = 0  # UTF-8 bytes kept
    tokens: int = 0  # tokens, filled in once the tokenizer exists


@dataclass
class Corpus:
    """The deduplicated documents plus the manifest describing them."""

    documents: list[Document]  # train and validation documents, in a deterministic order
    packages: dict[str, PackageInfo]  # manifest rows by package name
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> number of files skipped
    # held-out file -> (its most similar training file, their estimated shingle Jaccard)
    near_duplicates: dict[str, tuple[str, float]] = field(default_factory=dict)

    def split(self, name: str) -> list[Document]:
        """Return the documents of one split ("train", "val" or NEAR_DUPLICATE_SPLIT)."""
        return [d for d in self.documents if d.split == name]

    def manifest(self) -> dict:
        """Return the manifest as JSON-ready data."""
        return {
            "packages": [vars(p) for p in sorted(self.packages.values(), key=lambda p: p.name)],
            "files": len(self.documents),
            "val_files": sum(d.split == "val" for d in self.documents),
            "near_duplicate_files": len(self.near_duplicates),
            "near_duplicate_jaccard": NEAR_DUPLICATE,
            "bytes": sum(p.bytes for p in self.packages.values()),
            "skipped": dict(sorted(self.skipped.items())),
        }


def looks_generated(text: str) -> bool:
    """Return whether a file looks generated or like data (very long lines)."""
    lines = text.splitlines() or [""]
    mean = sum(len(line) for line in lines) / len(lines)
    return mean > MAX_MEAN_LINE or max(len(line) for line in lines) > MAX_LINE


def content_key(text: str) -> str:
    """Return the dedup hash of a file: whitespace at line ends and blank-line ends ignored."""
    normal = "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def split_of(name: str, val_per_mille: int = VAL_PER_MILLE) -> str:
    """Return "val" for ~val_per_mille/1000 of file names (stable hash), else "train"."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:4], "big") % 1000 < val_per_mille else "train"


def stdlib_files() -> Iterator[tuple[str, Path]]:
    """Yield (relative name, path) for the stdlib's .py files, tests excluded."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if any(rel == e or rel.startswith(e + "/") for e in STDLIB_EXCLUDE):
            continue
        if "__pycache__" in rel or any(p in TEST_DIRS for p in Path(rel).parts[:-1]):
            continue
        yield rel, path


def package_files(dist: metadata.Distribution) -> list[tuple[str, Path]]:
    """Return (relative name, path) of a distribution's .py files, tests excluded."""
    out = []
    for rel in dist.files or []:
        parts = rel.parts
        dirs = set(parts[:-1])
        if rel.suffix != ".py" or parts[0] == ".." or dirs & TEST_DIRS or dirs & VENDOR_DIRS:
            continue
        if any(p.endswith((".dist-info", ".egg-info")) or p == "__pycache__" for p in parts):
            continue
        out.append((rel.as_posix(), Path(str(dist.locate_file(rel)))))
    return sorted(out)


def is_pure_python(dist: metadata.Distribution) -> bool:
    """Return whether a distribution ships no compiled extension modules."""
    files = dist.files or []
    return bool(files) and not any(f.suffix in (".so", ".pyd", ".dylib") for f in files)


def default_sources(tests: bool = False) -> Iterator[tuple[PackageInfo, list[tuple[str, Path]]]]:
    """Yield the stdlib and each permissive pure-Python distribution with its files; with
    `tests`, the stdlib's own test suite too, as the package "stdlib-tests"."""
    version = sysconfig.get_python_version()
    yield PackageInfo("stdlib", version, "PSF-2.0"), list(stdlib_files())
    if tests:
        yield PackageInfo("stdlib-tests", version, "PSF-2.0"), list(stdlib_test_files())
    yield from package_sources(metadata.distributions())


def stdlib_test_files() -> Iterator[tuple[str, Path]]:
    """Yield (relative name, path) for the .py files of CPython's test suite (Lib/test).

    Users write tests, and the default model was weakest on them (9% exact match against
    20% elsewhere, docs/BENCHMARKS.md), so a training run may mix them in (`--with-tests`).
    Their names start "stdlib-tests/", so the default corpus's split is unchanged.
    """
    root = Path(sysconfig.get_paths()["stdlib"]) / "test"
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" not in rel:
            yield rel, path


def package_dir_sources(
    dirs: Iterable[str | Path], taken: set[str]
) -> Iterator[tuple[PackageInfo, list[tuple[str, Path]]]]:
    """Yield the permissive pure-Python distributions installed in `dirs` (`pip --target`).

    Names in `taken` (already in the corpus) are skipped, so a package is read once.
    """
    yield from package_sources(metadata.distributions(path=[str(d) for d in dirs]), taken)


def package_sources(
    dists: Iterable[metadata.Distribution], seen: set[str] | None = None
) -> Iterator[tuple[PackageInfo, list[tuple[str, Path]]]]:
    """Yield each permissive pure-Python distribution of `dists` with its files, by name."""
    seen = set() if seen is None else seen
    for dist in sorted(dists, key=lambda d: (d.metadata["Name"] or "").lower()):
        name = (dist.metadata["Name"] or "").lower()
        if not name or name in seen or name == "jpilot":
            continue
        seen.add(name)
        if not is_pure_python(dist) or not dist_is_permissive(dist):
            continue
        info = PackageInfo(name, dist.version, distribution_licence(dist))
        yield info, package_files(dist)


def user_sources(paths: Iterable[str | Path]) -> Iterator[tuple[PackageInfo, list]]:
    """Yield the user's own folders/files (all .py files below each folder) as one package."""
    files: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            files.append((path.name, path))
        elif path.is_dir():
            for f in sorted(path.rglob("*.py")):
                rel = f.relative_to(path)
                if not any(p.startswith(".") or p in TEST_DIRS for p in rel.parts[:-1]):
                    files.append((f"{path.name}/{rel.as_posix()}", f))
    yield PackageInfo("user", "-", "user-provided"), files


def build_corpus(
    paths: Iterable[str | Path] | None = None,
    max_files: int | None = None,
    package_dirs: Iterable[str | Path] = (),
    tests: bool = False,
    dedup_train: bool = False,
) -> Corpus:
    """Collect, filter, deduplicate and split the corpus (default sources when `paths` is None).

    The distributions in `package_dirs` come after the other sources, so a file they share
    with the default corpus keeps its place (and split) there. `tests` adds the stdlib's
    test suite; `dedup_train` drops training files that nearly duplicate an earlier one.
    """
    taken: set[str] = set()
    sources = default_sources(tests) if not paths else user_sources(paths)
    sources = itertools.chain(
        _note_names(sources, taken), package_dir_sources(list(package_dirs), taken)
    )
    documents: list[Document] = []
    packages: dict[str, PackageInfo] = {}
    skipped: dict[str, int] = {}
    seen: set[str] = set()

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for info, files in sources:
        for rel, path in files:
            if max_files is not None and len(documents) >= max_files:
                break
            text = _read(path, skip)
            if text is None:
                continue
            if not text.strip():
                skip("empty")
                continue
            if looks_generated(text):
                skip("generated")
                continue
            key = content_key(text)
            if key in seen:
                skip("duplicate")
                continue
            seen.add(key)
            name = f"{info.name}/{rel}"
            doc = Document(info.name, name, text, split_of(name))
            documents.append(doc)
            row = packages.setdefault(info.name, info)
            row.files += 1
            row.val_files += doc.split == "val"
            row.bytes += len(text.encode("utf-8"))
    near = set_aside_near_duplicates(documents)
    for doc in documents:
        if doc.name in near:
            packages[doc.package].val_files -= 1
    if dedup_train:  # after the split's check, which so sees every training file
        for doc in drop_training_near_duplicates(documents):
            skip("near-duplicate of a training file")
            packages[doc.package].files -= 1
    return Corpus(documents, packages, skipped, near)


def shingles(text: str) -> set[bytes]:
    """Return the set of SHINGLE_WORDS-word windows of `text` (its runs of word characters)."""
    words = _WORD.findall(text)
    n = SHINGLE_WORDS
    return {" ".join(words[i : i + n]).encode("utf-8") for i in range(max(1, len(words) - n + 1))}


def set_aside_near_duplicates(
    documents: list[Document], threshold: float = NEAR_DUPLICATE
) -> dict[str, tuple[str, float]]:
    """Move each "val" document that nearly duplicates a "train" one to NEAR_DUPLICATE_SPLIT.

    Returns held-out name -> (most similar training name, estimated Jaccard). MinHash with
    LSH finds the candidates (datasketch); the estimate of each candidate decides.
    """
    held_out = [d for d in documents if d.split == "val"]
    if not held_out:
        return {}
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError as e:
        raise ModelError(
            "splitting the corpus needs datasketch (near-duplicate detection): "
            "pip install -e '.[train]'"
        ) from e

    def signature(text: str) -> MinHash:
        m = MinHash(num_perm=MINHASH_PERMUTATIONS)  # fixed default seed: deterministic
        m.update_batch(list(shingles(text)))
        return m

    index = MinHashLSH(threshold=threshold, num_perm=MINHASH_PERMUTATIONS)
    trained = {}
    for doc in documents:
        if doc.split == "train":
            trained[doc.name] = signature(doc.text)
            index.insert(doc.name, trained[doc.name])
    found = {}
    for doc in held_out:
        m = signature(doc.text)
        jaccard = {c: m.jaccard(trained[c]) for c in sorted(index.query(m))}
        source = max(jaccard, key=jaccard.__getitem__, default=None)  # first name on a tie
        if source is not None and jaccard[source] >= threshold:
            doc.split = NEAR_DUPLICATE_SPLIT
            found[doc.name] = (source, round(jaccard[source], 3))
    return found


def drop_training_near_duplicates(
    documents: list[Document], threshold: float = TRAIN_NEAR_DUPLICATE
) -> list[Document]:
    """Move each training file whose shingles overlap an earlier training file's at Jaccard
    >= `threshold` to TRAIN_DUPLICATE_SPLIT (unused); return the moved ones.

    Copies (vendored modules, generated variants, one class pasted into many files) make a
    small model learn them by heart at the cost of everything else. BigCode deduplicates its
    training data the same way (MinHash LSH over 5-word shingles, 0.85).
    """
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(threshold=threshold, num_perm=MINHASH_PERMUTATIONS)
    moved = []
    for doc in documents:
        if doc.split != "train":
            continue
        m = MinHash(num_perm=MINHASH_PERMUTATIONS)
        m.update_batch(list(shingles(doc.text)))
        if index.query(m):
            doc.split = TRAIN_DUPLICATE_SPLIT
            moved.append(doc)
        else:
            index.insert(doc.name, m)
    return moved


def _note_names(sources: Iterator[tuple[PackageInfo, list]], taken: set[str]) -> Iterator:
    """Pass `sources` through, adding each package's name to `taken`."""
    for info, files in sources:
        taken.add(info.name)
        yield info, files


def _read(path: Path, skip) -> str | None:
    """Read a file as UTF-8, or count why it was skipped and return None."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            skip("too large")
            return None
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        skip("not utf-8")
    except OSError:
        skip("unreadable")
    return None
