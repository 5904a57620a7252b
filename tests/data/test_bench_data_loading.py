"""Smoke test of benchmarks/bench_data_loading.py: every row is measured and --plot writes a PNG."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_data_loading

    return bench_data_loading


def test_bench_runs_all_rows_and_plots(bench, tmp_path, capsys):
    import os

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    png = tmp_path / "speed.png"
    assert bench.main(["--videos", "2", "--frame-videos", "1", "--clips", "2", "--rounds", "2",
                       "--worker-clips", "0", "--dir", str(tmp_path / "media"), "--plot", str(png), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("decode_limit", "ours", "original", "dense_test", "frame_folders"):
        assert res["single_core"][key]["clips"] > 0 and res["single_core"][key]["clips_per_cpu_s"] > 0, key
    assert res["single_core"]["dense_test"]["clips"] == 20  # 10 clips per video
    assert res["opencv_frames_equal_pyav"] is True
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity  # the pin to one core is undone
    sys.modules.pop("original_pipeline", None)
