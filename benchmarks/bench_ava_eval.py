"""AVA frame-mAP benchmark at the AVA v2.2 validation scale (docs/tasks.md §1.5).

Synthesises validation-sized inputs on the fly (no data needed):
  64 videos x 897 keyframes (seconds 902..1798) = 57,408 images; ~3 persons per keyframe with 1-3
  actions each (ground truth, 80 action ids of which the 60-id label map keeps ~3/4); the person
  detector finds each person (jittered box) plus ~0.6 false boxes per keyframe, and every detector box
  gets one row per label-map class (the §1.4 detection file): ~ 57k x 3.45 x 60 = ~12M rows.

Measures CPU seconds of the process (single-threaded numpy; robust to a shared machine; wall seconds
are in the --json report), on one core:
  (a) ``frame_map`` on the in-memory arrays (the requirement: < 30 s on one core), and its peak memory:
      the largest extra allocation during the call (tracemalloc, a second run) and the process's
      peak resident set (ru_maxrss, which includes the synthetic inputs);
  (b) writing the two csvs with ``write_boxes_csv`` and parsing them back with ``read_boxes_csv``
      (reported separately), and checks the parsed files give the same mAP;
  (c) ``frame_map_reference`` (per-image Python loops) side by side with ``frame_map`` on the same
      input: the first --ref-videos videos (the requirement: >= 10x), their largest difference; the
      reference's full-scale time is extrapolated linearly in the number of rows (it is linear in the
      images) and labelled as such (--ref-videos 64 runs it on everything: minutes of CPU).

    python benchmarks/bench_ava_eval.py [--videos 64] [--ref-videos 2] [--seed 0] [--no-csv] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from severe.metrics.ava import AvaRows, frame_map, frame_map_reference, read_boxes_csv, write_boxes_csv

NUM_ACTIONS = 80
SECONDS = np.arange(902, 1799)


def label_map_ids(seed: int = 123) -> np.ndarray:
    """60 of the 80 action ids (like the v2.2 label map)."""
    return np.sort(np.random.default_rng(seed).choice(np.arange(1, NUM_ACTIONS + 1), 60, replace=False))


def synthesise(videos: int, seed: int = 0) -> tuple[AvaRows, AvaRows, np.ndarray, set]:
    """Validation-scale ground truth and detections (vectorised); returns gt, det, class ids, exclusions."""
    rng = np.random.default_rng(seed)
    classes = label_map_ids()
    n_img = videos * len(SECONDS)
    img_video = np.repeat(np.arange(videos), len(SECONDS))
    img_ts = np.tile(SECONDS, videos)

    # persons: 1..5 per keyframe (mean 3), normalised boxes
    per_img = rng.integers(1, 6, n_img)
    p_img = np.repeat(np.arange(n_img), per_img)
    n_p = len(p_img)
    xy = rng.random((n_p, 2)) * 0.7
    wh = 0.1 + rng.random((n_p, 2)) * 0.3
    p_box = np.round(np.concatenate([xy, np.minimum(xy + wh, 1.0)], axis=1), 3)  # 3 decimals, like AVA csvs

    # ground truth: 1..3 actions per person (duplicate ids allowed, as in messy files)
    n_act = rng.integers(1, 4, n_p)
    g_p = np.repeat(np.arange(n_p), n_act)
    g_action = rng.integers(1, NUM_ACTIONS + 1, len(g_p))
    gt = AvaRows(
        videos=tuple(f"vid{v:07d}xyz" for v in range(videos)),
        video=img_video[p_img[g_p]].astype(np.int32),
        timestamp=img_ts[p_img[g_p]].astype(np.int64),
        boxes=p_box[g_p],
        action=g_action.astype(np.int64),
    )

    # detector boxes: each person found with jitter (a few missed), plus false boxes
    found = rng.random(n_p) < 0.95
    d_img = p_img[found]
    d_box = np.clip(p_box[found] + rng.normal(0, 0.03, (int(found.sum()), 4)), 0, 1)
    n_false = rng.poisson(0.6, n_img)
    f_img = np.repeat(np.arange(n_img), n_false)
    fxy = rng.random((len(f_img), 2)) * 0.7
    f_box = np.concatenate([fxy, fxy + 0.05 + rng.random((len(f_img), 2)) * 0.25], axis=1)
    d_img = np.concatenate([d_img, f_img])
    d_box = np.concatenate([d_box, f_box])
    d_box = np.round(np.minimum(d_box, 1.0), 3)
    d_box[:, 2:] = np.maximum(d_box[:, 2:], d_box[:, :2])
    order = np.argsort(d_img, kind="stable")  # rows grouped by keyframe, like the written file
    d_img, d_box = d_img[order], d_box[order]
    n_box, k = len(d_img), len(classes)

    # one row per (box, class); scores: sigmoid-like float32, higher where the class is labelled
    rows_img = np.repeat(d_img, k)
    scores = rng.random(n_box * k).astype(np.float32).astype(np.float64) * 0.6
    labelled = np.unique(p_img[g_p].astype(np.int64) * 100 + g_action)  # (image, action) pairs of the gt
    boost = np.isin(rows_img.astype(np.int64) * 100 + np.tile(classes, n_box), labelled)
    scores[boost] += 0.4
    det = AvaRows(
        videos=gt.videos,
        video=img_video[rows_img].astype(np.int32),
        timestamp=img_ts[rows_img].astype(np.int64),
        boxes=np.repeat(d_box, k, axis=0),
        action=np.tile(classes, n_box).astype(np.int64),
        score=scores,
    )
    excl_idx = rng.choice(n_img, max(1, n_img // 1000), replace=False)
    exclusions = {(gt.videos[img_video[i]], int(img_ts[i])) for i in excl_idx}
    return gt, det, classes, exclusions


def subset(rows: AvaRows, videos: int) -> AvaRows:
    keep = rows.video < videos
    return AvaRows(rows.videos, rows.video[keep], rows.timestamp[keep], rows.boxes[keep], rows.action[keep],
                   None if rows.score is None else rows.score[keep])


def timed(name, fn, *args):
    """(result, seconds): CPU seconds of this process (the machine may be shared; numpy runs on one
    core here), the wall time is printed alongside by the caller when it differs much."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    WALL[name] = round(wall, 2)
    return out, cpu


WALL: dict[str, float] = {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=64)
    p.add_argument("--ref-videos", type=int, default=2, help="videos for the reference implementation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-csv", action="store_true", help="skip writing/parsing the csv files")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    report: dict = {}
    (gt, det, classes, excl), t_gen = timed("synthesise", synthesise, args.videos, args.seed)
    report.update(videos=args.videos, images=args.videos * len(SECONDS), gt_rows=len(gt), det_rows=len(det),
                  synth_seconds=round(t_gen, 2))
    print(f"synthesised {len(gt):,} gt rows, {len(det):,} detection rows in {t_gen:.1f} s", file=sys.stderr)

    res, t_fast = timed("frame_map", frame_map, gt, det, classes, excl)
    tracemalloc.start()
    frame_map(gt, det, classes, excl)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    report.update(fast_seconds=round(t_fast, 2), mAP=res["mAP"], fast_peak_extra_mb=round(peak / 2**20),
                  process_peak_rss_mb=round(rss / 2**20), under_30_s=t_fast < 30)
    print(f"frame_map (in memory): {t_fast:.2f} s CPU, mAP {res['mAP']:.6f}; peak extra memory "
          f"{peak / 2**20:.0f} MB (tracemalloc), process peak RSS {rss / 2**20:.0f} MB (incl. the inputs)", file=sys.stderr)

    if not args.no_csv:
        with tempfile.TemporaryDirectory() as tmp:
            gt_csv, det_csv = Path(tmp) / "gt.csv", Path(tmp) / "det.csv"
            _, t_wg = timed("write_gt", write_boxes_csv, gt_csv, gt)
            _, t_wd = timed("write_det", write_boxes_csv, det_csv, det)
            gt2, t_pg = timed("parse_gt", read_boxes_csv, gt_csv)
            det2, t_pd = timed("parse_det", lambda p: read_boxes_csv(p, require_score=True), det_csv)
            res2 = frame_map(gt2, det2, classes, excl)
            report.update(write_seconds=round(t_wg + t_wd, 2), parse_gt_seconds=round(t_pg, 2),
                          parse_det_seconds=round(t_pd, 2), det_csv_mb=round(os.path.getsize(det_csv) / 2**20, 1),
                          csv_mAP_equal=abs(res2["mAP"] - res["mAP"]) < 1e-12)
            print(f"write csvs {t_wg + t_wd:.1f} s; parse gt {t_pg:.2f} s, detections {t_pd:.2f} s "
                  f"({report['det_csv_mb']} MB); same mAP from files: {report['csv_mAP_equal']}", file=sys.stderr)

    rv = min(args.ref_videos, args.videos)
    gs, ds = subset(gt, rv), subset(det, rv)
    excl_s = {e for e in excl if e[0] in gt.videos[:rv]}
    ref, t_ref = timed("reference_subset", frame_map_reference, gs, ds, classes, excl_s)
    fast_s, t_fast_s = timed("frame_map_subset", frame_map, gs, ds, classes, excl_s)
    diff = max([abs(ref["mAP"] - fast_s["mAP"])] + [abs(a - b) for a, b in zip(ref["per_class"].values(), fast_s["per_class"].values()) if a is not None])
    ratio = t_ref / t_fast_s
    t_ref_full = t_ref * len(det) / max(len(ds), 1)
    report.update(ref_videos=rv, ref_det_rows=len(ds), ref_seconds=round(t_ref, 2), fast_subset_seconds=round(t_fast_s, 3),
                  speed_ratio_subset=round(ratio, 1), ref_full_seconds_extrapolated=round(t_ref_full, 1),
                  speed_ratio_full_extrapolated=round(t_ref_full / t_fast, 1), max_abs_diff_vs_reference=diff)
    print(f"reference on {rv} videos ({len(ds):,} rows): {t_ref:.2f} s vs fast {t_fast_s:.3f} s -> x{ratio:.0f}; "
          f"max |diff| {diff:.2e}; reference at full scale (extrapolated linearly): ~{t_ref_full:.0f} s "
          f"-> x{t_ref_full / t_fast:.0f}", file=sys.stderr)
    report["wall_seconds_by_function"] = WALL
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
