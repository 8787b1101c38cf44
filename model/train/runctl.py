"""Run control for long training runs: precision, stop on SIGTERM, pause, resume by folder.

A default model is trained across sessions, niced in the background while other work uses
the same cores. So a run must stop cleanly when asked (SIGTERM or Ctrl-C: it checkpoints
first), pause without losing schedule time (`touch RUN/PAUSE`, `rm RUN/PAUSE`: the time
paused is not counted against `--minutes`), and continue from its folder alone
(`jpilot model train --resume RUN` reads RUN/run_config.json).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from jpilot.model.bundle import read_json_object
from jpilot.model.errors import ModelError
from jpilot.model.train.config import TrainConfig

PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("cpu", "cuda", "auto")
CONFIG_FILE = "run_config.json"
PAUSE_FILE = "PAUSE"


def bf16_is_fast() -> bool:
    """Return whether this CPU has bf16 matmul instructions (AVX-512 BF16 or AMX).

    Without them PyTorch emulates bf16: on an AVX2-only EPYC a 7.4M-parameter step ran
    12x slower under bf16 autocast than in fp32 (bench/train_throughput.py).
    """
    import torch  # here, not at the top: `jpilot model train --help` must not load torch

    cpu = torch.cpu
    return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())


def choose_device(requested: str) -> str:
    """Return "cpu" or "cuda" for `requested` ("auto": cuda when torch sees a GPU)."""
    import torch

    if requested not in DEVICES:
        raise ModelError(f"--device must be one of {', '.join(DEVICES)}, not {requested!r}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda: this torch sees no GPU (a CPU build, or no driver)")
    return requested


def choose_precision(requested: str, device: str = "cpu") -> str:
    """Return "bf16" or "fp32" for `requested` ("auto" picks by the hardware's instructions)."""
    if requested not in PRECISIONS:
        raise ModelError(f"--precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested != "auto":
        return requested
    if device == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if bf16_is_fast() else "fp32"


class StopRequest:
    """Catch SIGTERM and SIGINT while training so the loop can checkpoint, then stop.

    Signal handlers can only be set from the main thread; elsewhere (a test calling
    train() from a worker) this watches nothing and `requested` stays False.
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


def wait_while_paused(out: Path, log: Callable[[str], object], poll: float = 2.0) -> float:
    """Sleep while OUT/PAUSE exists; return the seconds slept (kept off the schedule)."""
    marker = out / PAUSE_FILE
    if not marker.exists():
        return 0.0
    log(f"paused: {marker} exists; remove it to go on")
    t0 = time.monotonic()
    while marker.exists():
        time.sleep(poll)
    slept = time.monotonic() - t0
    log(f"resumed after {slept / 60:.1f} min paused")
    return slept


def save_config(cfg: TrainConfig) -> None:
    """Write the run's options to OUT/run_config.json (once, when the run starts)."""
    path = Path(cfg.out) / CONFIG_FILE
    if not path.exists():
        path.write_text(json.dumps(dataclasses.asdict(cfg), indent=1))


def load_config(run: str | Path) -> TrainConfig:
    """Return the options RUN was started with, for `--resume RUN`."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{run} holds no training run ({CONFIG_FILE} is missing)")
    saved = read_json_object(path, str(path), f"delete {run} or start another --out")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    cfg.betas = tuple(cfg.betas)  # type: ignore[assignment]  # JSON gives a list
    cfg.out = str(run)
    return cfg
