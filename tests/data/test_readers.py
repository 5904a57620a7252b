"""Readers of the official annotation formats, on hand-written files with the example lines of docs/datasets.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from severe.data import registry
from severe.data.readers import ava, charades, epic, gym, ucfrep
from severe.data.registry import get_dataset, manifest_lines, read_split, resolve_data_root
from severe.errors import SevereError
from severe.synth import annotations as ann


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


# ---- registry ----------------------------------------------------------------------------------

def test_registry_table():
    assert registry.DATASET_IDS == ("ucf101", "hmdb51", "ssv2", "ntu60", "gym99", "gym288", "gym_vault", "gym_floor",
                                    "gym_fx_s1", "gym_ub_s1", "k400", "diving48", "ek100", "ava", "charades", "ucfrep")
    expected = {"ucf101": 101, "hmdb51": 51, "ssv2": 174, "ntu60": 60, "gym99": 99, "gym288": 288, "gym_vault": 6,
                "gym_floor": 35, "gym_fx_s1": 11, "gym_ub_s1": 15, "k400": 400, "diving48": 48, "ek100": 97,
                "ava": 80, "charades": 157, "ucfrep": None}
    assert {d: get_dataset(d).num_classes for d in registry.DATASET_IDS} == expected
    assert get_dataset("ssv2").folder == "smth-smth-v2"
    assert {get_dataset(d).folder for d in registry.DATASET_IDS if d.startswith("gym")} == {"gym"}
    assert get_dataset("charades").media == "frames" and get_dataset("ucf101").media == "video"
    with pytest.raises(SevereError, match="unknown dataset 'ucf'.*ucf101.*ucfrep"):
        get_dataset("ucf")


def test_resolve_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("SEVERE_DATA", raising=False)
    with pytest.raises(SevereError, match="SEVERE_DATA"):
        resolve_data_root(None)
    monkeypatch.setenv("SEVERE_DATA", str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_data_root(str(other)) == other  # the command line wins
    with pytest.raises(SevereError, match="not an existing folder"):
        resolve_data_root(str(tmp_path / "nope"))


def test_missing_annotation_file_names_it(tmp_path):
    (tmp_path / "ucf101").mkdir()
    with pytest.raises(SevereError, match=r"classInd\.txt"):
        read_split("ucf101", tmp_path, "train")
    with pytest.raises(SevereError, match="does not exist"):
        read_split("k400", tmp_path, "train")
    with pytest.raises(SevereError, match="unknown split"):
        read_split("ucf101", tmp_path, "val")


# ---- UCF101 / NTU ------------------------------------------------------------------------------

def _ucf_root(tmp_path: Path) -> Path:
    lists = tmp_path / "ucf101" / "ucfTrainTestlist"
    write(lists / "classInd.txt", "1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n3 Archery\r\n4 HandstandPushups\r\n")
    write(lists / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
                                     "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi 1\r\n"
                                     "Archery/v_Archery_g08_c01.avi 3\r\n")
    write(lists / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
                                    "HandstandPushups/v_HandStandPushups_g01_c01.avi\r\n\r\n")
    return tmp_path


def test_ucf101_lists(tmp_path):
    root = _ucf_root(tmp_path)
    train = read_split("ucf101", root, "train")
    assert [(e.path, e.label) for e in train] == [
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi", 0),
        ("UCF-101/Archery/v_Archery_g08_c01.avi", 2)]
    test = read_split("ucf101", root, "test")
    assert [(e.path, e.label) for e in test] == [
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0),
        ("UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi", 3)]
    assert all(e.key == e.path and e.start_sec is None for e in test)


def test_ucf101_bad_lines_name_file_and_line(tmp_path):
    root = _ucf_root(tmp_path)
    lists = root / "ucf101" / "ucfTrainTestlist"
    write(lists / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nYoYo/v_YoYo_g25_c05.avi 101\n")
    with pytest.raises(SevereError, match=r"trainlist01\.txt:2: class folder 'YoYo'"):
        read_split("ucf101", root, "train")
    write(lists / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi one\n")
    with pytest.raises(SevereError, match=r"trainlist01\.txt:1: class id must be an integer"):
        read_split("ucf101", root, "train")
    write(lists / "classInd.txt", "1 ApplyEyeMakeup\n3 Archery\n")
    with pytest.raises(SevereError, match=r"classInd\.txt:2: class id 3 out of order"):
        read_split("ucf101", root, "test")


def test_ntu60_trailing_spaces(tmp_path):
    lists = tmp_path / "ntu60" / "ntu_60_cross_subject_TrainTestlist"
    write(lists / "classInd.txt", "1 drink_water\n2 eat_meal_snack\n3 brushing_teeth\n4 touch_back__backache_\n")
    write(lists / "trainlist01.txt", "touch_back__backache_/S017C003P017R001A046_rgb.avi \n"
                                     "drink_water/S001C001P003R001A001_rgb.avi \n")
    write(lists / "testlist01.txt", "eat_meal_snack/S001C001P003R001A002_rgb.avi ")
    train = read_split("ntu60", tmp_path, "train")
    assert [(e.path, e.label) for e in train] == [
        ("videos/touch_back__backache_/S017C003P017R001A046_rgb.avi", 3),
        ("videos/drink_water/S001C001P003R001A001_rgb.avi", 0)]
    assert [e.label for e in read_split("ntu60", tmp_path, "test")] == [1]


# ---- HMDB51 ------------------------------------------------------------------------------------

def test_hmdb51_split_files_sorted_by_class_and_junk_ignored(tmp_path):
    splits = tmp_path / "hmdb51" / "splits"
    write(splits / "brush_hair_test_split1.txt", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n"
                                                 "April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2 \n"
                                                 "April_09_brush_hair_u_nm_np1_ba_goo_2.avi 0 \n")
    write(splits / "kick_ball_test_split1.txt", "a_kick_ball_0.avi 2 \nb_kick_ball_1.avi 1 \n")
    write(splits / "kick_test_split1.txt", "a_kick_0.avi 1 \n")
    write(splits / "kick_test_split2.txt", "a_kick_0.avi 2 \n")
    write(splits / ".hug_test_split1.txt.swp", b"b0VIM 8.2\x00\xff\xfe junk")
    write(splits / "._brush_hair_test_split1.txt", b"\x00\x05\x16\x07 mac junk")
    (tmp_path / "hmdb51" / "videos" / "aaa_stray_folder").mkdir(parents=True)
    write(tmp_path / "hmdb51" / "videos" / ".DS_Store", b"\x00")
    train = read_split("hmdb51", tmp_path, "train")
    # classes by code point: brush_hair 0, kick 1, kick_ball 2 (file names would sort kick_ball first)
    assert [(e.path, e.label) for e in train] == [
        ("videos/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0),
        ("videos/kick/a_kick_0.avi", 1),
        ("videos/kick_ball/b_kick_ball_1.avi", 2)]
    test = read_split("hmdb51", tmp_path, "test")
    assert [(e.path, e.label) for e in test] == [
        ("videos/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi", 0),
        ("videos/kick_ball/a_kick_ball_0.avi", 2)]


def test_hmdb51_bad_flag(tmp_path):
    write(tmp_path / "hmdb51" / "splits" / "clap_test_split1.txt", "x.avi 1 \ny.avi 3 \n")
    with pytest.raises(SevereError, match=r"clap_test_split1\.txt:2: split flag must be 0, 1 or 2"):
        read_split("hmdb51", tmp_path, "train")


# ---- SSv2 --------------------------------------------------------------------------------------

def test_ssv2_maps_by_template(tmp_path):
    adir = tmp_path / "smth-smth-v2" / "something-something-v2-annotations"
    write(adir / "something-something-v2-labels.json",
          json.dumps({"Approaching something with your camera": "0", "Spinning something that quickly stops spinning": "7",
                      "Attaching something to something": "1"}))
    records = [{"id": "74225", "label": "spinning a coin that quickly stops spinning",
                "template": "Spinning [something] that quickly stops spinning", "placeholders": ["a coin"]},
               {"id": "0012", "label": "approaching something with your camera",  # label text would mislead
                "template": "Approaching [something] with your camera", "placeholders": ["a cup"]}]
    write(adir / "something-something-v2-train.json", json.dumps(records))
    write(adir / "something-something-v2-validation.json", "[]")
    train = read_split("ssv2", tmp_path, "train")
    assert [(e.path, e.label) for e in train] == [("something-something-v2-videos_avi/74225.avi", 7),
                                                  ("something-something-v2-videos_avi/12.avi", 0)]
    assert read_split("ssv2", tmp_path, "test") == []
    records[1]["template"] = "Dropping [something]"
    write(adir / "something-something-v2-train.json", json.dumps(records))
    with pytest.raises(SevereError, match="record 1.*'Dropping \\[something\\]' not in something-something-v2-labels.json"):
        read_split("ssv2", tmp_path, "train")
    write(adir / "something-something-v2-train.json", '[{"id": "1",\n "template": }]')
    with pytest.raises(SevereError, match=r"something-something-v2-train\.json:2: malformed JSON"):
        read_split("ssv2", tmp_path, "train")


# ---- FineGym -----------------------------------------------------------------------------------

def _gym_root(tmp_path: Path) -> Path:
    adir = tmp_path / "gym" / "annotations"
    labels = [0, 5, 6, 16, 17, 40, 41, 74, 88, 98]
    # non-_org form (with .avi, no final newline) and _org form (without extension) mixed
    lines = [f"A0xAXXysHUo_E_002184_002237_A_{i:04d}_{i + 1:04d}.avi {lab}" if i % 2 == 0
             else f"2pBxfMAIaXY_E_001794_001801_A_{i:04d}_{i + 6:04d} {lab}" for i, lab in enumerate(labels)]
    write(adir / "gym99_train.txt", "\n".join(lines))
    write(adir / "gym99_val.txt", "A0xAXXysHUo_E_002184_002237_A_0035_0036.avi 93")
    write(adir / "gym288_train.txt", "2pBxfMAIaXY_E_001794_001801_A_0000_0006 287\n")
    write(adir / "gym288_val.txt", "2pBxfMAIaXY_E_001794_001801_A_0000_0006 138\n")
    return tmp_path


def test_gym_both_line_forms(tmp_path):
    root = _gym_root(tmp_path)
    train = read_split("gym99", root, "train")
    assert len(train) == 10
    assert train[0].path == "videos/A0xAXXysHUo_E_002184_002237_A_0000_0001.avi"
    assert train[1].path == "videos/2pBxfMAIaXY_E_001794_001801_A_0001_0007.avi"
    assert [e.label for e in train] == [0, 5, 6, 16, 17, 40, 41, 74, 88, 98]
    assert [(e.path, e.label) for e in read_split("gym99", root, "test")] == [
        ("videos/A0xAXXysHUo_E_002184_002237_A_0035_0036.avi", 93)]
    assert [e.label for e in read_split("gym288", root, "train")] == [287]
    assert get_dataset("gym288").num_classes == 288


@pytest.mark.parametrize("dataset, labels", [
    ("gym_vault", [0, 5]), ("gym_floor", [0, 10, 11, 34]), ("gym_fx_s1", [0, 10]), ("gym_ub_s1", [0, 14])])
def test_gym_derived_subsets_filter_and_remap(tmp_path, dataset, labels):
    root = _gym_root(tmp_path)
    entries = read_split(dataset, root, "train")
    assert [e.label for e in entries] == labels
    source = {e.path: e.label for e in read_split("gym99", root, "train")}
    first = {"gym_vault": 0, "gym_floor": 6, "gym_fx_s1": 6, "gym_ub_s1": 74}[dataset]
    assert all(source[e.path] - first == e.label for e in entries)


def test_gym_bad_label(tmp_path):
    root = _gym_root(tmp_path)
    write(root / "gym" / "annotations" / "gym288_train.txt", "clip_a 12\nclip_b 288\n")
    with pytest.raises(SevereError, match=r"gym288_train\.txt:2: label 288 outside 0\.\.287"):
        read_split("gym288", root, "train")
    write(root / "gym" / "annotations" / "gym99_val.txt", "clip_a 3\nclip_b 99")
    with pytest.raises(SevereError, match=r"gym99_val\.txt:2: label 99 outside 0\.\.98"):
        read_split("gym_vault", root, "test")
    assert gym.clip_file_name("x") == "x.avi" and gym.clip_file_name("x.avi") == "x.avi"


# ---- Kinetics / Diving48 -----------------------------------------------------------------------

def test_kinetics_videofolder(tmp_path):
    write(tmp_path / "kinetics-400" / "labels" / "val_videofolder.txt",
          "abseiling/0wR5jVB-WPk_000417_000427 300 0\nzumba/xyz_000001_000011 250 399\n")
    write(tmp_path / "kinetics-400" / "labels" / "train_videofolder.txt", "abseiling/0wR5jVB-WPk_000417_000427 300\n")
    test = read_split("k400", tmp_path, "test")
    assert [(e.path, e.label) for e in test] == [("VideoData/abseiling/0wR5jVB-WPk_000417_000427.avi", 0),
                                                 ("VideoData/zumba/xyz_000001_000011.avi", 399)]
    with pytest.raises(SevereError, match=r"train_videofolder\.txt:1: expected"):
        read_split("k400", tmp_path, "train")


def test_diving48_json(tmp_path):
    labels = tmp_path / "diving48" / "labels"
    write(labels / "Diving48_V2_train.json",
          json.dumps([{"vid_name": "-mmq0PT-u8k_00155", "label": 0, "start_frame": 0, "end_frame": 48},
                      {"vid_name": "abc_00001", "label": 47, "start_frame": 3, "end_frame": 40}]))
    write(labels / "Diving48_V2_test.json", json.dumps([{"vid_name": "x_00002", "label": 48}]))
    assert [(e.path, e.label) for e in read_split("diving48", tmp_path, "train")] == [
        ("videos/-mmq0PT-u8k_00155.avi", 0), ("videos/abc_00001.avi", 47)]
    with pytest.raises(SevereError, match=r"Diving48_V2_test\.json: record 0 \(x_00002\): bad label 48"):
        read_split("diving48", tmp_path, "test")


# ---- EPIC-Kitchens-100 -------------------------------------------------------------------------

EPIC_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,"
               "start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes")


def test_epic_csv(tmp_path):
    adir = tmp_path / "epic-kitchens-100" / "annotations"
    write(adir / "EPIC_100_train.csv", EPIC_HEADER + "\n"
          "P01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,3,door,3,['door'],[3]\n"
          "P01_11_0,P01,P01_11,00:00:00.560,00:00:00.00,00:00:01.89,1,113,take plate,take,0,plate,2,['plate'],[2]\n"
          "P01_11_1,P01,P01_11,00:01:00.560,00:01:02.50,01:00:03.00,3700,216180,put plate in cupboard,put,1,"
          "plate,2,\"['plate', 'cupboard']\",\"[2, 3]\"\n")
    # an early release with a leading uid column
    write(adir / "EPIC_100_validation.csv", "uid," + EPIC_HEADER + "\r\n"
          "17,P02_01_5,P02,P02_01,00:00:01.000,00:00:02.00,00:00:04.50,120,270,wash pan,wash,2,pan,5,['pan'],[5]\r\n")
    train = read_split("ek100", tmp_path, "train")
    assert [(e.key, e.label, e.start_sec, e.end_sec) for e in train] == [
        ("EPIC-KITCHENS/P01/videos/P01_01.MP4#P01_01_0", 3, 0.14, 3.37),
        ("EPIC-KITCHENS/P01/videos/P01_11.MP4#P01_11_0", 0, 0.0, 1.89),
        ("EPIC-KITCHENS/P01/videos/P01_11.MP4#P01_11_1", 1, 62.5, 3603.0)]
    assert train[0].path == "EPIC-KITCHENS/P01/videos/P01_01.MP4"
    segs = epic.read_epic_csv(adir / "EPIC_100_train.csv")
    assert segs[2].all_nouns == ("plate", "cupboard") and segs[2].all_noun_classes == (2, 3)
    assert segs[0].start_frame == 8 and segs[0].stop_frame == 202 and segs[0].narration == "open door"
    test = read_split("ek100", tmp_path, "test")
    assert [(e.key, e.label) for e in test] == [("EPIC-KITCHENS/P02/videos/P02_01.MP4#P02_01_5", 2)]
    assert manifest_lines("ek100", tmp_path, "test") == [("EPIC-KITCHENS/P02/videos/P02_01.MP4#P02_01_5", "2")]
    assert epic.epic_frames_alternative(train[0].path) == "EPIC-KITCHENS/P01/rgb_frames/P01_01"


def test_epic_bad_rows(tmp_path):
    path = write(tmp_path / "EPIC_100_train.csv", EPIC_HEADER + "\n"
                 "P01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,3,door,3,['door'],[3]\n"
                 "P01_01_1,P01,P01_01,00:00:01.089,0:0:3,00:00:03.37,8,202,open door,open,3,door,3,['door'],[3]\n")
    with pytest.raises(SevereError, match=r"EPIC_100_train\.csv:3: malformed segment row \(bad timestamp '0:0:3'\)"):
        epic.read_epic_csv(path)
    write(path, EPIC_HEADER + "\nP01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,97,door,3,['door'],[3]\n")
    with pytest.raises(SevereError, match=r"EPIC_100_train\.csv:2: verb_class 97 outside 0\.\.96"):
        epic.read_epic_csv(path)
    write(path, "narration_id,video_id\nx,y\n")
    with pytest.raises(SevereError, match=r"EPIC_100_train\.csv:1: header lacks column\(s\) participant_id"):
        epic.read_epic_csv(path)


def test_epic_classes_and_video_info(tmp_path):
    verbs = write(tmp_path / "EPIC_100_verb_classes.csv",
                  "id,key,instances,category\n0,take,\"['take', 'grab']\",retrieve\n79,let-go,\"['let', 'let-go']\",leave\n")
    assert epic.read_epic_classes(verbs) == {0: "take", 79: "let-go"}
    info = write(tmp_path / "EPIC_100_video_info.csv",
                 "video_id,duration,fps,resolution\nP01_01,1652.152817,59.9400599400599,1920x1080\nP01_101,100.0,50.0,1920x1080\n")
    got = epic.read_epic_video_info(info)
    assert got["P01_01"].fps == pytest.approx(59.94006) and got["P01_101"].fps == 50.0
    assert epic.parse_timestamp("01:02:03.45") == pytest.approx(3723.45)


# ---- AVA ---------------------------------------------------------------------------------------

def _ava_root(tmp_path: Path) -> Path:
    adir = tmp_path / "ava" / "annotations"
    write(adir / "ava_train_v2.2.csv", "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,12,1\n"
                                       "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,79,1\n"
                                       "-5KQ66BBWC4,0903,0.100,0.100,0.300,0.900,80,0\n"
                                       "1j20qq1JyX4,0904,0.010,0.120,0.700,0.970,12,1\n")
    write(adir / "ava_val_v2.2.csv", "-5KQ66BBWC4,0902,0.003,0.125,0.119,0.837,17,3\n")
    return tmp_path


def test_ava_ground_truth_and_split(tmp_path):
    root = _ava_root(tmp_path)
    gt = ava.read_ava_ground_truth(root / "ava" / "annotations" / "ava_train_v2.2.csv")
    assert gt[0] == ava.AvaBox("1j20qq1JyX4", 902, (0.002, 0.118, 0.714, 0.977), 12, person_id=1)
    assert gt[0].key == "1j20qq1JyX4,0902"
    groups = ava.group_by_keyframe(gt)
    assert [len(v) for v in groups.values()] == [2, 1, 1]
    train = read_split("ava", root, "train")
    assert [(e.path, e.label) for e in train] == [("frames/1j20qq1JyX4", -1), ("frames/-5KQ66BBWC4", -1)]
    assert manifest_lines("ava", root, "train") == [("frames/1j20qq1JyX4", "3"), ("frames/-5KQ66BBWC4", "1")]
    assert ava.keyframe_index(902) == 60


def test_ava_bad_rows(tmp_path):
    path = write(tmp_path / "gt.csv", "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,12,1\n1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,12\n")
    with pytest.raises(SevereError, match=r"gt\.csv:2: expected 8 columns"):
        ava.read_ava_ground_truth(path)
    write(path, "1j20qq1JyX4,0902,0.002,0.118,0.714,0.977,81,1\n")
    with pytest.raises(SevereError, match=r"gt\.csv:1: action id 81 outside 1\.\.80"):
        ava.read_ava_ground_truth(path)
    write(path, "1j20qq1JyX4,0902,0.9,0.118,0.714,0.977,12,1\n")
    with pytest.raises(SevereError, match=r"gt\.csv:1: box .* is not normalised"):
        ava.read_ava_ground_truth(path)


def test_ava_detections_threshold_and_excluded(tmp_path):
    det = write(tmp_path / "det.csv", "1j20qq1JyX4,0902,0.036,0.098,0.550,0.979,,0.995518\n"
                                      "-5KQ66BBWC4,0902,0.003,0.125,0.119,0.837,-1,0.742486\n"
                                      "-5KQ66BBWC4,0902,0.003,0.125,0.119,0.837,12,0.9\n")
    rows = ava.read_ava_detections(det)
    assert [(r.action_id, r.score) for r in rows] == [(None, 0.995518), (-1, 0.742486), (12, 0.9)]
    kept = ava.read_ava_detections(det, min_score=0.9)
    assert [r.video_id for r in kept] == ["1j20qq1JyX4", "-5KQ66BBWC4"]  # >= threshold kept
    exc = write(tmp_path / "exc.csv", "1j20qq1JyX4,0904\n-5KQ66BBWC4,902\n")
    assert ava.read_ava_excluded(exc) == {"1j20qq1JyX4,0904", "-5KQ66BBWC4,0902"}


def test_ava_label_map_both_styles(tmp_path):
    v22 = write(tmp_path / "v22.pbtxt", 'label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n'
                                        '  label_type: PERSON_MOVEMENT\n}\nlabel {\n  name: "watch (a person)"\n'
                                        '  label_id: 80\n  label_type: PERSON_INTERACTION\n}\n')
    v21 = write(tmp_path / "v21.pbtxt", '# AVA v2.1\nitem {\n  name: "bend/bow (at the waist)"\n  id: 1\n}\n'
                                        'item {\n  name: "watch (a person)"\n  id: 80\n}\n')
    expected = {1: "bend/bow (at the waist)", 80: "watch (a person)"}
    assert ava.read_ava_label_map(v22) == expected
    assert ava.read_ava_label_map(v21) == expected
    ann.write_ava_label_map(tmp_path / "w21.pbtxt", expected, style="v2.1")
    ann.write_ava_label_map(tmp_path / "w22.pbtxt", expected, style="v2.2")
    assert ava.read_ava_label_map(tmp_path / "w21.pbtxt") == ava.read_ava_label_map(tmp_path / "w22.pbtxt") == expected
    bad = write(tmp_path / "bad.pbtxt", 'label {\n  name: "x"\n  label_id: 1\n}\nlabel {\n  name: "y"\n}\n')
    with pytest.raises(SevereError, match=r"bad\.pbtxt:5: 'label' block needs a name and an id"):
        ava.read_ava_label_map(bad)


def test_ava_frame_list(tmp_path):
    path = write(tmp_path / "train.csv", "original_vido_id video_id frame_id path labels\n"
                                         "-5KQ66BBWC4 0 1 -5KQ66BBWC4/-5KQ66BBWC4_000002.jpg \"\"\n"
                                         "-5KQ66BBWC4 0 0 -5KQ66BBWC4/-5KQ66BBWC4_000001.jpg \"\"\n"
                                         "1j20qq1JyX4 1 0 1j20qq1JyX4/1j20qq1JyX4_000001.jpg \"\"\n")
    lists = ava.read_ava_frame_list(path)
    assert list(lists) == ["-5KQ66BBWC4", "1j20qq1JyX4"]
    assert lists["-5KQ66BBWC4"].frames == ("-5KQ66BBWC4/-5KQ66BBWC4_000001.jpg", "-5KQ66BBWC4/-5KQ66BBWC4_000002.jpg")
    assert lists["1j20qq1JyX4"].video_index == 1
    write(path, "video frame path\n")
    with pytest.raises(SevereError, match=r"train\.csv:1: header must be"):
        ava.read_ava_frame_list(path)


# ---- Charades ----------------------------------------------------------------------------------

def _charades_root(tmp_path: Path) -> Path:
    write(tmp_path / "charades" / "frame_lists" / "train.csv",
          "original_vido_id video_id frame_id path labels\n"
          "46GP8 0 0 46GP8/46GP8-000001.jpg \"\"\n"
          "46GP8 0 1 46GP8/46GP8-000002.jpg 147\n"
          "46GP8 0 2 46GP8/46GP8-000003.jpg \"147,9\"\n"
          "46GP8 0 3 46GP8/46GP8-000004.jpg 10,9\n"
          "N11GT 1 0 N11GT/N11GT-000001.jpg \"\"\n")
    write(tmp_path / "charades" / "frame_lists" / "val.csv",
          "original_vido_id video_id frame_id path labels\nABCDE 0 0 ABCDE/ABCDE-000001.jpg 157\n")
    return tmp_path


def test_charades_frame_lists(tmp_path):
    root = _charades_root(tmp_path)
    videos = charades.read_charades_frame_list(root / "charades" / "frame_lists" / "train.csv")
    v = videos[0]
    assert v.frame_labels == ((), (147,), (9, 147), (9, 10))
    assert v.labels == (9, 10, 147) and v.labels_between(0, 1) == (147,) and videos[1].labels == ()
    assert [(e.path, e.label) for e in read_split("charades", root, "train")] == [
        ("Charades_v1_rgb/46GP8", -1), ("Charades_v1_rgb/N11GT", -1)]
    # numeric sort: "9,10,147" (not the string order "10,147,9")
    assert manifest_lines("charades", root, "train") == [("Charades_v1_rgb/46GP8", "9,10,147"),
                                                         ("Charades_v1_rgb/N11GT", "")]
    with pytest.raises(SevereError, match=r"val\.csv:2: label 157 outside 0\.\.156"):
        read_split("charades", root, "test")


def test_charades_official_csv_and_classes(tmp_path):
    csv_path = write(tmp_path / "Charades_v1_train.csv",
                     "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
                     "46GP8,HR43,Kitchen,6,7,Yes,\"A person cooking, then eating.\",food;stove,"
                     "\"A person cooks.\",c092 11.90 21.20;c147 0.00 12.60,24.83\n"
                     "N11GT,KDI6,Stairs,6,7,Yes,A person walks.,,A person walks.,,7.00\n")
    rows = charades.read_charades_csv(csv_path)
    assert rows[0].actions == (charades.CharadesAction(92, 11.9, 21.2), charades.CharadesAction(147, 0.0, 12.6))
    assert rows[0].labels == (92, 147) and rows[0].objects == ("food", "stove") and rows[0].length == 24.83
    assert rows[1].actions == () and rows[1].script == "A person walks."
    classes = write(tmp_path / "Charades_v1_classes.txt", "c000 Holding some clothes\nc001 Putting clothes somewhere\n")
    assert charades.read_charades_classes(classes) == {0: "Holding some clothes", 1: "Putting clothes somewhere"}
    write(classes, "c000 Holding some clothes\nx01 Bad\n")
    with pytest.raises(SevereError, match=r"Charades_v1_classes\.txt:2: bad class id 'x01'"):
        charades.read_charades_classes(classes)


def test_charades_frame_labels_rule():
    acts = [charades.CharadesAction(3, 0.0, 0.05), charades.CharadesAction(7, 0.08, 0.125)]
    # t = (n - 1) / 24: 0, 0.0417, 0.0833, 0.125, 0.1667
    assert charades.charades_frame_labels(acts, 5) == [(3,), (3,), (7,), (7,), ()]


# ---- UCFRep ------------------------------------------------------------------------------------

def test_ucfrep_mat_and_repetition_labels(tmp_path):
    adir = tmp_path / "ucfrep" / "annotations"
    bounds = (1, 29, 64, 105, 155)
    nxt = np.full(155, -1)
    nxt[:100] = 30
    ann.write_ucfrep_mat(adir / "train" / "v_BabyCrawling_g01_c01.mat", ucfrep.UcfRepAnnotation(
        video="v_BabyCrawling_g01_c01", class_name="BabyCrawling", duration=155, start_frame=1, end_frame=155,
        temporal_bound=bounds, offset_next_estimate=nxt, offset_pre_estimate=np.full(155, -1)))
    ann.write_ucfrep_mat(adir / "val" / "v_HandStandPushups_g02_c03.mat", ucfrep.UcfRepAnnotation(
        video="v_HandStandPushups_g02_c03", class_name="HandStandPushups", duration=20, start_frame=5,
        end_frame=24, temporal_bound=(5, 15, 24), offset_next_estimate=np.full(20, -1),
        offset_pre_estimate=np.full(20, -1)))
    got = ucfrep.read_ucfrep_mat(adir / "train" / "v_BabyCrawling_g01_c01.mat")
    assert got.count == 4 and got.temporal_bound == bounds and got.start_frame == 1 and got.end_frame == 155
    assert got.class_name == "BabyCrawling" and got.offset_next_estimate.tolist() == nxt.tolist()
    train = read_split("ucfrep", tmp_path, "train")
    assert [(e.path, e.label) for e in train] == [("imgs/train/BabyCrawling/v_BabyCrawling_g01_c01", 4)]
    test = read_split("ucfrep", tmp_path, "test")
    assert [(e.path, e.label) for e in test] == [("imgs/val/HandStandPushups/v_HandStandPushups_g02_c03", 2)]
    assert manifest_lines("ucfrep", tmp_path, "test") == [("imgs/val/HandStandPushups/v_HandStandPushups_g02_c03", "2")]
    rep = write(adir / "repetition_label" / "BabyCrawling.txt",
                "v_BabyCrawling_g01_c01\n1 29 64 105 155\n\n\nv_BabyCrawling_g01_c02\n3 20 41\n\n")
    assert ucfrep.read_repetition_labels(rep) == {"v_BabyCrawling_g01_c01": bounds, "v_BabyCrawling_g01_c02": (3, 20, 41)}
    write(rep, "v_BabyCrawling_g01_c01\n1 29 x\n")
    with pytest.raises(SevereError, match=r"BabyCrawling\.txt:2: expected boundary frames"):
        ucfrep.read_repetition_labels(rep)


def test_ucfrep_bad_mat(tmp_path):
    import scipy.io

    path = tmp_path / "v_PullUps_g01_c01.mat"
    scipy.io.savemat(path, {"label": {"duration": 10.0, "start_frame": 1.0}})
    with pytest.raises(SevereError, match=r"v_PullUps_g01_c01\.mat: struct 'label' lacks field\(s\) end_frame"):
        ucfrep.read_ucfrep_mat(path)
    write(path, b"not a mat file at all")
    with pytest.raises(SevereError, match=r"v_PullUps_g01_c01\.mat: cannot read MATLAB file"):
        ucfrep.read_ucfrep_mat(path)
    assert ucfrep.ucfrep_class_name("v_HandStandPushups_g01_c01") == "HandStandPushups"


def test_gym_missing_list_points_to_org_file(tmp_path):
    write(tmp_path / "gym" / "annotations" / "gym99_val_org.txt", "clip_a 3\n")
    with pytest.raises(SevereError, match=r"missing annotation file: .*gym99_val\.txt; gym99_val_org\.txt is present"):
        read_split("gym99", tmp_path, "test")
