"""AVA frame-mAP@0.5: the official ActivityNet/AVA evaluator's semantics, vectorised (docs/tasks.md §1.5).

What is computed (identical to the reference evaluator PySlowFast and the original SEVERE code used):

1. Only class ids of the label map count; rows with other ids are ignored in both files.
2. One "image" per (video_id, integer second); excluded images are removed from both sides.
3. Detections whose box has no area (x2 <= x1 or y2 <= y1) are dropped, as the reference's
   ``_remove_invalid_boxes`` does (they count neither as TP nor as FP).
4. Per image and class, detections are matched **in their input (row) order, not by score, no NMS**:
   each looks only at its highest-IoU ground-truth box of that class (first such box in ground-truth row
   order when IoUs tie, like ``np.argmax``); IoU >= 0.5 and box not yet matched -> TP, the box becomes
   matched; otherwise FP (no fall-back to the second-best box). Detections on images without ground truth
   of that class are FPs. IoU = inter / (area_a + area_b - inter) on normalised coords, no +1, computed
   with the reference's operation order so thresholding is bit-identical.
5. Per class: sort by score descending, cumulative TP/FP, precision, recall = TP / N_gt; VOC all-point AP
   with the monotone precision envelope. Ground truth but no detection -> AP 0; no ground truth -> None
   (NaN in the reference) and skipped by the mean.

Tie rule (documented deviation, only matters for exactly equal scores within one class): we use a
**stable** descending sort, so tied detections keep their file row order. The reference uses
``np.argsort(scores)[::-1]`` on the per-image concatenation (non-stable quicksort reversed), whose
tie order is an implementation accident of numpy's sort; it equals ours whenever no two detections of a
class share a score, and a tie changes AP only when it mixes a TP and an FP.

Speed: no Python loop over images. (image, class) groups of ground truth are a dense table (or a
numbering of ground-truth images when keys are sparse); each detection finds its group by one lookup;
the best box is found with one numpy pass per ground-truth slot of the largest group; the first
passing detection (lowest row) per ground-truth box is the TP (``np.unique(..., return_index=True)``);
AP is a loop over the classes only. ~3.5 s of CPU for the AVA v2.2 validation scale (57k keyframes,
~12M detection rows) on one core, ~0.6 GB of extra memory at its peak, ~65x the per-image reference
side by side (benchmarks/bench_ava_eval.py). ``frame_map_reference`` is the readable
per-image implementation used by the tests and the benchmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

# the csv rows and their parser live with the other AVA file readers (one parser for data and evaluator)
from severe.data.readers.ava import AvaRows, read_ava_label_map, read_boxes_csv, read_exclusions
from severe.errors import SevereError

__all__ = [
    "AvaRows",
    "read_labelmap",
    "read_boxes_csv",
    "read_exclusions",
    "write_boxes_csv",
    "frame_map",
    "frame_map_reference",
    "voc_average_precision",
]


# ---------------------------------------------------------------------------------------------------
# Files


def read_labelmap(path: str | Path) -> dict[int, str]:
    """Label map pbtxt (``label { name label_id }`` or ``item { name id }``) -> {class id: name}."""
    return read_ava_label_map(Path(path))


def write_boxes_csv(path: str | Path, rows: AvaRows) -> Path:
    """Write rows as ``video_id,%04d timestamp,x1,y1,x2,y2,action[,score]`` (floats exactly, repr).

    Atomic (temp file + rename). Reading the file back with :func:`read_boxes_csv` gives equal arrays.
    """
    from severe.io import atomic_write  # imports torch: keep it off the evaluator's import path

    names = rows.videos
    with_score = rows.score is not None

    def write(f) -> None:
        step = 200_000
        for s in range(0, len(rows), step):
            sl = slice(s, s + step)
            b = rows.boxes[sl].tolist()
            cols = [[names[v] for v in rows.video[sl].tolist()], rows.timestamp[sl].tolist(), b, rows.action[sl].tolist()]
            if with_score:
                lines = [f"{v},{t:04d},{x1!r},{y1!r},{x2!r},{y2!r},{a},{sc!r}\n"
                         for v, t, (x1, y1, x2, y2), a, sc in zip(*cols, rows.score[sl].tolist())]
            else:
                lines = [f"{v},{t:04d},{x1!r},{y1!r},{x2!r},{y2!r},{a}\n" for v, t, (x1, y1, x2, y2), a in zip(*cols)]
            f.write("".join(lines).encode("utf-8"))

    return atomic_write(path, write)


# ---------------------------------------------------------------------------------------------------
# Evaluation (vectorised)


def voc_average_precision(tp_sorted: np.ndarray, num_gt: int) -> float:
    """VOC all-point AP of TP flags already sorted by descending score (reference arithmetic).

    precision = cumTP / (cumTP + cumFP), recall = cumTP / num_gt; pad recall with 0/1 and precision with
    0/0; precision envelope = running max from the end; AP = sum over recall changes of dr * p.
    """
    if tp_sorted.size == 0:
        return 0.0
    tp = tp_sorted.astype(np.int64)
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1 - tp)
    precision = ctp.astype(np.float64) / (ctp + cfp)
    recall = ctp.astype(np.float64) / num_gt
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


def _descending_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` descending; equal scores keep their positions' order (stable).

    A SIMD quicksort plus a fix-up of the (rare) tie runs: ~6x faster than a stable sort of floats.
    """
    order = np.argsort(-scores)
    s = scores[order]
    tie = s[1:] == s[:-1]
    if tie.any():
        in_run = np.zeros(len(s), dtype=bool)
        in_run[1:] |= tie
        in_run[:-1] |= tie
        run_id = np.concatenate([[0], np.cumsum(~tie)])
        sub = np.flatnonzero(in_run)
        order[sub] = order[sub][np.lexsort((order[sub], run_id[sub]))]
    return order


def _class_index(actions: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """int64 compact index of each action id in the sorted ``classes`` array, -1 if it is not a class."""
    if actions.size == 0:
        return np.zeros(0, dtype=np.int64)
    a_min, a_max = int(actions.min()), int(actions.max())
    if a_max - a_min > 1 << 20:  # sparse ids: binary search
        pos = np.minimum(np.searchsorted(classes, actions), len(classes) - 1)
        return np.where(classes[pos] == actions, pos, -1)
    lut = np.full(a_max - a_min + 1, -1, dtype=np.int64)  # one entry per id value present in the rows
    inside = classes[(classes >= a_min) & (classes <= a_max)]
    lut[inside - a_min] = np.searchsorted(classes, inside)
    return lut[actions - a_min]


def _iou_pairs(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Row-wise IoU of boxes [M, 4] (x1, y1, x2, y2) with the reference's operation order."""
    ih = np.maximum(0.0, np.minimum(det[:, 3], gt[:, 3]) - np.maximum(det[:, 1], gt[:, 1]))
    iw = np.maximum(0.0, np.minimum(det[:, 2], gt[:, 2]) - np.maximum(det[:, 0], gt[:, 0]))
    inter = ih * iw
    area_d = (det[:, 3] - det[:, 1]) * (det[:, 2] - det[:, 0])
    area_g = (gt[:, 3] - gt[:, 1]) * (gt[:, 2] - gt[:, 0])
    return inter / (area_d + area_g - inter)


def _check_inputs(groundtruth: AvaRows, detections: AvaRows, iou: float) -> None:
    if not isinstance(groundtruth, AvaRows) or not isinstance(detections, AvaRows):
        raise SevereError("frame_map expects AvaRows for ground truth and detections (see read_boxes_csv)")
    if detections.score is None:
        raise SevereError("detections have no score column: every detection row needs a score")
    if not 0.0 < iou <= 1.0:
        raise SevereError(f"IoU threshold must be in (0, 1], got {iou}")
    for what, rows in (("ground truth", groundtruth), ("detections", detections)):
        if not np.isfinite(rows.boxes).all():
            i = int(np.flatnonzero(~np.isfinite(rows.boxes).all(axis=1))[0])
            raise SevereError(f"{what} row {i}: non-finite box {rows.boxes[i].tolist()}")
    if not np.isfinite(detections.score).all():
        i = int(np.flatnonzero(~np.isfinite(detections.score))[0])
        raise SevereError(f"detections row {i}: non-finite score {detections.score[i]}")


def _image_keys(
    groundtruth: AvaRows, detections: AvaRows, exclusions: Iterable[tuple[str, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """int64 image keys video * span + (second - min second) shared by both row sets, the keys of the
    excluded images, and the size of the key space."""
    names: dict[str, int] = {}
    remaps = [np.array([names.setdefault(v, len(names)) for v in rows.videos], dtype=np.int64)
              for rows in (groundtruth, detections)]
    ts_all = [r.timestamp for r in (groundtruth, detections) if len(r)]
    t_min = min(int(t.min()) for t in ts_all) if ts_all else 0
    t_max = max(int(t.max()) for t in ts_all) if ts_all else 0
    span = t_max - t_min + 1
    if span * max(len(names), 1) >= 2**62:
        raise SevereError(f"timestamps span {t_min}..{t_max}: not plausible AVA seconds")
    keys = []
    for rows, remap in zip((groundtruth, detections), remaps):
        identity = np.array_equal(remap, np.arange(len(remap)))
        vid = rows.video.astype(np.int64) if identity else remap[rows.video]
        keys.append(vid * span + (rows.timestamp.astype(np.int64) - t_min))
    excl = []
    for item in exclusions:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise SevereError(f"exclusions must be (video_id, second) pairs, got {item!r}")
        v, t = item[0], int(item[1])
        if v in names and t_min <= t <= t_max:
            excl.append(names[v] * span + (t - t_min))
    return keys[0], keys[1], np.unique(np.asarray(excl, dtype=np.int64)), span * max(len(names), 1)


def _member(keys: np.ndarray, subset: np.ndarray, n_keys: int) -> np.ndarray:
    """``np.isin(keys, subset)`` for keys in [0, n_keys); a lookup table when that space is small."""
    if n_keys > 4 * len(keys) + (1 << 20):
        return np.isin(keys, subset)
    table = np.zeros(n_keys, dtype=bool)
    table[subset] = True
    return table[keys]


_DENSE_GROUPS_PER_ROW = 4  # use a dense (image, class) table when it has <= 4 entries per input row


def frame_map(
    groundtruth: AvaRows,
    detections: AvaRows,
    class_ids: Iterable[int],
    exclusions: Iterable[tuple[str, int]] = frozenset(),
    iou: float = 0.5,
) -> dict:
    """AVA frame-mAP (PascalBoxes_Precision/mAP@0.5IOU) with the reference evaluator's semantics.

    ``class_ids``: the label-map ids (other ids are ignored in both inputs); ``exclusions``:
    (video_id, second) images removed from both sides. Returns ``{"mAP": float, "per_class":
    {class_id: AP or None}}`` (ids ascending) where None marks a class without ground truth (skipped by
    the mean). Raises SevereError when no label-map class has ground truth. See the module docstring.
    """
    _check_inputs(groundtruth, detections, iou)
    classes = np.array(sorted({int(c) for c in class_ids}), dtype=np.int64)
    if classes.size == 0:
        raise SevereError("frame_map: empty class list (label map without ids?)")
    k = len(classes)
    g_key, d_key, excl, n_keys = _image_keys(groundtruth, detections, exclusions)

    # ground truth: label-map classes, not excluded, in row order
    g_cls = _class_index(groundtruth.action, classes)
    if excl.size:
        g_cls[_member(g_key, excl, n_keys)] = -1
    g_rows = np.flatnonzero(g_cls >= 0)
    g_key, g_cls, g_box = g_key[g_rows], g_cls[g_rows], groundtruth.boxes[g_rows]
    inverted = (g_box[:, 2] < g_box[:, 0]) | (g_box[:, 3] < g_box[:, 1])
    if inverted.any():
        i = int(g_rows[np.flatnonzero(inverted)[0]])
        raise SevereError(f"ground truth row {i}: box {groundtruth.boxes[i].tolist()} has x2 < x1 or y2 < y1")
    num_gt = np.bincount(g_cls, minlength=k)
    if not num_gt.any():
        raise SevereError("frame_map: no ground-truth box of a label-map class (after exclusions); wrong files?")

    # detections: class index, -1 = ignored (not a label-map class, excluded image, or a box without
    # area, which the reference drops). No copies of the big arrays: rows stay in input order.
    d_cls = _class_index(detections.action, classes)
    db = detections.boxes
    d_cls[~((db[:, 0] < db[:, 2]) & (db[:, 1] < db[:, 3]))] = -1
    if excl.size:
        d_cls[_member(d_key, excl, n_keys)] = -1

    # (image, class) groups of ground truth, each in ground-truth row order (stable sort)
    if n_keys * k <= _DENSE_GROUPS_PER_ROW * (len(groundtruth) + len(detections)):
        n_groups = n_keys * k
        g_group = g_key * k + g_cls
        d_group = d_key * k
        d_group += d_cls
        d_group[d_cls < 0] = n_groups
    else:  # sparse image keys: number the ground-truth images instead
        g_images = np.unique(g_key)
        n_groups = len(g_images) * k
        g_group = np.searchsorted(g_images, g_key) * k + g_cls
        pos = np.minimum(np.searchsorted(g_images, d_key), len(g_images) - 1)
        d_group = np.where((d_cls >= 0) & (g_images[pos] == d_key), pos * k + d_cls, n_groups)
    g_box_sorted = g_box[np.argsort(g_group, kind="stable")]
    g_count = np.zeros(n_groups + 1, dtype=np.int32)  # last group (n_groups) = "no ground truth", empty
    g_count[:-1] = np.bincount(g_group, minlength=n_groups)
    g_start = np.concatenate([[0], np.cumsum(g_count, dtype=np.int64)])

    # candidates: detections with >= 1 ground-truth box of their class in their image
    cand = np.flatnonzero(g_count[d_group])
    cand_group = d_group[cand]
    lo, cnt = g_start[cand_group], g_count[cand_group]
    cand_box = db[cand]

    # best ground-truth box per candidate: first maximum of IoU over the group (np.argmax rule)
    best_iou = np.full(len(cand), -1.0)
    best_gt = lo.copy()
    for j in range(int(cnt.max()) if cnt.size else 0):
        active = np.flatnonzero(cnt > j)
        gt_idx = lo[active] + j
        ov = _iou_pairs(cand_box[active], g_box_sorted[gt_idx])
        better = ov > best_iou[active]
        best_iou[active[better]] = ov[better]
        best_gt[active[better]] = gt_idx[better]

    # input-order matching: among candidates whose best box passes the threshold, the first one
    # (lowest row) of each ground-truth box is the TP; the others hit an already matched box -> FP
    passed = np.flatnonzero(best_iou >= iou)
    _, first = np.unique(best_gt[passed], return_index=True)
    tp = np.zeros(len(detections), dtype=bool)
    tp[cand[passed[first]]] = True

    # per class: descending score, ties in row order (stable), VOC AP
    by_class = np.argsort(d_cls.astype(np.int16) if k < 2**15 else d_cls, kind="stable")
    bounds = np.searchsorted(d_cls[by_class], np.arange(k + 1))
    score_by_class, tp_by_class = detections.score[by_class], tp[by_class]
    per_class: dict[int, float | None] = {}
    for c in range(k):
        if num_gt[c] == 0:
            per_class[int(classes[c])] = None
            continue
        sl = slice(bounds[c], bounds[c + 1])
        order = _descending_order(score_by_class[sl])
        per_class[int(classes[c])] = voc_average_precision(tp_by_class[sl][order], int(num_gt[c]))
    aps = [v for v in per_class.values() if v is not None]
    return {"mAP": float(np.mean(aps)), "per_class": per_class}


# ---------------------------------------------------------------------------------------------------
# Reference implementation (readable, per image; for tests and the benchmark)


def frame_map_reference(
    groundtruth: AvaRows,
    detections: AvaRows,
    class_ids: Iterable[int],
    exclusions: Iterable[tuple[str, int]] = frozenset(),
    iou: float = 0.5,
) -> dict:
    """Straightforward per-image version of :func:`frame_map` (same semantics, same tie rule)."""
    classes = {int(c) for c in class_ids}
    excluded = {(str(v), int(t)) for v, t in exclusions}

    def by_image_and_class(rows: AvaRows, with_score: bool) -> dict:
        """{image: {class: [(row, box, score), ...] in row order}} for label-map classes, not excluded."""
        out: dict[tuple[str, int], dict[int, list]] = {}
        for r in range(len(rows)):
            image = (rows.videos[rows.video[r]], int(rows.timestamp[r]))
            action = int(rows.action[r])
            if action not in classes or image in excluded:
                continue
            score = float(rows.score[r]) if with_score else None
            out.setdefault(image, {}).setdefault(action, []).append((r, tuple(float(v) for v in rows.boxes[r]), score))
        return out

    def box_iou(a: tuple, b: tuple) -> float:
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        inter = ih * iw
        area_a = (a[3] - a[1]) * (a[2] - a[0])
        area_b = (b[3] - b[1]) * (b[2] - b[0])
        return inter / (area_a + area_b - inter)

    gt = by_image_and_class(groundtruth, False)
    num_gt = {c: 0 for c in classes}
    for per_class_rows in gt.values():
        for c, rows in per_class_rows.items():
            num_gt[c] += len(rows)

    results: dict[int, list[tuple[float, int, bool]]] = {c: [] for c in classes}  # (score, row, is TP)
    for image, per_class_dets in by_image_and_class(detections, True).items():
        for c, dets in per_class_dets.items():
            gt_boxes = [box for _, box, _ in gt.get(image, {}).get(c, [])]
            matched = [False] * len(gt_boxes)
            for row, box, score in dets:  # input order
                if not (box[0] < box[2] and box[1] < box[3]):
                    continue  # no area: dropped like the reference's _remove_invalid_boxes
                is_tp = False
                if gt_boxes:
                    overlaps = [box_iou(box, g) for g in gt_boxes]
                    best = overlaps.index(max(overlaps))  # first maximum
                    if overlaps[best] >= iou and not matched[best]:
                        matched[best] = is_tp = True
                results[c].append((score, row, is_tp))

    per_class: dict[int, float | None] = {}
    for c in sorted(classes):
        if num_gt[c] == 0:
            per_class[c] = None
            continue
        ranked = sorted(results[c], key=lambda t: (-t[0], t[1]))  # score descending, ties by row
        precision, recall, tp, fp = [], [], 0, 0
        for _, _, is_tp in ranked:
            tp, fp = tp + is_tp, fp + (not is_tp)
            precision.append(tp / (tp + fp))
            recall.append(tp / num_gt[c])
        if not ranked:
            per_class[c] = 0.0
            continue
        recall = [0.0] + recall + [1.0]
        precision = [0.0] + precision + [0.0]
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = max(precision[i], precision[i + 1])
        per_class[c] = sum((recall[i] - recall[i - 1]) * precision[i]
                           for i in range(1, len(recall)) if recall[i] != recall[i - 1])
    aps = [v for v in per_class.values() if v is not None]
    if not aps:
        raise SevereError("frame_map: no ground-truth box of a label-map class (after exclusions); wrong files?")
    return {"mAP": float(np.mean(aps)), "per_class": per_class}
