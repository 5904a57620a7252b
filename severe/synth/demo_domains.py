"""The demo's synthetic domains: a *source* domain to pretrain on and the *target* datasets to evaluate.

The generic generator (:mod:`severe.synth.datasets`) carries each class by motion. The demo adds what
makes pretraining worth it, as it is for real video:

* **Source domain** (the synthetic Kinetics-400, written in its official layout): a label space of its own,
  :data:`SOURCE_CLASSES` drift directions, each clip at its own random speed (:data:`SOURCE_SPEEDS`) with its
  own random background and objects, and many videos per class, so that a model must learn the direction of
  motion, not a look. That is what transfers to the targets, whose classes are carried by motion, as motion
  features learned on Kinetics carry over to UCF101 or FineGym. Some target classes also differ in path shape
  (a zig-zag), which the source never shows.
* **Targets**: the generic generator's datasets (same writers, same official formats); the recognition ones
  with more test videos (:data:`DEMO_SIZE`) so that accuracies are not decided by one or two videos, and
  few training videos, so an initialisation that already sees motion matters. Their classes are motion at one fixed
  medium speed, which the source draws from a range around it; they never share a video, a seed or a
  label list with the source.

Nothing here changes what :func:`severe.synth.datasets.write_synthetic_root` writes for its named sizes.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from severe.synth import annotations as ann
from severe.synth import videos
from severe.synth.datasets import SynthSize, write_synthetic_root

#: target datasets of the demo: few training videos, enough test videos for a readable accuracy
DEMO_SIZE = SynthSize(height=32, num_frames=32, train_per_class=4, test_per_class=6, ava_videos=(3, 2),
                      ava_seconds=6, charades_videos=(8, 6), charades_frames=72, ucfrep_cycle=(6, 12),
                      ucfrep_cycles=(2, 5), ek_segment=(20, 40))

SOURCE_CLASSES = len(videos._DIRECTIONS)
SOURCE_SPEEDS = (0.03, 0.045)  # drift speed range, min(H, W) per frame (the targets move at 0.035)


def source_class_name(label: int) -> str:
    """The drift direction of a source class, e.g. ``diag_up``."""
    return videos._DIRECTIONS[label][0]


def source_spec(label: int, rng: np.random.Generator) -> videos.MotionSpec:
    """The motion of one clip of source class ``label``: a straight drift in its direction at a random speed."""
    direction, angle = videos._DIRECTIONS[label]
    return videos.MotionSpec(direction, angle, "straight", 0.0, 16.0, float(rng.uniform(*SOURCE_SPEEDS)))


def render_source_clip(label: int, *, num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """A source-domain clip (uint8 [T, H, W, 3]): random background and objects, all moving as one random
    draw of class ``label``'s motion."""
    rng = np.random.default_rng(seed)
    spec = source_spec(label, rng)
    frames, bg_mean = videos._canvas(rng, num_frames, height, width)
    for _ in range(videos.OBJECTS_PER_CLIP):
        videos._moving_object(frames, bg_mean, spec, np.arange(num_frames), 1.0, rng)
    return frames


def write_source_domain(root: Path, train_per_class: int, val_per_class: int, seed: int = 0,
                        size: SynthSize = DEMO_SIZE) -> dict:
    """The source domain in the Kinetics-400 layout under ``root/kinetics-400`` (``VideoData/<class>/<clip>.avi``
    and ``labels/{train,val}_videofolder.txt``); labels 0..SOURCE_CLASSES-1. Returns a summary."""
    folder = Path(root) / "kinetics-400"
    rng = np.random.default_rng([seed, zlib.crc32(b"demo-source")])
    h, w = size.height, 2 * round(size.height * 4 / 3 / 2)
    count = 0
    for split, per in (("train", train_per_class), ("val", val_per_class)):
        rows = []
        for label in range(SOURCE_CLASSES):
            for i in range(per):
                clip = f"{source_class_name(label)}/{split}_{label:02d}_{i:04d}"
                frames = render_source_clip(label, num_frames=size.num_frames, height=h, width=w,
                                            seed=int(rng.integers(0, 2**31 - 1)))
                videos.write_video(folder / "VideoData" / f"{clip}.avi", frames, 30)
                rows.append((clip, len(frames), label))
                count += 1
        ann.write_videofolder_list(folder / "labels" / f"{split}_videofolder.txt", rows)
    return {"videos": count, "classes": SOURCE_CLASSES}


#: target datasets written at :data:`DEMO_SIZE` (the others, which cost more per video, at the ``tiny`` size)
RECOGNITION_TARGETS = frozenset({"ucf101", "ssv2", "gym99"})


def write_demo_root(root: Path, targets: list[str], source_per_class: tuple[int, int], seed: int = 0) -> dict:
    """The demo's data root: the target datasets (generic writers; recognition ones at :data:`DEMO_SIZE`,
    the rest at ``tiny``) and the source domain."""
    recognition = [d for d in targets if d in RECOGNITION_TARGETS]
    rest = [d for d in targets if d not in RECOGNITION_TARGETS]
    summary = write_synthetic_root(root, DEMO_SIZE, seed=seed, datasets=recognition)
    if rest:
        summary["folders"].update(write_synthetic_root(root, "tiny", seed=seed, datasets=rest)["folders"])
    summary["folders"]["kinetics-400"] = write_source_domain(root, *source_per_class, seed=seed)
    return summary
