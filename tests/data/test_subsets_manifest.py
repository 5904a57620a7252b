"""N-example subsets (docs/protocol.md §6) and manifests (docs/datasets.md §1.3)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from severe.data.entries import VideoEntry
from severe.data.manifest import check_media, locate_media, manifest_sha256, media_present, split_manifest
from severe.data.subsets import read_subset_list, select_subset, split_validation, write_subset_list
from severe.errors import SevereError


def entries_with(counts: dict[int, int]) -> list[VideoEntry]:
    """Interleaved entries: class c has counts[c] items named c<c>_<i>."""
    out = []
    for i in range(max(counts.values())):
        for c, n in counts.items():
            if i < n:
                out.append(VideoEntry(path=f"c{c}_{i}.avi", label=c, key=f"c{c}_{i}.avi"))
    return out


# ---- subsets -----------------------------------------------------------------------------------

def test_subset_per_class_hand_computed():
    entries = entries_with({2: 7, 0: 10, 1: 3})
    sub = select_subset(entries, num_examples=12, seed=5)  # C_present = 3 -> k = 4
    assert [e.label for e in sub] == [0] * 4 + [1] * 3 + [2] * 4
    rng = np.random.default_rng(5)  # the documented call sequence: class 0, (class 1 has <= k), class 2
    pick0 = sorted(rng.choice(10, size=4, replace=False).tolist())
    pick2 = sorted(rng.choice(7, size=4, replace=False).tolist())
    assert [e.key for e in sub] == ([f"c0_{i}.avi" for i in pick0] + [f"c1_{i}.avi" for i in range(3)]
                                    + [f"c2_{i}.avi" for i in pick2])
    assert len({e.key for e in sub}) == len(sub)  # without replacement


def test_subset_deterministic_and_seeded():
    entries = entries_with({c: 30 for c in range(5)})
    a = select_subset(entries, 20, seed=1)
    assert a == select_subset(entries, 20, seed=1)
    assert a != select_subset(entries, 20, seed=2)
    assert select_subset(entries, 10_000, seed=1) == sorted(entries, key=lambda e: e.label)  # all, label order


@pytest.mark.parametrize("classes, n, expected", [(101, 1000, 1010), (99, 1000, 1089), (7, 3, 7)])
def test_subset_sizes_of_protocol(classes, n, expected):
    entries = entries_with({c: 40 for c in range(classes)})
    sub = select_subset(entries, n, seed=0)
    assert len(sub) == expected == math.ceil(n / classes) * classes


def test_validation_split_hand_computed():
    entries = entries_with({2: 7, 0: 10, 1: 1, 3: 2})
    train, val = split_validation(entries, 0.2, seed=5)
    rng = np.random.default_rng([5, 1])  # classes in label order; class 1 (one entry) is skipped
    held = {f"c0_{i}.avi" for i in rng.choice(10, size=2, replace=False)}  # round(0.2 * 10) = 2
    held |= {f"c2_{i}.avi" for i in rng.choice(7, size=1, replace=False)}  # round(1.4) = 1
    held |= {f"c3_{i}.avi" for i in rng.choice(2, size=1, replace=False)}  # at least one, keeps one
    assert {e.key for e in val} == held
    assert [e for e in entries if e.key not in held] == train  # input order kept, nothing lost or duplicated
    assert [e for e in entries if e.key in held] == val
    assert split_validation(entries, 0.2, seed=5) == (train, val)
    assert split_validation(entries, 0.2, seed=6) != (train, val)
    _, most = split_validation(entries_with({0: 4}), 0.99, seed=0)
    assert len(most) == 3  # one always stays for training


@pytest.mark.parametrize("entries, fraction, words", [
    (entries_with({0: 5}), 0.0, "VAL_FRACTION must be in"), (entries_with({0: 5}), 1.0, "VAL_FRACTION must be in"),
    (entries_with({0: 1, 1: 1}), 0.5, "no class has two"),
])
def test_validation_split_errors(entries, fraction, words):
    with pytest.raises(SevereError, match=words):
        split_validation(entries, fraction, seed=0)


def test_subset_c_present_counts_only_present_classes():
    entries = entries_with({0: 10, 5: 10, 287: 10})  # labels need not be contiguous
    assert len(select_subset(entries, 7, seed=0)) == 9  # k = ceil(7/3) = 3


def test_subset_errors():
    with pytest.raises(SevereError, match="positive"):
        select_subset(entries_with({0: 3}), 0, seed=0)
    with pytest.raises(SevereError, match="single-label"):
        select_subset([VideoEntry("a", -1, "a")], 1, seed=0)


def test_write_subset_list(tmp_path):
    sub = select_subset(entries_with({0: 4, 1: 4}), 4, seed=3)
    path = write_subset_list(sub, tmp_path / "run" / "subset.txt", comment="ucf101 N=4 seed=3")
    text = path.read_text()
    assert text.startswith("# severe N-example subset\n# entries: 4\n# ucf101 N=4 seed=3\n")
    assert read_subset_list(path) == [(e.key, e.label) for e in sub]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


# ---- manifest ----------------------------------------------------------------------------------

def _ucf_root(tmp_path: Path, classes: int = 3, per_class: int = 4) -> Path:
    lists = tmp_path / "ucf101" / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    names = [f"Class{c}" for c in range(classes)]
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    train = [f"{n}/v_{n}_g{8 + j:02d}_c01.avi {i + 1}" for i, n in enumerate(names) for j in range(per_class)]
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text(f"{names[0]}/v_{names[0]}_g01_c01.avi\n{names[-1]}/v_{names[-1]}_g01_c01.avi\n")
    return tmp_path


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_manifest_sha256_hand_computed(tmp_path):
    root = _ucf_root(tmp_path)
    m = split_manifest("ucf101", root, "test")
    text = ("UCF-101/Class0/v_Class0_g01_c01.avi\t0\n"
            "UCF-101/Class2/v_Class2_g01_c01.avi\t2\n")
    assert m["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert (m["entries"], m["present"], m["missing"]) == (2, 0, 2)
    assert m["missing_examples"] == ["UCF-101/Class0/v_Class0_g01_c01.avi", "UCF-101/Class2/v_Class2_g01_c01.avi"]
    # lines are sorted bytewise before hashing (uppercase before lowercase, "#" before letters)
    lines = [("b\u00e9", "1"), ("B", "10"), ("a#2", "3"), ("a", "2")]
    expected = b"B\t10\na\t2\na#2\t3\nb\xc3\xa9\t1\n"
    assert manifest_sha256(lines) == hashlib.sha256(expected).hexdigest()


def test_manifest_counts_present_and_subset_independent_of_media(tmp_path):
    root = _ucf_root(tmp_path, classes=3, per_class=6)
    full = split_manifest("ucf101", root, "train", num_examples=6, seed=4)
    assert (full["entries"], full["present"], full["missing"]) == (6, 0, 6)
    # add some media: the subset (and its hash) must not change, only the present/missing counts
    for j in (0, 1, 2):
        _touch(root / "ucf101" / "UCF-101" / "Class0" / f"v_Class0_g{8 + j:02d}_c01.avi")
    again = split_manifest("ucf101", root, "train", num_examples=6, seed=4)
    assert again["sha256"] == full["sha256"] and again["entries"] == 6
    assert again["present"] + again["missing"] == 6
    everything = split_manifest("ucf101", root, "train")
    assert (everything["entries"], everything["present"], everything["missing"]) == (18, 3, 15)
    assert split_manifest("ucf101", root, "test", num_examples=1)["entries"] == 2  # test split always complete


def test_media_present(tmp_path):
    e = VideoEntry("a/b.avi", 0, "a/b.avi")
    assert not media_present(tmp_path, e, "video")
    _touch(tmp_path / "a" / "b.avi")
    assert media_present(tmp_path, e, "video")
    f = VideoEntry("frames/x", -1, "frames/x")
    (tmp_path / "frames" / "x").mkdir(parents=True)
    assert not media_present(tmp_path, f, "frames")  # empty folder
    _touch(tmp_path / "frames" / "x" / "x_000001.jpg")
    assert media_present(tmp_path, f, "frames")
    assert not media_present(tmp_path, VideoEntry("frames", -1, "frames"), "video")  # a folder is no video


def test_check_media_error_and_allow(tmp_path):
    root = _ucf_root(tmp_path, classes=2, per_class=4)
    from severe.data.registry import read_split

    entries = read_split("ucf101", root, "train")
    _touch(root / "ucf101" / "UCF-101" / "Class0" / "v_Class0_g08_c01.avi")
    with pytest.raises(SevereError) as err:
        check_media("ucf101", root, entries, allow_missing=False)
    msg = str(err.value)
    assert "7 of 8 media missing" in msg and "DATA.ALLOW_MISSING True" in msg and "--allow-missing" not in msg
    assert msg.count("UCF-101/") == 5 and "v_Class0_g09_c01.avi" in msg and "v_Class1_g10_c01.avi" not in msg
    present, missing = check_media("ucf101", root, entries, allow_missing=True)
    assert [e.key for e in present] == ["UCF-101/Class0/v_Class0_g08_c01.avi"]
    assert len(missing) == 7 and len(present) + len(missing) == len(entries)  # nothing dropped
    assert sorted(e.key for e in present + missing) == sorted(e.key for e in entries)


def test_alternative_media_forms(tmp_path):
    # SSv2 .webm instead of the converted .avi; EK-100 rgb_frames folder instead of the .MP4
    adir = tmp_path / "smth-smth-v2" / "something-something-v2-annotations"
    adir.mkdir(parents=True)
    (adir / "something-something-v2-labels.json").write_text('{"Closing something": "0"}')
    (adir / "something-something-v2-train.json").write_text(
        '[{"id": "5", "label": "closing a box", "template": "Closing [something]", "placeholders": ["a box"]},'
        ' {"id": "6", "label": "closing a box", "template": "Closing [something]", "placeholders": ["a box"]}]')
    _touch(tmp_path / "smth-smth-v2" / "something-something-v2-videos_avi" / "5.webm")
    from severe.data.registry import read_split

    entries = read_split("ssv2", tmp_path, "train")
    found = locate_media("ssv2", tmp_path, entries[0])
    assert found == (tmp_path / "smth-smth-v2" / "something-something-v2-videos_avi" / "5.webm", "video")
    assert locate_media("ssv2", tmp_path, entries[1]) is None
    present, missing = check_media("ssv2", tmp_path, entries, allow_missing=True)
    assert [e.key for e in present] == [entries[0].key] and [e.key for e in missing] == [entries[1].key]

    ek = VideoEntry("EPIC-KITCHENS/P01/videos/P01_01.MP4", 3, "EPIC-KITCHENS/P01/videos/P01_01.MP4#P01_01_0")
    assert locate_media("ek100", tmp_path, ek) is None
    _touch(tmp_path / "epic-kitchens-100" / "EPIC-KITCHENS" / "P01" / "rgb_frames" / "P01_01" / "frame_0000000001.jpg")
    assert locate_media("ek100", tmp_path, ek) == (
        tmp_path / "epic-kitchens-100" / "EPIC-KITCHENS" / "P01" / "rgb_frames" / "P01_01", "frames")


def test_num_examples_rejected_for_structured_datasets(tmp_path):
    (tmp_path / "charades" / "frame_lists").mkdir(parents=True)
    (tmp_path / "charades" / "frame_lists" / "train.csv").write_text(
        "original_vido_id video_id frame_id path labels\nAAAAA 0 0 AAAAA/AAAAA-000001.jpg 3\n")
    with pytest.raises(SevereError, match="--num-examples"):
        split_manifest("charades", tmp_path, "train", num_examples=10)
