"""One AVA box-csv parser (severe.data.readers.ava) for the data readers and the evaluator: the data readers
return what the line-by-line readers they replaced returned. ``_old_*`` are verbatim copies of that code."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from severe.data.readers import ava
from severe.data.readers._common import bad_line, read_text
from severe.errors import SevereError
from severe.metrics import ava as ava_metrics

# ---------------------------------------------------------------------------------------------------------
# oracle: the pre-refactor data readers


def _old_csv_lines(path):
    lines = read_text(path).splitlines()
    return [(no, row) for no, row in enumerate(csv.reader(lines), start=1) if row and any(f.strip() for f in row)]


def _old_parse_box_row(row, path, no):
    try:
        ts = int(row[1])
        box = tuple(float(v) for v in row[2:6])
    except ValueError:
        raise bad_line(path, no, f"timestamp must be an integer and box 4 numbers, got {row[:6]!r}") from None
    if not all(0.0 <= v <= 1.0 for v in box) or box[2] < box[0] or box[3] < box[1]:
        raise bad_line(path, no, f"box {box} is not normalised (0 <= x1 <= x2 <= 1, 0 <= y1 <= y2 <= 1)")
    return row[0], ts, box


def _old_read_ava_ground_truth(path):
    out = []
    for no, row in _old_csv_lines(path):
        if len(row) != 8:
            raise bad_line(path, no, f"expected 8 columns (video,time,x1,y1,x2,y2,action,person), got {len(row)}")
        vid, ts, box = _old_parse_box_row(row, path, no)
        try:
            action, person = int(row[6]), int(row[7])
        except ValueError:
            raise bad_line(path, no, f"action id and person id must be integers, got {row[6:]!r}") from None
        if not 1 <= action <= 80:
            raise bad_line(path, no, f"action id {action} outside 1..80")
        out.append(ava.AvaBox(vid, ts, box, action, person_id=person))
    return out


def _old_read_ava_detections(path, min_score=None):
    out = []
    for no, row in _old_csv_lines(path):
        if len(row) != 8:
            raise bad_line(path, no, f"expected 8 columns (video,time,x1,y1,x2,y2,action,score), got {len(row)}")
        vid, ts, box = _old_parse_box_row(row, path, no)
        try:
            action = int(row[6]) if row[6].strip() else None
            score = float(row[7])
        except ValueError:
            raise bad_line(path, no, f"action id must be an integer or empty and score a number, got {row[6:]!r}") from None
        if action is not None and action != -1 and not 1 <= action <= 80:
            raise bad_line(path, no, f"action id {action} outside 1..80 (or -1 for a negative)")
        if min_score is None or score >= min_score:
            out.append(ava.AvaBox(vid, ts, box, action, score=score))
    return out


def _old_read_ava_excluded(path):
    out = set()
    for no, row in _old_csv_lines(path):
        if len(row) != 2:
            raise bad_line(path, no, f"expected 'video_id,timestamp', got {row!r}")
        try:
            out.add(f"{row[0]},{int(row[1]):04d}")
        except ValueError:
            raise bad_line(path, no, f"timestamp must be an integer, got {row[1]!r}") from None
    return out


# ---------------------------------------------------------------------------------------------------------


def _random_rows(r: np.random.Generator, n: int, detections: bool) -> list[str]:
    vids = ["1j20qq1JyX4", "-5KQ66BBWC4", "vid_c"]
    out = []
    for _ in range(n):
        x1, x2 = sorted(r.random(2).round(int(r.integers(1, 17))).tolist())
        y1, y2 = sorted(r.random(2).round(3).tolist())
        if detections:
            action = r.choice(["", "-1", str(int(r.integers(1, 81)))])
            last = repr(float(r.random()))
        else:
            action, last = str(int(r.integers(1, 81))), str(int(r.integers(0, 20)))
        out.append(f"{r.choice(vids)},{int(r.integers(902, 1799)):04d},{x1},{y1},{x2},{y2},{action},{last}")
    return out


@pytest.mark.parametrize("variant", ["plain", "crlf", "blank_lines", "quoted"])
def test_data_readers_match_the_old_readers(tmp_path, monkeypatch, variant):
    monkeypatch.setattr(ava, "_CHUNK_BYTES", 700)  # several chunks, fast and slow ones
    ava._ground_truth.cache_clear()
    r = np.random.default_rng(len(variant))
    for detections in (False, True):
        lines = _random_rows(r, 300, detections)
        if variant == "blank_lines":
            lines[10:10] = ["", "  "]
        if variant == "quoted":
            lines[5] = '"' + lines[5].replace(",", '","') + '"'
        text = ("\r\n" if variant == "crlf" else "\n").join(lines) + "\n"
        path = tmp_path / f"{variant}_{detections}.csv"
        path.write_text(text, newline="")
        if detections:
            assert ava.read_ava_detections(path) == _old_read_ava_detections(path)
            assert ava.read_ava_detections(path, min_score=0.5) == _old_read_ava_detections(path, min_score=0.5)
        else:
            assert ava.read_ava_ground_truth(path) == _old_read_ava_ground_truth(path)
    excl = tmp_path / "excl.csv"
    excl.write_text("1j20qq1JyX4,0904\n\n-5KQ66BBWC4,902\r\n")
    assert ava.read_ava_excluded(excl) == _old_read_ava_excluded(excl) == {"1j20qq1JyX4,0904", "-5KQ66BBWC4,0902"}


@pytest.mark.parametrize(
    "line, detections",
    [
        ("v,0902,0.1,0.2,0.3,0.4,12", False),  # 7 columns
        ("v,0902,0.1,0.2,0.3,0.4,81,1", False),  # action outside 1..80
        ("v,0902,0.1,0.2,0.3,0.4,,1", False),  # empty action in ground truth
        ("v,0902,0.1,0.2,0.3,0.4,12,1.5", False),  # person id not an integer
        ("v,0902,0.5,0.2,0.3,0.4,12,1", False),  # x1 > x2
        ("v,09x2,0.1,0.2,0.3,0.4,12,1", False),
        ("v,0902,0.1,0.2,0.3,0.4,0,0.5", True),  # action 0
        ("v,0902,0.1,0.2,0.3,0.4,-2,0.5", True),
        ("v,0902,0.1,0.2,0.3,1.4,5,0.5", True),
        ("v,0902,0.1,0.2,0.3,0.4,5,x", True),
    ],
)
def test_bad_rows_fail_on_the_same_line_as_before(tmp_path, line, detections):
    ava._ground_truth.cache_clear()
    good = "v,0902,0.1,0.2,0.3,0.4,12,0.9" if detections else "v,0902,0.1,0.2,0.3,0.4,12,1"
    path = tmp_path / "boxes.csv"
    path.write_text(f"{good}\n\n{good}\n{line}\n")
    old, new = (_old_read_ava_detections, ava.read_ava_detections) if detections else (
        _old_read_ava_ground_truth, ava.read_ava_ground_truth)
    with pytest.raises(SevereError, match=re.escape(f"{path}:4: ")):
        old(path)
    with pytest.raises(SevereError, match=re.escape(f"{path}:4: ")):
        new(path)


def test_evaluator_and_data_readers_share_one_parser(tmp_path):
    assert ava_metrics.read_boxes_csv is ava.read_boxes_csv and ava_metrics.AvaRows is ava.AvaRows
    assert ava_metrics.read_exclusions is ava.read_exclusions
    path = tmp_path / "gt.csv"
    path.write_text("v,0902,0.1,0.2,0.3,0.4,12,3\nw,0903,0.1,0.2,0.3,0.5,7,4\n")
    rows = ava.read_boxes_csv(path)
    boxes = ava.read_ava_ground_truth(path)
    assert [(b.video_id, b.timestamp, b.box, b.action_id, b.person_id) for b in boxes] == [
        (v, t, tuple(x), a, int(p)) for v, t, x, a, p in zip(rows.video_ids(), rows.timestamp.tolist(),
                                                            rows.boxes.tolist(), rows.action.tolist(), rows.score)]
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    assert ava.read_ava_detections(empty) == [] == _old_read_ava_detections(empty)
    with pytest.raises(SevereError, match="no rows"):
        ava.read_boxes_csv(empty)
