"""`jpilot model card`: write a bundle's MODEL_CARD.md from its training run and its eval.

Reads `training_summary.json` and `train_log.jsonl` from the run folder that
`jpilot model train --out RUN` wrote, and the JSON that `jpilot model eval --json`
wrote, so every figure in the card comes from a file a reader can regenerate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from jpilot.model.abilities import abilities_table
from jpilot.model.bundle import CARD_FILE, read_manifest
from jpilot.model.errors import ModelError
from jpilot.model.evaluate import CODEXGLUE_ROW
from jpilot.model.train.config import HISTORY_DIR

TRAINING_HEADING = "## Training"  # the section a later run's card quotes
ABILITIES_HEADING = "## Measured abilities"  # model-written features vs their thresholds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `jpilot model card` arguments."""
    parser.add_argument("bundle", type=Path, help="bundle folder whose MODEL_CARD.md to write")
    parser.add_argument("--run", type=Path, required=True, help="the `jpilot model train` --out")
    parser.add_argument("--eval", type=Path, help="JSON written by `jpilot model eval --json`")
    parser.add_argument("--note", action="append", default=[], help="extra limitation (repeat)")


def run(args: argparse.Namespace) -> int:
    """Write the card."""
    if not is_run(args.run):
        raise ModelError(f"{args.run} has no training_summary.json; is it a training run?")
    evaluation = json.loads(args.eval.read_text(encoding="utf-8")) if args.eval else None
    text = card_for_run(args.bundle, args.run, evaluation, args.note)
    (args.bundle / CARD_FILE).write_text(text, encoding="utf-8")
    print(f"wrote {args.bundle / CARD_FILE}")
    return 0


def is_run(folder: Path) -> bool:
    """Return whether `folder` is a `jpilot model train --out` folder with a finished summary."""
    return (folder / "training_summary.json").is_file()


def card_for_run(
    bundle: Path, run: Path, evaluation: dict | None = None, notes: list[str] | None = None
) -> str:
    """Return the card of `bundle`, exported from the training run in `run`."""
    summary = json.loads((run / "training_summary.json").read_text(encoding="utf-8"))
    log_path = run / "train_log.jsonl"
    curve = [json.loads(x) for x in log_path.read_text().splitlines()] if log_path.exists() else []
    earlier = run / HISTORY_DIR / CARD_FILE  # written by `train --init-from`
    history = earlier.read_text(encoding="utf-8") if earlier.is_file() else None
    return render(bundle, summary, curve, evaluation, notes or [], history)


def _table(rows: list[tuple[Any, ...]], head: tuple[str, ...]) -> str:
    """Render a Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _curve(curve: list[dict]) -> str:
    """Summarise the loss curve at about eight points."""
    if not curve:
        return "(no training log)"
    step = max(1, len(curve) // 8)
    picks = curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])
    rows = [
        (r["step"], f"{r['elapsed'] / 60:.1f}", f"{r['tokens']:,}", f"{r['train_loss']:.3f}",
         f"{r['val_loss_plain']:.3f}", f"{r['val_bpb']:.3f}", f"{r['val_loss_fim']:.3f}")
        for r in picks
    ]  # fmt: skip
    head = ("step", "minutes", "tokens", "train loss", "val loss", "val bits/byte", "val FIM loss")
    return _table(rows, head)


def _corpus(corpus: dict) -> str:
    """Render the corpus manifest: one row per package."""
    packages = corpus.get("packages", [])
    rows = [
        (p["name"], p["version"], p["licence"], p["files"], f"{p.get('tokens', 0):,}")
        for p in sorted(packages, key=lambda p: -p.get("tokens", 0))
    ]
    total = sum(p.get("tokens", 0) for p in packages)
    head = ("package", "version", "licence", "files", "tokens")
    near = corpus.get("near_duplicate_files")
    aside = f", {near} more set aside as near-duplicates of training files" if near else ""
    return (
        f"{corpus.get('files', '?')} files ({corpus.get('val_files', '?')} held out for "
        f"validation{aside}), {total:,} tokens, after deduplication.\n\n" + _table(rows, head)
    )


def _branching(ev: dict) -> str:
    """Say how many first tokens the eval branched on (older evals did not record it)."""
    k = ev.get("branches", 1)
    return f" with first-token branching over {k}" if k > 1 else ""


def _evaluation(ev: dict | None) -> str:
    """Render the eval figures and samples."""
    if not ev:
        return "(not evaluated yet: run `jpilot model eval BUNDLE --json FILE`)"

    def interval(row: dict) -> str:  # evals before the interval was added have none
        low, high = row.get("exact_match_95", (None, None))
        return f"{low:.1f}-{high:.1f}%" if low is not None else "-"

    rows = [
        (
            k,
            f"{ev[k]['exact_match']:.1f}%",
            interval(ev[k]),
            f"{ev[k]['edit_similarity']:.1f}",
            ev[k]["cases"],
        )
        for k in (
            "model",
            "model, line start",
            "model, mid-line",
            "model, code lines",
            "model, in strings",
            CODEXGLUE_ROW,
            "copy baseline",
            "model, near-duplicate files",
            "model, other files",
        )
        if k in ev
    ]
    near = ev.get("near_duplicate_files")
    if near is not None:  # None: --corpus evals, and evals from before the check
        near = (
            f" {near} of them nearly duplicate a training file."
            if ev.get("near_duplicates_included")
            else f" {near} other held-out files, which nearly duplicate a training file, "
            "are left out."
        )
    set_id = f", set {ev['files_id']}" if "files_id" in ev else ""  # `eval` prints it too
    out = (
        f"Rest-of-line completion on {ev['files']} held-out files "
        f"(FIM {'on' if ev.get('fim') else 'off'}, greedy{_branching(ev)}, token healing"
        f"{set_id}), "
        f"{ev.get('ms_per_line', 0):.0f} ms per line on the machine that ran it."
        f"{near or ''} The 95% interval of exact match comes from resampling whole files."
        "\n\n"
        + _table(rows, ("predictor", "exact match", "95% interval", "edit similarity", "lines"))
        + f"\n\nBits per token {ev['bits_per_token']:.3f}, bits per byte "
        f"{ev['bits_per_byte']:.3f} on held-out files.\n\nUncurated samples:\n"
    )
    for s in ev.get("samples", []):
        out += (
            f"\n- `{s['file']}` ({s['cut']}): prompt ends `{s['prompt_tail']!r}`\n"
            f"  - model: `{s['completion']!r}`\n  - truth: `{s['truth']!r}`"
        )
    return out


def _earlier_training(summary: dict, card: str | None) -> str:
    """Describe the bundle a run started from (`--init-from`), quoting its card."""
    start = summary.get("config", {}).get("init_from")
    if not start:
        return ""
    out = (
        f"\n\n### Where this run started\n\nNot from random weights: from the bundle "
        f"`{start}` (`--init-from`), with its weights (dequantized when int8) and its "
        "tokenizer, so the figures above add to that bundle's own training"
    )
    if not card or TRAINING_HEADING not in card:
        return out + "."
    section = card.split(TRAINING_HEADING, 1)[1].split("\n## ", 1)[0].strip()
    quoted = "\n".join(f"> {line}" if line else ">" for line in section.splitlines())
    return out + ", quoted from its model card:\n\n" + quoted


def render(
    bundle: Path,
    summary: dict,
    curve: list[dict],
    ev: dict | None,
    notes: list[str],
    history: str | None = None,
) -> str:
    """Return the whole MODEL_CARD.md text; `history` is the starting bundle's card."""
    m = read_manifest(bundle)
    cfg = summary.get("config", {})
    minutes = summary.get("wall_time_s", 0) / 60
    init = f" --init-from {cfg['init_from']}" if cfg.get("init_from") else ""
    if cfg.get("add_layers"):
        init += f" --add-layers {cfg['add_layers']}"
    fim = "" if m.fim else " --no-fim"
    extra = " --packages-dir DIR" if cfg.get("package_dirs") else ""
    extra_note = (
        " DIR holds the corpus table's packages that jpilot's own environment lacks, "
        "installed with `pip install --no-deps --target DIR NAME==VERSION ...`."
        if extra
        else ""
    )
    order = cfg.get("fim_order", "psm")  # runs from before --fim-order trained PSM
    limitations = [
        "A small model trained for minutes on two CPU cores: it completes common idioms "
        "and names from the context, not whole algorithms.",
        "Trained on Python only (CPython's stdlib and permissively licensed packages).",
        *notes,
    ]
    return f"""# jpilot default model

A small code-tuned GPT-J trained on CPU by `jpilot model train`, shipped so that
jpilot completes code offline on a fresh machine. Retrain or replace it at will.

## Model

| field | value |
|---|---|
| architecture | GPT-J, {m.n_layer} layers, {m.n_head} heads x {m.head_dim}, rotary {m.rotary_dim} |
| parameters | {summary.get("params", 0) / 1e6:.1f}M |
| vocabulary | {m.vocab_size} (byte-level BPE with `<fim_prefix>`/`<fim_suffix>`/`<fim_middle>`) |
| context | {m.n_positions} tokens (trained on {cfg.get("seq_len")}-token windows) |
| bundle dtype | {m.dtype} |
| sha256 of model.onnx | `{m.onnx_sha256}` |

{TRAINING_HEADING}

{summary.get("tokens_seen", 0):,} tokens seen in {summary.get("steps")} steps,
{minutes:.0f} minutes of wall time on {cfg.get("threads")} CPU threads (bf16 autocast),
batch {cfg.get("batch_size")} x {cfg.get("seq_len")} tokens, peak learning rate
{cfg.get("lr")} with warmup and cosine decay, {int(100 * cfg.get("fim_rate", 0))}% of
windows in fill-in-the-middle ({order.upper()}) form, seed {cfg.get("seed")}.
Reproduce: `jpilot model train --out RUN --minutes {cfg.get("minutes")} --layers
{cfg.get("layers")} --d-model {cfg.get("d_model")} --heads {cfg.get("heads")} --vocab-size
{cfg.get("vocab_size")} --seq-len {cfg.get("seq_len")} --batch-size {cfg.get("batch_size")}
--lr {cfg.get("lr")} --fim-order {order}{init}{extra}` then
`jpilot model export RUN/checkpoint BUNDLE --quantize int8{fim}`.{extra_note}

{_curve(curve)}{_earlier_training(summary, history)}

## Corpus

{_corpus(summary.get("corpus", {}))}

## Evaluation

{_evaluation(ev)}

{ABILITIES_HEADING}

{abilities_table(m.abilities)}

## Limitations

{chr(10).join(f"- {x}" for x in limitations)}
"""
