"""The protocol fuzzer's long run: tests/e2e/lsp_fuzz.py for many more sequences.

It exports the tests' tiny random GPT-J (or takes --bundle), starts one `jpilot serve`
per position encoding, and runs the hypothesis state machine with --examples sequences
of up to --steps steps each, with a fresh random seed unless --seed is given. On a
failure hypothesis prints the shortest sequence it found; the exit status is 1.

Run:  python scripts/fuzz_lsp.py [--examples 300] [--steps 60] [--seed N] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "e2e")]

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402
from lsp_fuzz import LspMachine, start_server  # noqa: E402


def tiny_bundle(folder: Path) -> Path:
    """Export the tests' tiny random GPT-J into `folder`."""
    from jpilot.model.export import export_bundle

    from tiny_models import make_gptj

    return export_bundle(make_gptj(folder / "ckpt"), folder / "bundle")


def main() -> int:
    """Run the fuzzer under each encoding; print what ran and how it ended."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="sequences per encoding")
    parser.add_argument("--steps", type=int, default=60, help="most steps per sequence")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: a tiny export)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    bundle = args.bundle or tiny_bundle(Path(tempfile.mkdtemp(prefix="jpilot-fuzz-")))
    random.seed(seed)  # hypothesis draws its own seed from the global generator
    failed = False
    for encoding in ("utf-16", "utf-8"):
        client = start_server(str(bundle), encoding)
        machine = type("Machine", (LspMachine,), {"client": client, "encoding": encoding})
        t0 = time.monotonic()
        try:
            run_state_machine_as_test(machine, settings=settings(
                max_examples=args.examples, stateful_step_count=args.steps, deadline=None,
                database=None, suppress_health_check=list(HealthCheck)))  # fmt: skip
            outcome = "passed"
        except BaseException as exc:  # hypothesis re-raises the shrunk failure
            failed, outcome = True, f"FAILED: {type(exc).__name__}: {str(exc)[:2000]}"
        finally:
            client.close()
        print(f"{encoding}: {args.examples} sequences of up to {args.steps} steps, "
              f"seed {seed}, {time.monotonic() - t0:.0f} s: {outcome}", flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
