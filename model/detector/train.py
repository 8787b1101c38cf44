"""`jpilot model train-detector [BUNDLE]`: train a bug detector for a bundle, on the CPU.

Self-supervised, as BugLab (Allamanis et al., 2021): pieces of the training corpus (runs
of whole top-level statements, up to CHUNK_LINES lines) are copied with one bug injected
(rewrites.py) or left as they are; a quarter of the clean ones get a meaning-keeping
rewrite (hard negatives). The bundle's GPT-J, frozen, gives the features (features.py),
and the small network of head.py learns (a) which site holds the bug, or none, and (b)
which candidate repairs it. Then it calibrates the hint threshold on held-out clean
pieces (at most TARGET_FALSE false hints per 1,000 lines), writes detector.onnx into the
bundle and records it in the manifest. A pulled bundle gets a detector the same way.

Examples are cached in OUT (default BUNDLE/../detector-run) as they are made, so a
stopped run keeps its data: `--seconds` more of them are added on each run.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from jpilot.model.bundle import load_bundle, read_manifest, sha256_file, write_manifest
from jpilot.model.detector.detector import DETECTOR_FILE, merged, token_sites, whatif_gains
from jpilot.model.detector.features import FeatureModel
from jpilot.model.detector.head import build_net, candidate_inputs, export_onnx, token_inputs
from jpilot.model.detector.rewrites import KINDS, apply, benign_rewrites, inject, sites

CHUNK_LINES = 80  # most lines of a training piece
TARGET_FALSE = 0.5  # false hints per 1,000 clean lines the threshold is calibrated for
BUGGY_SHARE = 0.5  # of the pieces, the share that get a bug
SHARD = 100  # examples per cache file
ACCUMULATE = 4  # examples per optimizer step


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `jpilot model train-detector`."""
    parser.add_argument("bundle", nargs="?", help="bundle folder (default: the embedded model)")
    parser.add_argument("--corpus", nargs="+", metavar="PATH",
                        help="folders/files of Python code (default: the corpus)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=600,
                        help="time to spend making new examples")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="rewrite kinds to train on (the others are held out)")  # fmt: skip
    parser.add_argument("--out", help="folder for the example cache and checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)


def pieces(text: str, rng: random.Random) -> list[str]:
    """Split a file into runs of whole top-level statements of up to CHUNK_LINES lines."""
    try:
        body = ast.parse(text).body
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines(keepends=True)
    out, start, end = [], None, None
    for node in body:
        a, b = node.lineno - 1, node.end_lineno or node.lineno
        if start is not None and b - start > CHUNK_LINES:
            out.append("".join(lines[start:end]))
            start = None
        if start is None:
            start = getattr(node, "decorator_list", None) and node.decorator_list[0].lineno - 1 or a  # type: ignore[attr-defined]
        end = b
    if start is not None:
        out.append("".join(lines[start:end]))
    return [p for p in out if 5 <= p.count("\n") <= 3 * CHUNK_LINES]


def make_example(fm: FeatureModel, engine: Any, text: str, rng: random.Random,
                 kinds: tuple[str, ...]) -> dict[str, Any] | None:  # fmt: skip
    """Return one training example from a clean piece: its inputs and labels."""
    bug = None
    if rng.random() < BUGGY_SHARE:
        made = inject(text, rng, kinds)
        if made is None:
            return None
        text, bug = made
    elif rng.random() < 0.5 and (benign := benign_rewrites(text)):
        text = apply(text, *rng.choice(benign))
    feats = fm.features(text)
    by_token = token_sites(feats, sites(text))
    if not by_token or len(feats.ids) < 8:
        return None
    x = token_inputs(feats.hidden, feats.surprisal, merged(by_token))
    example: dict[str, Any] = {"x": x.astype(np.float16), "label": -1,
                               "lines": text.count("\n") + 1}  # fmt: skip
    if bug is not None:
        i = feats.token_at(bug.start)
        options = [(s, new) for s in by_token.get(i, []) for new, _k in s.candidates]
        right = [k for k, (s, new) in enumerate(options)
                 if s.start == bug.start and s.end == bug.end and new == bug.was]  # fmt: skip
        if not right:
            return None
        gains = whatif_gains(engine, text, feats, [(s.start, s.end, n) for s, n in options])
        flat = merged({i: by_token[i]})[i]
        example.update(label=i, cands=candidate_inputs(flat, gains, text), repair=right[0],
                       kind=bug.kind)  # fmt: skip
    return example


def corpus_files(paths: list[str] | None, split: str) -> list[str]:
    """Return the texts of the corpus split (or of the given paths, for "train")."""
    if paths:
        from jpilot.model.evaluate import held_out_files

        return [t for _n, t in held_out_files(paths)] if split == "train" else []
    from jpilot.model.train.corpus import build_corpus

    return [d.text for d in build_corpus().split(split)]


def generate(fm, engine, texts: list[str], seconds: float, rng: random.Random,
             kinds: tuple[str, ...], limit: int | None = None,
             shards: Path | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Make examples from random pieces of `texts` for `seconds` (or `limit` examples);
    every SHARD of them is saved to a new file in `shards` as soon as it is made."""
    out: list[dict[str, Any]] = []
    first = len(list(shards.glob("examples-*.npz"))) if shards else 0
    deadline = time.monotonic() + seconds
    order = list(range(len(texts)))
    rng.shuffle(order)
    for k in order * 4:
        if time.monotonic() > deadline or (limit is not None and len(out) >= limit):
            break
        chunks = pieces(texts[k], rng)
        if chunks:
            example = make_example(fm, engine, rng.choice(chunks), rng, kinds)
            if example is not None:
                out.append(example)
                if shards and len(out) % SHARD == 0:
                    save_examples(shards / f"examples-{first + len(out) // SHARD:04d}.npz",
                                  out[-SHARD:])  # fmt: skip
                print(f"\r{len(out)} examples", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def train(examples: list[dict[str, Any]], epochs: int, seed: int, log=print, on_epoch=None):
    """Train a DetectorNet on the examples; return it (needs torch). `on_epoch(net, epoch)`
    is called after each epoch (checkpoints, validation)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny steps: more threads only contend (4x slower on 2 cores)
    net = build_net(examples[0]["x"].shape[1])
    # the repair head is one linear layer over a few features: it needs far larger steps
    rest = [p for name, p in net.named_parameters() if not name.startswith("repair.")]
    opt = torch.optim.AdamW([{"params": rest}, {"params": net.repair.parameters(), "lr": 3e-2}],
                            lr=2e-3, weight_decay=1e-4)  # fmt: skip
    rng = random.Random(seed)
    n_cand = next((e["cands"].shape[1] for e in examples if "cands" in e), 1)
    for epoch in range(epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        total = 0.0
        for step, k in enumerate(order):
            e = examples[k]
            x = torch.from_numpy(e["x"].astype(np.float32))[None]
            cands = torch.from_numpy(e.get("cands", np.zeros((1, n_cand), np.float32)))
            site, nobug, repair = net(x, cands)
            sites_at = torch.nonzero(x[0, :, -1] > 0)[:, 0]
            logits = torch.cat([nobug, site[sites_at]])
            target = 0 if e["label"] < 0 else 1 + int((sites_at == e["label"]).nonzero()[0, 0])
            loss = torch.nn.functional.cross_entropy(logits[None], torch.tensor([target]))
            if "cands" in e and len(e["cands"]) > 1:
                loss = loss + torch.nn.functional.cross_entropy(
                    repair[None], torch.tensor([e["repair"]]))  # fmt: skip
            (loss / ACCUMULATE).backward()
            total += float(loss.detach())
            if step % ACCUMULATE == ACCUMULATE - 1:
                opt.step()
                opt.zero_grad()
        log(f"epoch {epoch + 1}/{epochs}: loss {total / max(len(order), 1):.3f}")
        if on_epoch is not None:
            net.eval()
            on_epoch(net, epoch + 1)
            net.train()
    net.eval()
    return net


def probabilities(net, example: dict[str, Any]) -> np.ndarray:
    """Return the bug probability of each site token of an example (others 0)."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(example["x"].astype(np.float32))[None]
        site, nobug, _ = net(x, torch.zeros(1, 3 + len(KINDS)))
        p = torch.sigmoid(site - nobug).numpy()
    return np.where(example["x"][:, -1] > 0, p, 0.0)


def calibrate(net, clean: list[dict[str, Any]], max_hints: int = 5) -> float:
    """Return the lowest threshold giving at most TARGET_FALSE hints per 1,000 clean lines."""
    lines = sum(e["lines"] for e in clean)
    tops = np.concatenate([np.sort(probabilities(net, e))[::-1][:max_hints] for e in clean])
    allowed = int(TARGET_FALSE * lines / 1000)
    ranked = np.sort(tops)[::-1]
    if allowed >= len(ranked):
        return 0.5
    return float(min(max(ranked[allowed] + 1e-6, 0.05), 0.999))


def install(bundle_dir: Path, net, features: int, threshold: float, kinds, scores) -> Path:
    """Export the net into the bundle and record it in the manifest."""
    path = bundle_dir / DETECTOR_FILE
    export_onnx(net, features, str(path))
    manifest = read_manifest(bundle_dir)
    manifest.detector = {"file": DETECTOR_FILE, "sha256": sha256_file(path),
                         "threshold": round(threshold, 4), "kinds": list(kinds),
                         "scores": scores}  # fmt: skip
    write_manifest(bundle_dir, manifest)
    return path


def run(args: argparse.Namespace) -> int:
    """Make examples, train, calibrate, and install the detector into the bundle."""
    from jpilot.model.default import default_bundle_path
    from jpilot.model.engine import Engine, EngineConfig

    folder = Path(args.bundle) if args.bundle else default_bundle_path()
    bundle = load_bundle(folder)
    out = Path(args.out) if args.out else folder.parent / f"{folder.name}-detector-run"
    out.mkdir(parents=True, exist_ok=True)
    fm = FeatureModel(bundle, args.threads)
    engine = Engine(bundle, EngineConfig(threads=args.threads))
    rng = random.Random(args.seed * 1000 + len(list(out.glob("examples-*.npz"))))  # new pieces
    kinds = tuple(args.kinds)
    examples = [e for shard in sorted(out.glob("examples-*.npz")) for e in load_examples(shard)]
    if args.seconds > 0:
        texts = corpus_files(args.corpus, "train")
        examples += generate(fm, engine, texts, args.seconds, rng, kinds, shards=out)
    examples = [e for e in examples if e.get("kind", "") in kinds or e["label"] < 0]
    if args.epochs == 0:
        print(f"{len(examples)} examples in {out}; not training (--epochs 0)", file=sys.stderr)
        return 0
    val = load_examples(out / "val.npz")
    if not val:
        val_texts = corpus_files(args.corpus, "val") or corpus_files(args.corpus, "train")[:50]
        val = generate(fm, engine, val_texts, 600, random.Random(args.seed + 1), (), 300)
        save_examples(out / "val.npz", val)
    print(f"{len(examples)} training examples, {len(val)} clean validation pieces",
          file=sys.stderr)  # fmt: skip

    def checkpoint(net, epoch: int) -> None:
        import torch

        torch.save(net.state_dict(), out / "detector.pt")  # tensors only: weights_only loads
        print(f"checkpoint after epoch {epoch}: {out / 'detector.pt'}", file=sys.stderr)

    net = train(examples, args.epochs, args.seed, lambda m: print(m, file=sys.stderr), checkpoint)
    threshold = calibrate(net, val)
    scores = {"train_examples": len(examples), "val_pieces": len(val)}
    path = install(folder, net, examples[0]["x"].shape[1], threshold, kinds, scores)
    print(f"wrote {path} (threshold {threshold:.3f}); measure it with "
          f"`jpilot model eval-hints {folder}`")  # fmt: skip
    return 0


def save_examples(path: Path, examples: list[dict[str, Any]]) -> None:
    """Write examples to an .npz (numbers only: loading it runs no code)."""
    arrays: dict[str, Any] = {}
    meta = []
    for k, e in enumerate(examples):
        arrays[f"x{k}"] = e["x"]
        if "cands" in e:
            arrays[f"c{k}"] = e["cands"]
        meta.append({key: e[key] for key in ("label", "lines", "repair", "kind") if key in e})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_examples(path: Path) -> list[dict[str, Any]]:
    """Read examples written by save_examples ([] if there is no file)."""
    if not path.is_file():
        return []
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        out = []
        for k, m in enumerate(meta):
            e = dict(m, x=data[f"x{k}"])
            if f"c{k}" in data:
                e["cands"] = data[f"c{k}"]
            out.append(e)
    return out
