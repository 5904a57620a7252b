"""A tiny ViT (converted VideoMAE layout) finetuned end to end with the ViT recipe (docs/protocol.md §15): the
recipe reaches the config, the optimiser, the schedule, the 3-crop test and the results record."""

from __future__ import annotations

import json

from severe.cli import main as severe_main


def test_videomae_tiny_finetune_with_recipe(synthetic_root, synthetic_checkpoint, tmp_path):
    weights = synthetic_checkpoint("videomae")
    out = tmp_path / "run"
    argv = ["run", "recognition", "domain/ucf101", "--init", "videomae", "--weights", str(weights), "--trust", "--data-root",
            str(synthetic_root), "--out", str(out), "--no-progress", "SEED", "0", "TRAIN.EPOCHS", "2",
            "TRAIN.WARMUP_EPOCHS", "1", "TRAIN.BATCH_SIZE", "4", "DATA.NUM_FRAMES", "4", "DATA.CROP", "32",
            "DATA.TEST_RESIZE", "32", "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1", "DATA.TEST_CLIPS", "2",
            "TEST.BATCH_SIZE", "10"]
    assert severe_main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    cfg = res["config"]
    assert res["init"]["arch"] == "vit_tiny_videomae"
    assert (cfg["TRAIN"]["RECIPE"], cfg["TRAIN"]["OPTIMIZER"], cfg["TRAIN"]["LAYER_DECAY"], cfg["TRAIN"]["SCHEDULE"],
            cfg["DATA"]["TEST_CROPS"], cfg["DATA"]["RAND_AUGMENT"], cfg["TRAIN"]["MIXUP"], cfg["MODEL"]["DROP_PATH"]) == (
        "videomae", "adamw", 0.75, "warmup_cosine", 3, [7, 4], 0.8, 0.1)
    assert res["recipe"]["name"] == "videomae" and res["recipe"]["inferred"] is True
    assert any("ViT recipe" in d for d in res["deviations"])
    assert any("VideoMAE finetuning recipe" in r["why"] for r in res["init"]["rules"])
    assert res["data"]["test_videos"] > 0 and 0.0 <= res["metrics"]["video_top1"] <= 1.0
    start = next(json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                 if json.loads(line).get("event") == "start")
    schedule = start["setup"]["schedule"] if "setup" in start else start["schedule"]
    assert schedule["kind"] == "warmup_cosine" and abs(schedule["base_lr"] - 1e-3 * 4 / 256) < 1e-15
    optimizer = start["setup"]["optimizer"] if "setup" in start else start["optimizer"]
    assert optimizer["layer_decay"] == {"family": "videomae", "decay": 0.75, "depth": 2, "prefix": "backbone."}


def _dry_run_ids(capsys, argv: list[str]) -> list[str]:
    capsys.readouterr()
    assert severe_main(argv) == 0
    return [line.split("]", 1)[1].split(":", 1)[0].strip() for line in capsys.readouterr().out.splitlines()
            if line.strip().startswith("[new]")]


def test_benchmark_dry_run_lists_the_cnn_table_for_a_vit(synthetic_checkpoint, tmp_path, capsys):
    common = ["--data-root", str(tmp_path), "--out", str(tmp_path / "out"), "--dry-run", "--suite", "full"]
    vit = _dry_run_ids(capsys, ["benchmark", "--init", "videomae", "--weights", str(synthetic_checkpoint("videomae")),
                                "--trust", *common])
    cnn = _dry_run_ids(capsys, ["benchmark", "--init", "gdt", "--weights", str(synthetic_checkpoint("gdt")), *common])
    assert vit == cnn and len(vit) > 8
