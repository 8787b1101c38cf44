"""Measure the memory of exporting and of loading a big checkpoint, each in its own process.

Writes a random GPT-J-shaped checkpoint straight to disk (tests/real_shapes.py; no torch
model, so even GPT-J-6B's 12 GB of fp16 is made without holding it), then in child
processes:
  - export: `export_bundle` to each asked format; peak RSS (VmHWM) against the issue's
    bound, 1.5 x the largest input weight file + 1 GB;
  - load: `Engine(bundle)` and one generated token; RSS after load (anonymous and
    file-backed) against the bundle's size: one copy of the weights, not two.

Run:  python bench/export_memory.py [--shape gptj-6B-width] [--formats fp32,int8,int4]
      [--dtype F16] [--work DIR] [--keep]
Needs the [train] extra only for transformers-free parts: numpy, onnx, onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

CHILD_EXPORT = """
import json, sys, time
from jpilot.model.export import export_bundle
src, dst, fmt = sys.argv[1:4]
t0 = time.monotonic()
export_bundle(src, dst, dtype="fp16" if fmt == "fp16" else "fp32",
              quantize=fmt if fmt in ("int8", "int4") else None, kv_cache="static")
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
print(json.dumps({"seconds": time.monotonic() - t0,
                  "peak_rss": int(status["VmHWM"].split()[0]) * 1024}))
"""

CHILD_LOAD = """
import json, sys, time
t0 = time.monotonic()
from jpilot.model.engine import Engine, GenerationConfig
def rss():
    status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    return {k: int(status[k].split()[0]) * 1024 for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}
base = rss()
engine = Engine(sys.argv[1])
loaded = rss()
load_s = time.monotonic() - t0
engine.tokenizer.eos_id = None
engine.generate(list(range(1, 33)), GenerationConfig(max_new_tokens=2))
print(json.dumps({"before": base, "loaded": loaded, "after_generate": rss(), "load_s": load_s}))
"""


def child(code: str, *args: str) -> dict:
    """Run `code` in a fresh Python; return the JSON it prints last."""
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, text=True,
                         stdout=subprocess.PIPE)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def folder_bytes(folder: Path) -> int:
    """Return the total size of the files in a folder."""
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def gib(n: float) -> str:
    """Format bytes as GiB."""
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    """Write the checkpoint, export each format, load each bundle; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="gptj-6B-width")
    parser.add_argument("--formats", default="fp32,int8,int4")
    parser.add_argument("--dtype", default="F16", help="checkpoint dtype: F32, F16 or BF16")
    parser.add_argument("--work", type=Path, help="folder to work in (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint and bundles")
    args = parser.parse_args()

    from real_shapes import write_random_gptj

    from jpilot.model.checkpoint import Checkpoint

    work = args.work or Path(tempfile.mkdtemp(prefix="jpilot-export-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"{args.shape}-{args.dtype.lower()}"
    if not (ckpt / "config.json").is_file():
        t0 = time.monotonic()
        write_random_gptj(ckpt, args.shape, args.dtype)
        print(f"wrote {ckpt} in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    largest = Checkpoint(ckpt).largest_file_bytes()
    bound = 1.5 * largest + 2**30
    print(f"\n{args.shape}, {args.dtype} safetensors, largest weight file {gib(largest)}; "
          f"export bound 1.5 x that + 1 GiB = {gib(bound)}")  # fmt: skip
    head = ("format", "export s", "peak RSS", "vs bound", "bundle", "RSS loaded", "anon", "file",
            "loaded/bundle", "load s")  # fmt: skip
    print("{:<7} {:>8} {:>10} {:>8} {:>10} {:>11} {:>10} {:>10} {:>13} {:>7}".format(*head))
    try:
        for fmt in args.formats.split(","):
            dst = work / f"bundle-{fmt}"
            if dst.exists():
                shutil.rmtree(dst)
            exp = child(CHILD_EXPORT, str(ckpt), str(dst), fmt)
            size = folder_bytes(dst)
            load = child(CHILD_LOAD, str(dst))
            after = load["loaded"]
            rss = after["VmRSS"] - load["before"]["VmRSS"]
            print(
                f"{fmt:<7} {exp['seconds']:8.0f} {gib(exp['peak_rss']):>10} "
                f"{exp['peak_rss'] / bound:7.2f}x {gib(size):>10} {gib(rss):>11} "
                f"{gib(after['RssAnon']):>10} {gib(after['RssFile']):>10} "
                f"{rss / size:12.2f}x {load['load_s']:7.1f}"
            )
            if not args.keep:
                shutil.rmtree(dst)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nmachine: {os.uname().machine}, {len(os.sched_getaffinity(0))} cores, "
          f"{time.strftime('%Y-%m-%d')}, load {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
