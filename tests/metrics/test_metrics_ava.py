"""AVA frame-mAP@0.5 (docs/tasks.md §1.5): hand-computed cases, fast == per-image reference, files, CLI."""

import json
import math

import numpy as np
import pytest

from severe import eval_cli
from severe.errors import SevereError
from severe.metrics import frame_map
from severe.data.readers import ava as ava_readers
from severe.metrics import ava as ava_metrics
from severe.metrics.ava import (
    AvaRows,
    frame_map_reference,
    read_boxes_csv,
    read_exclusions,
    read_labelmap,
    voc_average_precision,
    write_boxes_csv,
)

A = (0.1, 0.1, 0.4, 0.6)
B = (0.5, 0.2, 0.9, 0.8)
C = (0.2, 0.3, 0.7, 0.9)


def rows(*items, score=True):
    """AvaRows from (video, second, box, action[, score]) tuples."""
    return AvaRows.from_columns(
        [i[0] for i in items], [i[1] for i in items], [i[2] for i in items], [i[3] for i in items],
        [i[4] for i in items] if score else None,
    )


def both(gt, det, classes, exclusions=frozenset()):
    """frame_map, checked against frame_map_reference on every call."""
    fast = frame_map(gt, det, classes, exclusions)
    ref = frame_map_reference(gt, det, classes, exclusions)
    assert fast["mAP"] == pytest.approx(ref["mAP"], abs=1e-12)
    assert fast["per_class"].keys() == ref["per_class"].keys()
    for c, ap in ref["per_class"].items():
        assert (ap is None and fast["per_class"][c] is None) or fast["per_class"][c] == pytest.approx(ap, abs=1e-12)
    return fast


# --------------------------------------------------------------------------------------------- hand cases


def test_perfect_detections_give_one_and_classes_outside_the_map_are_ignored():
    gt = rows(("v1", 902, A, 1), ("v1", 902, B, 1), ("v1", 902, A, 2), ("v1", 903, C, 2),
              ("v1", 903, C, 9), score=False)  # class 9 is not in the label map
    det = rows(("v1", 902, A, 1, 0.3), ("v1", 902, B, 1, 0.8), ("v1", 902, A, 2, 0.6), ("v1", 903, C, 2, 0.1),
               ("v1", 903, B, 9, 0.99),  # outside the map: not an FP anywhere
               ("v1", 903, B, 3, 0.99))  # class 3 has no ground truth: None, not in the mean
    res = both(gt, det, [1, 2, 3])
    assert res == {"mAP": 1.0, "per_class": {1: 1.0, 2: 1.0, 3: None}}
    # counting class 9 would add a class with AP 0: the mean would be 2/3
    assert both(gt, det, [1, 2, 3, 9])["mAP"] == pytest.approx(2 / 3)


def test_duplicate_detection_is_a_false_positive():
    gt = rows(("v", 902, A, 1), ("v", 902, B, 1), score=False)
    det = rows(("v", 902, A, 1, 0.9), ("v", 902, A, 1, 0.8), ("v", 902, B, 1, 0.7))
    # ranked TP, FP, TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> AP = 1/2 * 1 + 1/2 * 2/3
    assert both(gt, det, [1])["per_class"][1] == pytest.approx(5 / 6)


def test_matching_in_input_order_not_score_order():
    g = (0.0, 0.0, 0.5, 1.0)
    d1 = (0.0, 0.0, 0.4, 1.0)  # IoU 0.8 with g
    gt = rows(("v", 902, g, 1), score=False)
    # row 0 (score 0.3) claims the box first; row 1 (exact box, score 0.9) finds it taken -> FP.
    det = rows(("v", 902, d1, 1, 0.3), ("v", 902, g, 1, 0.9))
    res = both(gt, det, [1])
    # ranked FP(0.9), TP(0.3): AP = 1 * 1/2 = 0.5 (score-order matching would give 1.0)
    assert res["per_class"][1] == 0.5
    # the same rows in the other order: the exact box comes first and is the TP -> 1.0
    det_swapped = rows(("v", 902, g, 1, 0.9), ("v", 902, d1, 1, 0.3))
    assert both(gt, det_swapped, [1])["per_class"][1] == 1.0


def test_no_fallback_to_the_second_best_box():
    g1, g2 = (0.0, 0.0, 0.5, 1.0), (0.1, 0.0, 0.6, 1.0)
    d = (0.02, 0.0, 0.52, 1.0)  # IoU 0.923 with g1 (taken), 0.7 with g2 (free)
    gt = rows(("v", 902, g1, 1), ("v", 902, g2, 1), score=False)
    det = rows(("v", 902, g1, 1, 0.9), ("v", 902, d, 1, 0.8))
    # TP, FP at recall 1/2 -> AP 0.5 (a fallback would make it 1.0)
    assert both(gt, det, [1])["per_class"][1] == 0.5


def test_iou_exactly_half_is_a_match_without_plus_one():
    g = (0.0, 0.0, 0.5, 1.0)
    gt = rows(("v", 902, g, 1), score=False)
    assert both(gt, rows(("v", 902, (0.0, 0.0, 0.25, 1.0), 1, 0.5)), [1])["mAP"] == 1.0  # IoU = 0.5
    assert both(gt, rows(("v", 902, (0.0, 0.0, 0.25, 0.999), 1, 0.5)), [1])["mAP"] == 0.0  # IoU < 0.5


def test_excluded_frames_are_ignored_on_both_sides():
    gt = rows(("v", 902, A, 1), ("v", 903, B, 1), score=False)
    det = rows(("v", 902, A, 1, 0.9), ("v", 903, C, 1, 0.95))  # 903: missed gt + FP with the top score
    assert both(gt, det, [1], {("v", 903)})["mAP"] == 1.0
    # without the exclusion: FP(0.95), TP(0.9) over 2 gt -> 1/2 * 1/2
    assert both(gt, det, [1])["mAP"] == 0.25
    assert both(gt, det, [1], {("other", 903), ("v", 904)})["mAP"] == 0.25  # unrelated keys change nothing


def test_class_with_ground_truth_but_no_detection_scores_zero():
    gt = rows(("v", 902, A, 1), ("v", 902, B, 2), score=False)
    det = rows(("v", 902, A, 1, 0.9), ("w", 902, B, 2, 0.8))  # class 2 only on an image without gt
    res = both(gt, det, [1, 2, 3])
    assert res["per_class"] == {1: 1.0, 2: 0.0, 3: None}
    assert res["mAP"] == 0.5
    res = both(gt, rows(("v", 902, A, 1, 0.9)), [1, 2])
    assert res["per_class"] == {1: 1.0, 2: 0.0}


def test_tied_scores_keep_row_order():
    gt = rows(("v", 902, A, 1), ("v", 902, B, 1), score=False)
    x = (0.6, 0.6, 0.7, 0.7)  # overlaps nothing
    # X (FP) before A (TP) at the same score: FP, TP, TP -> envelope 2/3 everywhere -> AP 2/3
    det = rows(("v", 902, x, 1, 0.5), ("v", 902, A, 1, 0.5), ("v", 902, B, 1, 0.4))
    assert both(gt, det, [1])["mAP"] == pytest.approx(2 / 3)
    # A before X: TP, FP, TP -> 1/2 * 1 + 1/2 * 2/3
    det = rows(("v", 902, A, 1, 0.5), ("v", 902, x, 1, 0.5), ("v", 902, B, 1, 0.4))
    assert both(gt, det, [1])["mAP"] == pytest.approx(5 / 6)


def test_detection_without_area_is_dropped_like_the_reference():
    gt = rows(("v", 902, A, 1), score=False)
    det = rows(("v", 902, (0.5, 0.5, 0.5, 0.7), 1, 0.99), ("v", 902, A, 1, 0.5))
    assert both(gt, det, [1])["mAP"] == 1.0  # counted as an FP it would be 0.5
    det = rows(("v", 902, (0.5, 0.7, 0.6, 0.5), 1, 0.99), ("v", 902, A, 1, 0.5))  # y2 < y1 (arrays only)
    assert both(gt, det, [1])["mAP"] == 1.0


def test_highest_iou_tie_takes_the_first_ground_truth_row():
    g1, g2 = (0.0, 0.0, 0.5, 1.0), (0.25, 0.0, 0.75, 1.0)
    d = (0.125, 0.0, 0.625, 1.0)  # IoU exactly 0.6 with both (binary fractions) -> g1, the first row
    gt = rows(("v", 902, g1, 1), ("v", 902, g2, 1), score=False)
    det = rows(("v", 902, d, 1, 0.9), ("v", 902, g2, 1, 0.8))
    assert both(gt, det, [1])["mAP"] == 1.0  # d -> g1, then g2 is free: TP, TP
    # with g2 listed first, d takes g2 and the exact g2 box finds it taken: TP, FP -> 0.5
    gt_swapped = rows(("v", 902, g2, 1), ("v", 902, g1, 1), score=False)
    assert both(gt_swapped, det, [1])["mAP"] == 0.5


def test_voc_average_precision_hand_values():
    assert voc_average_precision(np.array([], bool), 3) == 0.0
    assert voc_average_precision(np.array([True, False, True]), 2) == pytest.approx(5 / 6)
    # recall reaches only 2/4: AP = 1/4 * 1 + 1/4 * 2/3
    assert voc_average_precision(np.array([True, False, True, False]), 4) == pytest.approx(0.25 + 0.25 * 2 / 3)
    assert voc_average_precision(np.array([False, False, True]), 1) == pytest.approx(1 / 3)


def test_errors():
    gt = rows(("v", 902, A, 1), score=False)
    det = rows(("v", 902, A, 1, 0.9))
    with pytest.raises(SevereError, match="no ground-truth box"):
        frame_map(gt, det, [2])
    with pytest.raises(SevereError, match="no ground-truth box"):
        frame_map(gt, det, [1], {("v", 902)})
    with pytest.raises(SevereError, match="no score"):
        frame_map(gt, gt, [1])
    with pytest.raises(SevereError, match="non-finite score"):
        frame_map(gt, rows(("v", 902, A, 1, float("nan"))), [1])
    with pytest.raises(SevereError, match="x2 < x1"):
        frame_map(rows(("v", 902, (0.5, 0.1, 0.4, 0.2), 1), score=False), det, [1])
    with pytest.raises(SevereError, match="pairs"):
        frame_map(gt, det, [1], {"v,0902"})
    with pytest.raises(SevereError, match="empty class list"):
        frame_map(gt, det, [])
    with pytest.raises(SevereError, match="shape"):
        AvaRows(("v",), np.zeros(2, np.int32), np.zeros(2, np.int64), np.zeros((2, 3)), np.zeros(2, np.int64))


# ------------------------------------------------------------------------------------ fast == reference


def random_case(seed: int, n_img: int = 40, n_cls: int = 5):
    """Overlapping boxes, several actions per person, shuffled rows, tied scores, degenerate boxes."""
    rng = np.random.default_rng(seed)
    images = [(f"v{rng.integers(3)}", int(rng.integers(902, 915))) for _ in range(n_img)]
    gts, dets = [], []
    for v, t in images:
        for _ in range(rng.integers(0, 4)):
            xy = rng.random(2) * 0.6
            box = tuple(np.concatenate([xy, xy + 0.1 + rng.random(2) * 0.3]))
            actions = rng.choice(np.arange(1, n_cls + 2), size=rng.integers(1, 3), replace=False)
            gts += [(v, t, box, int(a)) for a in actions]
            for a in actions:  # detections near the person, right class mostly, better scores
                for _ in range(rng.integers(0, 3)):
                    d = np.clip(np.array(box) + rng.normal(0, 0.04, 4), 0, 1)
                    d[2:] = np.maximum(d[2:], d[:2])
                    cls = int(a) if rng.random() < 0.8 else int(rng.integers(1, n_cls + 2))
                    dets.append((v, t, tuple(d), cls, 0.5 + 0.5 * rng.random()))
        for _ in range(rng.integers(0, 3)):  # background
            xy = rng.random(2) * 0.7
            dets.append((v, t, tuple(np.concatenate([xy, xy + rng.random(2) * 0.3])), int(rng.integers(1, n_cls + 2)),
                         0.6 * rng.random()))
    for i in rng.choice(len(dets), len(dets) // 20, replace=False):  # zero-width boxes
        d = list(dets[i][2]); d[2] = d[0]; dets[i] = (dets[i][0], dets[i][1], tuple(d), *dets[i][3:])
    dets = [dets[i] for i in rng.permutation(len(dets))]  # images interleaved
    dets = [(v, t, b, a, round(s, 1) if k % 3 == 0 else s) for k, (v, t, b, a, s) in enumerate(dets)]  # ties
    excl = {images[i] for i in rng.choice(n_img, 3, replace=False)}
    return rows(*gts, score=False), rows(*dets), range(1, n_cls + 1), excl


@pytest.mark.parametrize("seed", range(8))
def test_fast_equals_reference_on_random_data(seed, monkeypatch):
    if seed % 2:  # odd seeds: number the ground-truth images instead of the dense (image, class) table
        monkeypatch.setattr(ava_metrics, "_DENSE_GROUPS_PER_ROW", 0)
    gt, det, classes, excl = random_case(seed)
    fast = frame_map(gt, det, classes, excl)
    ref = frame_map_reference(gt, det, classes, excl)
    assert 0.2 < ref["mAP"] < 0.95  # a meaningful mix of TPs and FPs
    assert abs(fast["mAP"] - ref["mAP"]) < 1e-9
    for c, ap in ref["per_class"].items():
        assert (ap is None) == (fast["per_class"][c] is None)
        assert ap is None or abs(fast["per_class"][c] - ap) < 1e-9


def test_far_apart_timestamps_use_the_sparse_paths():
    gt, det, classes, excl = random_case(11)

    def shift(r):  # video v2 lives 10^8 seconds later: a huge image-key space
        far = np.array([v == "v2" for v in r.videos])[r.video]
        return AvaRows(r.videos, r.video, r.timestamp + far * 10**8, r.boxes, r.action, r.score)

    excl = {(v, t + 10**8 * (v == "v2")) for v, t in excl}
    both(shift(gt), shift(det), classes, excl)
    assert frame_map(shift(gt), shift(det), classes, excl) == frame_map(gt, det, classes,
                                                                         {(v, t % 10**8) for v, t in excl})


# ------------------------------------------------------------------------------------------------ files


LABELMAP_V22 = """label {
  name: "bend/bow (at the waist)"
  label_id: 1
  label_type: PERSON_MOVEMENT
}
label {
  name: "crouch/kneel"
  label_id: 3
  label_type: PERSON_MOVEMENT
}
"""
LABELMAP_V21 = 'item {\n  name: "bend/bow (at the waist)"\n  id: 1\n}\nitem {\n  name: "crouch/kneel"\n  id: 3\n}\n'


def test_read_labelmap_both_styles(tmp_path):
    for i, text in enumerate((LABELMAP_V22, LABELMAP_V21)):
        p = tmp_path / f"map{i}.pbtxt"
        p.write_text(text)
        assert read_labelmap(p) == {1: "bend/bow (at the waist)", 3: "crouch/kneel"}
    p = tmp_path / "bad.pbtxt"
    p.write_text('label {\n  name: "x"\n}\n')
    with pytest.raises(SevereError, match="bad.pbtxt:1"):
        read_labelmap(p)


def test_read_exclusions(tmp_path):
    p = tmp_path / "excl.csv"
    p.write_text("vidA,0902\n\nvidB,1798\r\n")
    assert read_exclusions(p) == {("vidA", 902), ("vidB", 1798)}
    p.write_text("vidA,0902\nvidB\n")
    with pytest.raises(SevereError, match="excl.csv:2"):
        read_exclusions(p)
    p.write_text("vidA,09x2\n")
    with pytest.raises(SevereError, match="excl.csv:1: timestamp"):
        read_exclusions(p)


def test_csv_round_trip_and_formats(tmp_path):
    det = rows(("vidA", 902, (0.1, 0.2, 0.3, 0.4), 12, 0.123456789012345), ("vid", 1798, B, 80, 1e-9))
    p = write_boxes_csv(tmp_path / "det.csv", det)
    assert p.read_text().splitlines()[0] == "vidA,0902,0.1,0.2,0.3,0.4,12,0.123456789012345"
    back = read_boxes_csv(p, require_score=True)
    assert list(back.video_ids()) == ["vidA", "vid"]
    assert back.timestamp.tolist() == [902, 1798] and back.action.tolist() == [12, 80]
    np.testing.assert_array_equal(back.boxes, det.boxes)
    np.testing.assert_array_equal(back.score, det.score)
    # ground truth: 8th column (person id) optional; CRLF, blank lines and quoted fields accepted
    g = tmp_path / "gt.csv"
    g.write_text('vidA,0902,0.1,0.2,0.3,0.4,12,1\r\n\r\n"vidB",0903,0.1,0.2,0.3,0.4,5\n')
    gt = read_boxes_csv(g)
    assert list(gt.video_ids()) == ["vidA", "vidB"] and gt.timestamp.tolist() == [902, 903]
    assert gt.score[0] == 1.0 and math.isnan(gt.score[1])
    g.write_text("vidA,0902,0.1,0.2,0.3,0.4,12\n")
    assert read_boxes_csv(g).score is None


@pytest.mark.parametrize(
    "line, require_score, message",
    [
        ("vidC,0903,0.1,0.2,0.3,0.4,7", True, "expected 8 columns"),
        ("vidC,0903,0.1,0.2,0.3,0.4", False, "expected 7 or 8 columns"),
        ("vidC,09x3,0.1,0.2,0.3,0.4,7,0.5", True, "timestamp must be an integer"),
        ("vidC,0903,0.1,0.2,abc,0.4,7,0.5", True, "box must be 4 numbers"),
        ("vidC,0903,0.3,0.2,0.1,0.4,7,0.5", True, "not normalised"),
        ("vidC,0903,0.1,0.2,0.3,1.4,7,0.5", True, "not normalised"),
        ("vidC,0903,0.1,0.2,0.3,0.4,,0.5", True, "action id must be an integer"),
        ("vidC,0903,0.1,0.2,0.3,0.4,7,high", True, "must be a number"),
        ("vidC,0903,0.1,0.2,0.3,0.4,7,nan", True, "must be finite"),
        (",0903,0.1,0.2,0.3,0.4,7,0.5", True, "empty video id"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, require_score, message):
    p = tmp_path / "boxes.csv"
    p.write_text(f"vidA,0902,0.1,0.2,0.3,0.4,12,0.9\n\nvidB,0902,0.1,0.2,0.3,0.4,12,0.9\n{line}\n")
    with pytest.raises(SevereError, match=f"boxes.csv:4: .*{message}"):
        read_boxes_csv(p, require_score=require_score)


def test_chunked_parsing_keeps_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(ava_readers, "_CHUNK_BYTES", 100)  # many chunks, some fast, some slow
    gt, det, classes, excl = random_case(0)
    p = write_boxes_csv(tmp_path / "det.csv", det)
    back = read_boxes_csv(p, require_score=True)
    np.testing.assert_array_equal(back.boxes, det.boxes)
    np.testing.assert_array_equal(back.score, det.score)
    assert list(back.video_ids()) == list(det.video_ids())
    lines = p.read_text().splitlines()
    lines[57] = lines[57].replace(",", ";", 1)
    p.write_text("\n".join(lines[:30]) + "\n\n" + "\n".join(lines[30:]) + "\n")  # a blank line at 31
    with pytest.raises(SevereError, match="det.csv:59: expected 8 columns"):
        read_boxes_csv(p, require_score=True)


# -------------------------------------------------------------------------------------------------- CLI


def write_case(tmp_path):
    """The exclusion hand case as files: mAP 1.0 with the exclusions, 0.25 without."""
    (tmp_path / "map.pbtxt").write_text(LABELMAP_V22)
    (tmp_path / "gt.csv").write_text(
        "v,0902,0.1,0.1,0.4,0.6,1,0\nv,0903,0.5,0.2,0.9,0.8,1,1\nv,0903,0.5,0.2,0.9,0.8,2,1\n")
    (tmp_path / "det.csv").write_text(
        "v,0902,0.1,0.1,0.4,0.6,1,0.9\nv,0903,0.2,0.3,0.7,0.9,1,0.95\nv,0903,0.2,0.3,0.7,0.9,3,0.5\n")
    (tmp_path / "excl.csv").write_text("v,0903\n")
    return ["ava", "--groundtruth", str(tmp_path / "gt.csv"), "--detections", str(tmp_path / "det.csv"),
            "--labelmap", str(tmp_path / "map.pbtxt")]


def test_cli_json(tmp_path, capsys):
    args = write_case(tmp_path)
    assert eval_cli.main(args + ["--exclusions", str(tmp_path / "excl.csv"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"mAP": 1.0, "per_class": {"1": 1.0, "3": None}}  # class 2 is not in the label map
    assert eval_cli.main(args + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"mAP": 0.25, "per_class": {"1": 0.25, "3": None}}


def test_cli_table(tmp_path, capsys):
    assert eval_cli.main(write_case(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "bend/bow (at the waist)" in out and "25.00" in out and "n/a" in out
    assert "mAP@0.5IOU: 25.00 % over 1 classes" in out


def test_cli_errors(tmp_path, capsys):
    args = write_case(tmp_path)
    (tmp_path / "det.csv").write_text("v,0902,0.1,0.1,0.4,0.6,1\n")
    with pytest.raises(SevereError, match="det.csv:1: expected 8 columns"):
        eval_cli.main(args)
    with pytest.raises(SevereError, match="missing box csv"):
        eval_cli.main(args[:2] + [str(tmp_path / "nope.csv")] + args[3:])
    with pytest.raises(SevereError, match="unknown eval task"):
        eval_cli.main(["charades"])
    assert eval_cli.main([]) == 2 and "ava" in capsys.readouterr().out


def test_cli_registered_in_severe_command(tmp_path, capsys):
    from severe import cli

    if "eval" not in cli.COMMANDS:
        pytest.skip("'eval' is not registered in severe/cli.py COMMANDS yet (the lead adds it)")
    args = write_case(tmp_path)
    assert cli.main(["eval"] + args + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mAP"] == 0.25
    (tmp_path / "gt.csv").write_text("v,0902,0.1,0.1,0.4\n")
    assert cli.main(["eval"] + args) == 2
    assert "gt.csv:1" in capsys.readouterr().err
