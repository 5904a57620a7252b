"""Writers of annotation files in the official formats of docs/datasets.md (byte-level quirks included).

Each writer takes plain Python data (or the readers' own dataclasses, so that write -> read round
trips are testable) and writes one file atomically. Quirks reproduced on purpose: CRLF line ends of
the UCF101 lists, no label column in the UCF/NTU test lists, a trailing space on NTU and HMDB lines,
FineGym non-``_org`` lists without a final newline, SSv2 class ids as strings, EPIC list-literal
columns quoted only when they contain commas, the misspelt ``original_vido_id`` frame-list header.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import scipy.io

from severe.data.readers.ava import AvaBox
from severe.data.readers.charades import CharadesAnnotation
from severe.data.readers.epic import EpicSegment
from severe.data.readers.ucfrep import UcfRepAnnotation
from severe.io import atomic_write, atomic_write_text

UCF_NEWLINE = "\r\n"  # the UCF101 ucfTrainTestlist files use Windows line ends
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: severe synth"
AVA_LABEL_TYPES = ("PERSON_MOVEMENT", "OBJECT_MANIPULATION", "PERSON_INTERACTION")


def write_lines(path: Path, lines: Iterable[str], *, newline: str = "\n", final_newline: bool = True) -> Path:
    """Join ``lines`` with ``newline`` (plus one at the end unless ``final_newline`` is False)."""
    lines = list(lines)
    text = newline.join(lines) + (newline if final_newline and lines else "")
    return atomic_write_text(path, text)


# ---- UCF101 / NTU-60 ---------------------------------------------------------------------------

def write_class_index(path: Path, names: Sequence[str], *, newline: str = "\n") -> Path:
    """``classInd.txt``: ``<id 1..C> <name>`` per line."""
    return write_lines(path, (f"{i} {n}" for i, n in enumerate(names, start=1)), newline=newline)


def write_ucf_list(path: Path, items: Sequence[tuple[str, int | None]], *, newline: str = UCF_NEWLINE) -> Path:
    """UCF101 train/test list: ``<Class>/<file>.avi <id 1..C>`` (train) or ``<Class>/<file>.avi`` (test,
    id None)."""
    return write_lines(path, (p if cid is None else f"{p} {cid}" for p, cid in items), newline=newline)


def write_ntu_list(path: Path, paths: Sequence[str]) -> Path:
    """NTU-60 cross-subject list: ``<class_folder>/<name>_rgb.avi `` (trailing space, no label)."""
    return write_lines(path, (f"{p} " for p in paths))


# ---- HMDB51 ------------------------------------------------------------------------------------

def write_hmdb_split(path: Path, rows: Sequence[tuple[str, int]]) -> Path:
    """``<class>_test_split<k>.txt``: ``<name>.avi <flag> `` (trailing space; 1 train, 2 test, 0 unused)."""
    return write_lines(path, (f"{name} {flag} " for name, flag in rows))


# ---- Something-Something v2 --------------------------------------------------------------------

def write_ssv2_labels(path: Path, labels: Mapping[str, int]) -> Path:
    """``-labels.json``: template without brackets -> class id as a string."""
    return atomic_write_text(path, json.dumps({k: str(v) for k, v in labels.items()}, indent=1) + "\n")


def write_ssv2_split(path: Path, records: Sequence[Mapping[str, object]]) -> Path:
    """``-train.json`` / ``-validation.json`` (records with id, label, template, placeholders) or
    ``-test.json`` (records with id only)."""
    return atomic_write_text(path, json.dumps(list(records)))


# ---- FineGym -----------------------------------------------------------------------------------

def write_gym_list(path: Path, rows: Sequence[tuple[str, int]], *, org: bool) -> Path:
    """``gym*_{train,val}.txt`` (``<clip>.avi <label>``, no final newline) or the ``_org`` variant
    (``<clip> <label>`` with a final newline); ``rows`` hold clip names without extension."""
    if org:
        return write_lines(path, (f"{clip} {label}" for clip, label in rows))
    return write_lines(path, (f"{clip}.avi {label}" for clip, label in rows), final_newline=False)


def write_json(path: Path, obj: object) -> Path:
    """Compact JSON (the FineGym event/annotation files, Diving48 lists and vocabulary)."""
    return atomic_write_text(path, json.dumps(obj))


# ---- Kinetics-400 ------------------------------------------------------------------------------

def write_videofolder_list(path: Path, rows: Sequence[tuple[str, int, int]]) -> Path:
    """TSM-style list: ``<class>/<clip> <num_frames> <label>``."""
    return write_lines(path, (f"{clip} {n} {label}" for clip, n, label in rows))


# ---- EPIC-Kitchens-100 -------------------------------------------------------------------------

EPIC_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                "noun_class", "all_nouns", "all_noun_classes")


def format_timestamp(seconds: float, decimals: int) -> str:
    """Seconds -> ``HH:mm:ss.<decimals digits>``."""
    scale = 10 ** decimals
    total = round(seconds * scale)
    whole, frac = divmod(total, scale)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:0{decimals}d}"


def _csv_text(rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def write_epic_csv(path: Path, segments: Sequence[EpicSegment], narration_times: Sequence[float]) -> Path:
    """``EPIC_100_{train,validation}.csv``; ``narration_times`` (seconds) fill narration_timestamp."""
    rows: list[Sequence[object]] = [EPIC_COLUMNS]
    for s, t in zip(segments, narration_times, strict=True):
        rows.append((s.narration_id, s.participant_id, s.video_id, format_timestamp(t, 3),
                     format_timestamp(s.start_sec, 2), format_timestamp(s.stop_sec, 2), s.start_frame,
                     s.stop_frame, s.narration, s.verb, s.verb_class, s.noun, s.noun_class,
                     repr(list(s.all_nouns)), repr(list(s.all_noun_classes))))
    return atomic_write_text(path, _csv_text(rows))


def write_epic_classes(path: Path, rows: Sequence[tuple[int, str, Sequence[str], str]]) -> Path:
    """``EPIC_100_{verb,noun}_classes.csv``: ``id,key,instances,category`` (instances a list literal)."""
    return atomic_write_text(path, _csv_text([("id", "key", "instances", "category")]
                                             + [(i, k, repr(list(inst)), c) for i, k, inst, c in rows]))


def write_epic_video_info(path: Path, rows: Sequence[tuple[str, float, float, str]]) -> Path:
    """``EPIC_100_video_info.csv``: ``video_id,duration,fps,resolution``."""
    return atomic_write_text(path, _csv_text([("video_id", "duration", "fps", "resolution")] + list(rows)))


# ---- AVA ---------------------------------------------------------------------------------------

def _box_text(box: Sequence[float]) -> str:
    return ",".join(f"{v:.3f}" for v in box)


def write_ava_ground_truth(path: Path, boxes: Sequence[AvaBox]) -> Path:
    """``ava_{train,val}_v2.2.csv``: ``video_id,%04d timestamp,x1,y1,x2,y2,action_id,person_id``."""
    return write_lines(path, (f"{b.video_id},{b.timestamp:04d},{_box_text(b.box)},{b.action_id},{b.person_id}"
                              for b in boxes))


def write_ava_detections(path: Path, boxes: Sequence[AvaBox]) -> Path:
    """Person-detector csv: ``video_id,timestamp,x1,y1,x2,y2,<action id | -1 | empty>,score``."""
    return write_lines(path, (f"{b.video_id},{b.timestamp:04d},{_box_text(b.box)},"
                              f"{'' if b.action_id is None else b.action_id},{b.score:.6f}" for b in boxes))


def write_ava_excluded(path: Path, keys: Sequence[tuple[str, int]]) -> Path:
    """Excluded timestamps: ``video_id,%04d timestamp``."""
    return write_lines(path, (f"{v},{t:04d}" for v, t in keys))


def write_ava_label_map(path: Path, names: Mapping[int, str], *, style: str = "v2.2",
                        label_types: Mapping[int, str] | None = None) -> Path:
    """Label map pbtxt in the v2.2 (``label { name label_id label_type }``) or v2.1 (``item { name id }``)
    style."""
    blocks = []
    for aid, name in names.items():
        if style == "v2.2":
            kind = (label_types or {}).get(aid, AVA_LABEL_TYPES[0])
            blocks.append(f'label {{\n  name: "{name}"\n  label_id: {aid}\n  label_type: {kind}\n}}')
        elif style == "v2.1":
            blocks.append(f'item {{\n  name: "{name}"\n  id: {aid}\n}}')
        else:
            raise ValueError(f"unknown label-map style {style!r}")
    return write_lines(path, blocks)


def write_frame_list(path: Path, videos: Sequence[tuple[str, Sequence[str], Sequence[Sequence[int]] | None]]) -> Path:
    """PySlowFast frame list: header ``original_vido_id video_id frame_id path labels`` and one row per
    frame; ``videos`` = (video id, frame paths, per-frame labels or None). Labels: ``""`` when empty,
    a bare id when single, quoted comma-joined ids when several."""
    lines = ["original_vido_id video_id frame_id path labels"]
    for index, (vid, frames, labels) in enumerate(videos):
        for fid, rel in enumerate(frames):
            ids = list(labels[fid]) if labels is not None else []
            text = '""' if not ids else (str(ids[0]) if len(ids) == 1 else '"' + ",".join(map(str, ids)) + '"')
            lines.append(f"{vid} {index} {fid} {rel} {text}")
    return write_lines(path, lines)


# ---- Charades ----------------------------------------------------------------------------------

def write_charades_csv(path: Path, annotations: Sequence[CharadesAnnotation]) -> Path:
    """Official ``Charades_v1_{train,test}.csv`` (actions ``cNNN start end`` joined by ``;``)."""
    rows: list[Sequence[object]] = [("id", "subject", "scene", "quality", "relevance", "verified", "script",
                                     "objects", "descriptions", "actions", "length")]
    for a in annotations:
        actions = ";".join(f"c{x.class_id:03d} {x.start:.2f} {x.end:.2f}" for x in a.actions)
        rows.append((a.id, a.subject, a.scene, a.quality, a.relevance, a.verified, a.script, ";".join(a.objects),
                     a.descriptions, actions, f"{a.length:.2f}"))
    return atomic_write_text(path, _csv_text(rows))


def write_charades_classes(path: Path, classes: Mapping[int, str]) -> Path:
    """``Charades_v1_classes.txt``: ``cNNN <name>``."""
    return write_lines(path, (f"c{cid:03d} {name}" for cid, name in classes.items()))


# ---- UCFRep ------------------------------------------------------------------------------------

def write_ucfrep_mat(path: Path, ann: UcfRepAnnotation) -> Path:
    """``<video>.mat`` with a MATLAB struct ``label`` (doubles, as MATLAB saves them). The header text
    is fixed (scipy would stamp the current time) so that files are byte-identical across runs."""
    struct = {
        "duration": float(ann.duration),
        "start_frame": float(ann.start_frame),
        "end_frame": float(ann.end_frame),
        "temporal_bound_num": float(len(ann.temporal_bound)),
        "temporal_bound": np.asarray(ann.temporal_bound, dtype=np.float64),
        "offset_next_estimate": np.asarray(ann.offset_next_estimate, dtype=np.float64),
        "offset_pre_estimate": np.asarray(ann.offset_pre_estimate, dtype=np.float64),
    }
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"label": struct}, format="5", oned_as="row")
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    return atomic_write(path, lambda f: f.write(bytes(data)))


def write_repetition_labels(path: Path, videos: Mapping[str, Sequence[int]]) -> Path:
    """``repetition_label/<Class>.txt``: a video-name line, a boundary line, then a blank line, per video."""
    lines: list[str] = []
    for video, bounds in videos.items():
        lines += [video, " ".join(str(int(b)) for b in bounds), ""]
    return write_lines(path, lines)
