"""The UCF-RC config schema (defaults = SEVERE's protocol, docs/tasks.md §3.4-3.6) and its value checks."""

from __future__ import annotations

from fvcore.common.config import CfgNode

from severe.errors import SevereError

STREAM_FEATURES = ("same", "split")


def repetition_defaults() -> CfgNode:
    """The base schema (severe.tasks.schema) extended with the UCF-RC keys."""
    from severe.tasks.schema import base_defaults

    c = base_defaults()
    c.EXPERIMENT.ID = "ucfrep"  # names the run and the table column
    c.DATA.CROP = 112  # letterbox size: longer side resized to CROP, zero-padded to CROP x CROP
    c.DATA.ITEMS_PER_VIDEO = 10  # training sub-segments per training video, drawn once (seeded)
    c.DATA.MAX_SEGMENT_FRAMES = 300  # cap on a training sub-segment's length
    c.DATA.CORRECT_CAPPED_COUNT = True  # recount a sub-segment cut to the cap (the original kept the uncut count)
    c.DATA.FLIP = True  # training: horizontal flip with p 0.5, the same for all frames of an item
    c.DATA.NUM_WORKERS = 4
    c.DATA.ALLOW_MISSING = False  # exclude (and record) videos whose frames are missing instead of failing
    c.MODEL.ANCHORS = [0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0]
    c.MODEL.STREAM_FEATURES = "same"  # same (SEVERE, faithful) | split (upstream: left/right halves of layer4)
    c.MODEL.FRAMES_PER_STREAM = 16  # frames per half of the input (16 + 16 = 32)
    c.TRAIN.EPOCHS = 100
    c.TRAIN.BATCH_SIZE = 32  # items per batch over all processes
    c.TRAIN.LR = 5e-5  # Adam, constant
    c.TRAIN.WEIGHT_DECAY = 1e-3
    c.TRAIN.MAX_BATCHES = 1000  # per epoch
    c.TRAIN.MAX_INNER_STEPS = 11  # optimiser steps per batch of the state machine (early_stop 10)
    c.TRAIN.IOU_THRESHOLD = 0.5
    c.TRAIN.BOX_WEIGHT = 50.0
    c.TRAIN.BOX_CLAMP = 2.0  # |box| used to move the training states
    c.TRAIN.STEP_DIVISOR = [5.0, 20.0]  # mp advances by segment length / U(lo, hi)
    c.TRAIN.CHECKPOINT_EVERY = 25  # also keep the model weights of every N-th epoch (0 = last only)
    c.TRAIN.AMP = "off"  # off | bf16 | fp16 (CUDA only)
    c.TEST.BATCH_SIZE = 5  # videos processed in lockstep
    c.TEST.NUM_SCALES = 30
    c.TEST.MIN_SCALE = 0.03
    c.TEST.MAX_SCALE = 0.35
    c.TEST.REFINE_ITERS = 4
    c.TEST.MERGE_WEIGHT = 0.5
    c.TEST.BOX_CLAMP = 0.5
    c.TEST.MIN_CYCLES = 2.0  # a period must be < length / MIN_CYCLES
    c.SEED = 1  # python, numpy, torch, sub-segments, states, flips and the loader order
    return c


def validate(cfg: CfgNode) -> None:
    """Value checks the type system cannot express; one clear line per mistake."""
    anchors = list(cfg.MODEL.ANCHORS)
    checks = [
        (cfg.EXPERIMENT.ID != "", "EXPERIMENT.ID is empty: name the experiment in the config"),
        (cfg.DATA.CROP >= 8, f"DATA.CROP must be >= 8, got {cfg.DATA.CROP}"),
        (cfg.DATA.ITEMS_PER_VIDEO >= 1, f"DATA.ITEMS_PER_VIDEO must be >= 1, got {cfg.DATA.ITEMS_PER_VIDEO}"),
        (cfg.DATA.MAX_SEGMENT_FRAMES >= 8, f"DATA.MAX_SEGMENT_FRAMES must be >= 8, got {cfg.DATA.MAX_SEGMENT_FRAMES}"),
        (cfg.DATA.NUM_WORKERS >= 0, f"DATA.NUM_WORKERS must be >= 0, got {cfg.DATA.NUM_WORKERS}"),
        (len(anchors) >= 1 and all(a > 0 for a in anchors), f"MODEL.ANCHORS must be positive ratios, got {anchors}"),
        (1.0 in anchors, f"MODEL.ANCHORS must contain 1.0 (the period search uses it), got {anchors}"),
        (cfg.MODEL.STREAM_FEATURES in STREAM_FEATURES,
         f"MODEL.STREAM_FEATURES must be one of {STREAM_FEATURES}, got '{cfg.MODEL.STREAM_FEATURES}'"),
        (cfg.MODEL.FRAMES_PER_STREAM >= 2, f"MODEL.FRAMES_PER_STREAM must be >= 2, got {cfg.MODEL.FRAMES_PER_STREAM}"),
        (cfg.TRAIN.EPOCHS >= 1 and cfg.TRAIN.BATCH_SIZE >= 1, "TRAIN.EPOCHS and TRAIN.BATCH_SIZE must be positive"),
        (cfg.TRAIN.LR > 0 and cfg.TRAIN.WEIGHT_DECAY >= 0, "TRAIN.LR must be > 0 and TRAIN.WEIGHT_DECAY >= 0"),
        (cfg.TRAIN.MAX_BATCHES >= 1 and cfg.TRAIN.MAX_INNER_STEPS >= 1,
         "TRAIN.MAX_BATCHES and TRAIN.MAX_INNER_STEPS must be >= 1"),
        (0 < cfg.TRAIN.IOU_THRESHOLD <= 1, f"TRAIN.IOU_THRESHOLD must be in (0, 1], got {cfg.TRAIN.IOU_THRESHOLD}"),
        (len(cfg.TRAIN.STEP_DIVISOR) == 2 and 0 < cfg.TRAIN.STEP_DIVISOR[0] <= cfg.TRAIN.STEP_DIVISOR[1],
         f"TRAIN.STEP_DIVISOR must be [lo, hi] with 0 < lo <= hi, got {list(cfg.TRAIN.STEP_DIVISOR)}"),
        (cfg.TRAIN.CHECKPOINT_EVERY >= 0, f"TRAIN.CHECKPOINT_EVERY must be >= 0, got {cfg.TRAIN.CHECKPOINT_EVERY}"),
        (cfg.TRAIN.AMP in ("off", "bf16", "fp16"), f"TRAIN.AMP must be off, bf16 or fp16, got '{cfg.TRAIN.AMP}'"),
        (cfg.TEST.BATCH_SIZE >= 1, f"TEST.BATCH_SIZE must be >= 1, got {cfg.TEST.BATCH_SIZE}"),
        (cfg.TEST.NUM_SCALES >= 2, f"TEST.NUM_SCALES must be >= 2, got {cfg.TEST.NUM_SCALES}"),
        (0 < cfg.TEST.MIN_SCALE < cfg.TEST.MAX_SCALE, "TEST.MIN_SCALE must be > 0 and < TEST.MAX_SCALE"),
        (cfg.TEST.REFINE_ITERS >= 0, f"TEST.REFINE_ITERS must be >= 0, got {cfg.TEST.REFINE_ITERS}"),
        (0 <= cfg.TEST.MERGE_WEIGHT <= 1, f"TEST.MERGE_WEIGHT must be in [0, 1], got {cfg.TEST.MERGE_WEIGHT}"),
        (cfg.TEST.MIN_CYCLES >= 1, f"TEST.MIN_CYCLES must be >= 1, got {cfg.TEST.MIN_CYCLES}"),
    ]
    for ok, message in checks:
        if not ok:
            raise SevereError(message)
