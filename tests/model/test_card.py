"""`jpilot model card` renders the run's and the eval's figures into MODEL_CARD.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from jpilot.lsp.cli import main
from jpilot.model.train.warmstart import keep_history


def test_card_from_run_and_eval(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    run = tmp_path / "run"
    run.mkdir()
    summary = {
        "params": 7_360_000, "steps": 900, "tokens_seen": 7_372_800, "wall_time_s": 5400.0,
        "config": {"seq_len": 512, "threads": 2, "batch_size": 16, "lr": 0.002,
                   "fim_rate": 0.5, "seed": 0, "minutes": 90, "layers": 4, "d_model": 256,
                   "heads": 4, "vocab_size": 8192},
        "corpus": {"files": 10, "val_files": 1, "near_duplicate_files": 2, "packages": [
            {"name": "stdlib", "version": "3.11.7", "licence": "PSF-2.0", "files": 9,
             "tokens": 1234},
        ]},
    }  # fmt: skip
    (run / "training_summary.json").write_text(json.dumps(summary))
    curve = [
        {"step": s, "elapsed": 60.0 * s, "tokens": 8192 * s, "train_loss": 5.0 - s / 10,
         "val_loss_plain": 5.1 - s / 10, "val_bpb": 2.0, "val_loss_fim": 5.2}
        for s in range(1, 21)
    ]  # fmt: skip
    (run / "train_log.jsonl").write_text("\n".join(json.dumps(r) for r in curve))
    scores = {"exact_match": 41.5, "edit_similarity": 71.25, "cases": 200,
              "exact_match_95": [35.25, 47.0]}  # fmt: skip
    ev = {"model": scores, "copy baseline": scores | {"exact_match": 3.0}, "files": 93,
          "fim": True, "ms_per_line": 42.0, "bits_per_token": 1.5, "bits_per_byte": 0.4,
          "near_duplicate_files": 25, "near_duplicates_included": False, "files_id": "0123abcd",
          "samples": [{"file": "stdlib/a.py", "cut": "mid", "prompt_tail": "x = f(",
                       "completion": "a)", "truth": "b)"}]}  # fmt: skip
    (tmp_path / "eval.json").write_text(json.dumps(ev))
    assert main(["model", "card", str(bundle), "--run", str(run),
                 "--eval", str(tmp_path / "eval.json"), "--note", "Tested note."]) == 0  # fmt: skip
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "| parameters | 7.4M |" in card
    assert "(FIM on, greedy, token healing, set 0123abcd), 42 ms per line" in card
    assert "ran it. 25 other held-out files, which nearly duplicate a training file, are" in card
    assert "7,372,800 tokens seen in 900 steps" in card and "90 minutes" in card
    assert "| stdlib | 3.11.7 | PSF-2.0 | 9 | 1,234 |" in card
    assert "10 files (1 held out for validation, 2 more set aside as near-dup" in card
    assert "| model | 41.5% | 35.2-47.0% | 71.2 | 200 |" in card
    assert "| copy baseline | 3.0% |" in card
    assert "model: `'a)'`" in card and "- Tested note." in card
    assert "| 20 | 20.0 | 163,840 | 3.000 |" in card  # the last point of the curve is kept


def test_card_of_a_run_that_went_on_from_a_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    run = tmp_path / "run"
    (run / "init_from").mkdir(parents=True)
    earlier = "# old\n\n## Training\n\n11,244,269 tokens seen.\n\n| a | b |\n\n## Corpus\n\nx\n"
    (run / "init_from" / "MODEL_CARD.md").write_text(earlier)
    summary = {"params": 7_360_000, "steps": 10, "tokens_seen": 81_920, "wall_time_s": 60.0,
               "config": {"init_from": "model/default", "lr": 0.001}}  # fmt: skip
    (run / "training_summary.json").write_text(json.dumps(summary))
    assert main(["model", "card", str(bundle), "--run", str(run)]) == 0
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "--init-from model/default`" in card
    assert "from the bundle `model/default` (`--init-from`)" in card
    assert "> 11,244,269 tokens seen.\n>\n> | a | b |" in card  # quoted, tables kept
    assert "> ## Corpus" not in card  # only the training section is quoted


def test_going_on_from_a_runs_own_export_keeps_the_whole_history(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    # run A went on from an earlier bundle; its own export RUN/bundle has only a card stub
    run_a = tmp_path / "a"
    shutil.copytree(tiny_bundle, run_a / "bundle")
    assert "## Training" not in (run_a / "bundle" / "MODEL_CARD.md").read_text()
    (run_a / "init_from").mkdir()
    (run_a / "init_from" / "MODEL_CARD.md").write_text("# old\n\n## Training\n\n1,111 tokens.\n")
    summary = {"params": 7_360_000, "steps": 10, "tokens_seen": 2_222, "wall_time_s": 60.0,
               "config": {"init_from": "model/default", "lr": 0.001}}  # fmt: skip
    (run_a / "training_summary.json").write_text(json.dumps(summary))
    run_b = tmp_path / "b"
    keep_history(run_a / "bundle", run_b)  # what `train --out b --init-from a/bundle` does
    history = (run_b / "init_from" / "MODEL_CARD.md").read_text()
    assert "2,222 tokens seen in 10 steps" in history  # run A's own training
    assert "> 1,111 tokens." in history  # and, quoted, the run before it
    assert (run_b / "init_from" / "jpilot.json").read_bytes() == (
        tiny_bundle / "jpilot.json"
    ).read_bytes()
