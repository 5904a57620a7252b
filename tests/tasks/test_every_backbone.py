"""Every registered backbone through every task: one tiny scratch run per (task, architecture) with
``--init scratch MODEL.ARCH <name>``, on the session's synthetic root. Registering a backbone adds it here
without editing tests. Clip shapes come from the spec (frames a multiple of the temporal stride, crops of
the spatial stride). By default one backbone per family runs (``--every-backbone``: all of them; see
``_archs`` and docs/adding_a_backbone.md)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from severe.cli import main as severe_main
from severe.models import BACKBONES, backbone_key_shapes, get_backbone_spec
from tests.helpers import SLOWFAST_CONFIGS, tiny_clip_size

HEAVY_PARAMETERS = 50_000_000  # full-size ViT-B (86-121 M) and larger


def parameter_count(arch: str) -> int:
    """State-dict entries of the architecture, counted on the meta device (nothing allocated)."""
    total = 0
    for shape in backbone_key_shapes(arch).values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def _archs() -> list:
    """Every registered backbone. By default each family runs its first-registered backbone that has no
    ``test_twin`` and at most HEAVY_PARAMETERS; the others need ``--every-backbone`` (tests/conftest.py), and the
    heavy ones (a twin or over HEAVY_PARAMETERS) are also ``slow``."""
    seen, params = set(), []
    for name, spec in BACKBONES.items():
        heavy = spec.test_twin is not None or parameter_count(name) > HEAVY_PARAMETERS
        marks = [pytest.mark.slow] if heavy else []
        if heavy or spec.family in seen:
            marks.append(pytest.mark.every_backbone)
        else:
            seen.add(spec.family)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


ARCHS = _archs()


def _run(task: str, config: str, arch: str, root: Path, out: Path, *overrides: str) -> dict:
    argv = ["run", task, config, "--init", "scratch", "--data-root", str(root), "--out", str(out), "--no-progress",
            "MODEL.ARCH", arch, "SEED", "0", *overrides]
    assert severe_main(argv) == 0, argv
    results = json.loads((out / "results.json").read_text())
    assert results["init"]["arch"] == arch and results["init_method"] == "scratch"
    return results


def _recognition(arch: str) -> list[str]:
    frames, crop = tiny_clip_size(arch, frames=4)
    return ["TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "8", "DATA.NUM_FRAMES", str(frames), "DATA.CROP", str(crop),
            "DATA.TEST_RESIZE", str(crop), "DATA.NUM_WORKERS", "0", "DATA.TRAIN_CLIPS_PER_VIDEO", "1",
            "DATA.TEST_CLIPS", "1", "TEST.BATCH_SIZE", "10", "TRAIN.MILESTONES", "[1]"]


# finetune, linear probe, kNN (15 training videos: k <= 15), arrow of time
RECOGNITION_CONFIGS = {"domain/ucf101": [], "linear/ucf101": [], "linear/ucf101_knn": ["KNN.K", "3"], "task/arrow_of_time": []}


@pytest.mark.parametrize("config", sorted(RECOGNITION_CONFIGS))
@pytest.mark.parametrize("arch", ARCHS)
def test_recognition_family(arch, config, synthetic_root, tmp_path):
    res = _run("recognition", config, arch, synthetic_root, tmp_path / "run", *_recognition(arch),
               *RECOGNITION_CONFIGS[config])
    assert res["data"]["test_videos"] > 0
    assert all(0.0 <= v <= 1.0 for k, v in res["metrics"].items() if "top" in k or "accuracy" in k)


def _ava_test_size(root: Path, stride: int) -> int:
    """AVA tests on whole frames (short side = DATA.TEST_CROP_SIZE): the smallest short side, a multiple of the
    stride, whose long side is one too (a patch-embedding backbone takes no other)."""
    h, w = cv2.imread(str(next((root / "ava" / "frames").rglob("*.jpg")))).shape[:2]
    short, long = min(h, w), max(h, w)
    return next(s for s in range(stride, 64 * stride, stride) if (s * long) % (short * stride) == 0)


@pytest.mark.parametrize("arch", ARCHS)
def test_ava(arch, synthetic_root, tmp_path):
    spec = get_backbone_spec(arch)
    frames, crop = tiny_clip_size(arch, frames=4)
    res = _run("ava", str(SLOWFAST_CONFIGS / "AVA" / "TINY_SYNTHETIC.yaml"), arch, synthetic_root, tmp_path / "run",
               "TRAIN.EPOCHS", "1", "DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(crop),
               "DATA.TEST_CROP_SIZE", str(_ava_test_size(synthetic_root, spec.spatial_stride)),
               "DATA.TRAIN_JITTER_SCALES", f"[{crop}, {crop}]",
               "DETECTION.SPATIAL_SCALE_FACTOR", str(spec.spatial_stride))
    assert 0.0 <= res["metrics"]["mAP"] <= 1.0 and res["data"]["test"]["boxes"] > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_charades(arch, synthetic_root, tmp_path):
    frames, crop = tiny_clip_size(arch, frames=4)
    res = _run("charades", str(SLOWFAST_CONFIGS / "Charades" / "TINY_SYNTHETIC.yaml"), arch, synthetic_root,
               tmp_path / "run", "TRAIN.EPOCHS", "1", "DATA.NUM_FRAMES", str(frames), "DATA.TRAIN_CROP_SIZE", str(crop),
               "DATA.TEST_CROP_SIZE", str(crop), "DATA.TRAIN_JITTER_SCALES", f"[{crop}, {crop}]",
               "TEST.NUM_ENSEMBLE_VIEWS", "1")
    assert 0.0 <= res["metrics"]["mAP"] <= 1.0


@pytest.fixture(scope="module")
def two_test_videos_root(synthetic_root, tmp_path_factory) -> Path:
    """A data root whose UCFRep test split keeps two of the six videos (links into the shared root): counting
    runs 40-odd network calls per batch of test videos whatever its size, so the test split sets the cost."""
    root = tmp_path_factory.mktemp("ucfrep_two") / "data"
    source, ucfrep = synthetic_root / "ucfrep", root / "ucfrep"
    (ucfrep / "annotations" / "val").mkdir(parents=True)
    (ucfrep / "imgs").symlink_to(source / "imgs", target_is_directory=True)
    for folder in ("train", "repetition_label"):
        (ucfrep / "annotations" / folder).symlink_to(source / "annotations" / folder, target_is_directory=True)
    for mat in sorted((source / "annotations" / "val").glob("*.mat"))[::3]:
        (ucfrep / "annotations" / "val" / mat.name).symlink_to(mat)
    return root


@pytest.mark.parametrize("arch", ARCHS)
def test_repetition_counting(arch, two_test_videos_root, tmp_path):
    """Split streams (each half of forward_features' map): the stride-dependent mode; forward() is covered above."""
    spec = get_backbone_spec(arch)
    per_stream = spec.temporal_stride * max(1, 2 // spec.temporal_stride)  # >= 2 frames, whole feature steps
    _, crop = tiny_clip_size(arch, crop=16)
    res = _run("repetition", "ucfrep", arch, two_test_videos_root, tmp_path / "run",
               "MODEL.STREAM_FEATURES", "split", "MODEL.FRAMES_PER_STREAM", str(per_stream), "DATA.CROP", str(crop),
               "TRAIN.EPOCHS", "1", "TRAIN.BATCH_SIZE", "3", "DATA.ITEMS_PER_VIDEO", "1", "TRAIN.MAX_INNER_STEPS", "1",
               "TRAIN.MAX_BATCHES", "1", "DATA.NUM_WORKERS", "0", "TEST.BATCH_SIZE", "8", "DATA.MAX_SEGMENT_FRAMES", "30",
               "TEST.NUM_SCALES", "2", "TEST.REFINE_ITERS", "0")
    assert res["metrics"]["num_videos"] == 2 and res["metrics"]["mae"] >= 0
