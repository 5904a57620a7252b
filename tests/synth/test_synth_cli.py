"""``severe synth`` (one tiny root per module) read back by every reader, and ``severe data summary``."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import types
from pathlib import Path

import av
import pytest

from severe import cli
from severe.data import registry
from severe.data.readers import ava, charades, epic, ucfrep
from severe.data.registry import read_split
from severe.synth.datasets import (AVA_ACTIONS, GYM99_LABELS, SIZES, write_synthetic_root)

TINY = SIZES["tiny"]
MEDIA_SUFFIXES = {".avi", ".mp4", ".MP4", ".webm", ".jpg"}


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@pytest.fixture(scope="module")
def root(synthetic_root) -> Path:
    """The session's root, written by ``severe synth --size tiny --seed 0`` (tests/conftest.py)."""
    return synthetic_root


@pytest.fixture(scope="module")
def bare_root(root, tmp_path_factory) -> Path:
    """The same root with every media file removed (annotations only)."""
    out = tmp_path_factory.mktemp("bare") / "data"
    shutil.copytree(root, out, ignore=lambda d, names: [n for n in names if Path(n).suffix in MEDIA_SUFFIXES])
    return out


def summary_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert cli.main(["data", "summary", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ---- layout and determinism --------------------------------------------------------------------

def test_every_folder_written(root):
    folders = {registry.get_dataset(d).folder for d in registry.DATASET_IDS}
    assert {p.name for p in root.iterdir()} == folders
    assert (root / "hmdb51" / "splits" / ".hug_test_split1.txt.swp").is_file()
    assert (root / "ucf101" / "ucfTrainTestlist" / "trainlist01.txt").read_bytes().endswith(b".avi 5\r\n")
    assert (root / "ucf101" / "ucfTrainTestlist" / "testlist01.txt").read_bytes().endswith(b"_c02.avi\r\n")
    assert b"\r\n" in (root / "ucf101" / "ucfTrainTestlist" / "classInd.txt").read_bytes()
    assert not (root / "gym" / "annotations" / "gym99_train.txt").read_bytes().endswith(b"\n")
    assert (root / "gym" / "annotations" / "gym99_train_org.txt").read_bytes().endswith(b"\n")
    assert (root / "ntu60" / "ntu_60_cross_subject_TrainTestlist" / "testlist01.txt").read_text().splitlines()[0].endswith(".avi ")
    labels = json.loads((root / "smth-smth-v2" / "something-something-v2-annotations"
                         / "something-something-v2-labels.json").read_text())
    assert all(isinstance(v, str) for v in labels.values())


def test_same_seed_same_bytes(root, tmp_path):
    again = tmp_path / "again"
    summary = write_synthetic_root(again, size="tiny", seed=0)
    assert tree_hash(again) == tree_hash(root)
    assert summary["folders"]["ucf101"]["videos"] == 5 * (TINY.train_per_class + TINY.test_per_class)
    # one dataset alone gives the same bytes as in the full root; another seed gives other bytes
    alone = tmp_path / "alone"
    write_synthetic_root(alone, size="tiny", seed=0, datasets=["ucf101"])
    assert [p.name for p in alone.iterdir()] == ["ucf101"]
    assert tree_hash(alone / "ucf101") == tree_hash(root / "ucf101")
    other = tmp_path / "other"
    write_synthetic_root(other, size="tiny", seed=1, datasets=["ucf101"])
    assert tree_hash(other / "ucf101") != tree_hash(root / "ucf101")


def test_refuses_non_empty_target(root):
    assert cli.main(["synth", "--out", str(root), "--datasets", "k400"]) == 2


def test_synthetic_video_decodes(root):
    path = root / "ucf101" / "UCF-101" / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi"
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == TINY.num_frames and frames[0].shape == (TINY.height, 42, 3)


# ---- every reader on the generated files -------------------------------------------------------

PER_CLASS = (TINY.train_per_class, TINY.test_per_class)


@pytest.mark.parametrize("dataset, classes, labels", [
    ("ucf101", 5, range(5)), ("hmdb51", 4, range(4)), ("ssv2", 5, range(5)), ("ntu60", 5, range(5)),
    ("k400", 5, range(5)), ("diving48", 5, (0, 7, 18, 29, 31)), ("gym99", 8, GYM99_LABELS),
    ("gym_vault", 2, (0, 3)), ("gym_floor", 4, (1, 6, 14, 29)), ("gym_fx_s1", 2, (1, 6)), ("gym_ub_s1", 2, (1, 6)),
])
def test_classification_splits(root, dataset, classes, labels):
    for split, per in zip(registry.SPLITS, PER_CLASS):
        entries = read_split(dataset, root, split)
        assert len(entries) == classes * per
        assert sorted({e.label for e in entries}) == sorted(labels)
        assert all((root / registry.get_dataset(dataset).folder / e.path).is_file() for e in entries)


def test_gym288_has_a_val_only_class(root):
    train, test = read_split("gym288", root, "train"), read_split("gym288", root, "test")
    assert 138 not in {e.label for e in train} and 138 in {e.label for e in test}
    assert len(train) == 8 * TINY.train_per_class and len(test) == 9 * TINY.test_per_class
    gym99 = {e.path for e in read_split("gym99", root, "train")}
    assert {e.path for e in train} == gym99  # same clips, finer labels


def test_hmdb_folds_partition_videos(root):
    videos = {p.relative_to(root / "hmdb51").as_posix() for p in (root / "hmdb51" / "videos").rglob("*.avi")}
    train, test = read_split("hmdb51", root, "train"), read_split("hmdb51", root, "test")
    assert len(videos) == 4 * (TINY.train_per_class + TINY.test_per_class + 1)  # one unused per class
    assert not {e.path for e in train} & {e.path for e in test}
    assert {e.path for e in train} | {e.path for e in test} < videos


def test_ek100_segments(root):
    train = read_split("ek100", root, "train")
    assert len(train) == 5 * TINY.train_per_class and all("#" in e.key for e in train)
    assert {e.path for e in train} == {"EPIC-KITCHENS/P01/videos/P01_01.MP4", "EPIC-KITCHENS/P01/videos/P01_101.MP4"}
    info = epic.read_epic_video_info(root / "epic-kitchens-100" / "annotations" / "EPIC_100_video_info.csv")
    assert info["P01_01"].fps == 59.94 and info["P01_101"].fps == 50.0
    segs = epic.read_epic_csv(root / "epic-kitchens-100" / "annotations" / "EPIC_100_train.csv")
    for s in segs:  # frame numbers and timestamps agree
        assert s.start_sec == pytest.approx((s.start_frame - 1) / info[s.video_id].fps, abs=0.006)
    with av.open(str(root / "epic-kitchens-100" / "EPIC-KITCHENS" / "P01" / "videos" / "P01_101.MP4")) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == max(s.stop_frame for s in segs if s.video_id == "P01_101")


def test_ava_files(root):
    adir = root / "ava" / "annotations"
    label_map = ava.read_ava_label_map(adir / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    assert sorted(label_map) == [a for a, _, kind in AVA_ACTIONS if kind]
    gt = ava.read_ava_ground_truth(adir / "ava_train_v2.2.csv")
    assert {b.action_id for b in gt} == {a for a, _, _ in AVA_ACTIONS}  # incl. an id outside the map
    excluded = ava.read_ava_excluded(adir / "ava_train_excluded_timestamps_v2.2.csv")
    assert excluded and not excluded & {b.key for b in gt}
    det = ava.read_ava_detections(adir / "person_box_67091280_iou90"
                                  / "ava_detection_train_boxes_and_labels_include_negative_v2.2.csv")
    kept = ava.read_ava_detections(adir / "person_box_67091280_iou90"
                                   / "ava_detection_train_boxes_and_labels_include_negative_v2.2.csv", min_score=0.9)
    assert -1 in {b.action_id for b in det} and len(kept) < len(det) and all(b.score >= 0.9 for b in kept)
    val = ava.read_ava_detections(adir / "person_box_67091280_iou90" / "ava_detection_val_boxes_and_labels.csv")
    assert {b.action_id for b in val} == {None}
    frames = ava.read_ava_frame_list(root / "ava" / "frame_lists" / "train.csv")
    entries = read_split("ava", root, "train")
    assert [e.path for e in entries] == [f"frames/{v}" for v in frames]
    one = next(iter(frames.values()))
    assert len(one.frames) == TINY.ava_seconds * 30 and (root / "ava" / "frames" / one.frames[0]).is_file()


def test_charades_files(root):
    official = {a.id: a for a in charades.read_charades_csv(root / "charades" / "Charades_v1_train.csv")}
    videos = charades.read_charades_frame_list(root / "charades" / "frame_lists" / "train.csv")
    assert len(videos) == TINY.charades_videos[0] and videos[0].labels == ()  # a video without actions
    for v in videos:  # frame lists regenerate exactly from the official csv
        assert list(v.frame_labels) == charades.charades_frame_labels(official[v.video_id].actions, len(v.frames))
        assert (root / "charades" / "Charades_v1_rgb" / v.frames[-1]).is_file()
    assert set(charades.read_charades_classes(root / "charades" / "Charades_v1_classes.txt")) >= {
        c for v in videos for c in v.labels}
    assert len(read_split("charades", root, "test")) == TINY.charades_videos[1]


def test_ucfrep_files(root):
    train = read_split("ucfrep", root, "train")
    assert len(train) == 3 * TINY.train_per_class
    anns = ucfrep.read_ucfrep_annotations(root / "ucfrep", "train")
    for e, a in zip(train, anns):
        assert e.label == a.count >= 2
        reps = ucfrep.read_repetition_labels(root / "ucfrep" / "annotations" / "repetition_label" / f"{a.class_name}.txt")
        assert reps[a.video] == a.temporal_bound
        n_frames = len(list((root / "ucfrep" / e.path).glob("image_*.jpg")))
        assert n_frames >= a.end_frame and (root / "ucfrep" / e.path / "image_00001.jpg").is_file()
    val = ucfrep.read_ucfrep_annotations(root / "ucfrep", "test")
    assert all((a.offset_next_estimate == -1).all() and (a.offset_pre_estimate == -1).all() for a in val)


# ---- severe data summary -----------------------------------------------------------------------

def test_summary_json_with_and_without_media(root, bare_root, capsys):
    for dataset in ("ucf101", "gym_fx_s1", "ek100", "ava", "charades", "ucfrep"):
        full = summary_json(capsys, dataset, "--root", str(root))
        bare = summary_json(capsys, dataset, "--root", str(bare_root))
        assert full["dataset"] == dataset and full["num_classes"] == registry.get_dataset(dataset).num_classes
        for split in ("train", "test"):
            f, b = full["splits"][split], bare["splits"][split]
            assert f["entries"] == f["present"] > 0 and f["missing"] == 0
            assert b["entries"] == b["missing"] == f["entries"] and b["present"] == 0
            assert b["sha256"] == f["sha256"]


def test_summary_env_root_subset_and_table(root, capsys, monkeypatch):
    monkeypatch.setenv("SEVERE_DATA", str(root))
    out = summary_json(capsys, "gym99", "--num-examples", "9", "--seed", "3")
    assert out["splits"]["train"]["entries"] == 8 * 2  # k = ceil(9 / 8) = 2 per class
    assert out["splits"]["test"]["entries"] == 8 * TINY.test_per_class
    assert cli.main(["data", "summary", "charades"]) == 0
    table = capsys.readouterr().out
    assert "Charades v1 (charades)" in table and "train" in table and "sha256" in table


def test_summary_errors(root, bare_root, capsys, tmp_path):
    assert cli.main(["data", "summary", "nope", "--root", str(root)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(bare_root / "kinetics-400", broken / "kinetics-400")
    path = broken / "kinetics-400" / "labels" / "val_videofolder.txt"
    path.write_text(path.read_text() + "abseiling/x_000001_000011 32\n")
    assert cli.main(["data", "summary", "k400", "--root", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"val_videofolder.txt:{TINY.test_per_class * 5 + 1}:" in err and "Traceback" not in err


def test_bench_wiring(root, capsys, monkeypatch):
    calls = []

    def fake_run_bench(dataset_id, data_root, clips, workers, seed=0):
        calls.append((dataset_id, Path(data_root), clips, workers, seed))
        return {"clips_per_s": 12.5, "clips": clips}

    monkeypatch.setitem(sys.modules, "severe.data.bench", types.SimpleNamespace(run_bench=fake_run_bench))
    capsys.readouterr()
    assert cli.main(["data", "bench", "ucf101", "--root", str(root), "--clips", "4", "--workers", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"clips_per_s": 12.5, "clips": 4}
    assert calls == [("ucf101", root, 4, 1, 0)]
