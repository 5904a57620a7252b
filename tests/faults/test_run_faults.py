"""Fault injection through the ``severe`` command: every fault gives exit status 2 (130 for Ctrl-C), one line
on stderr naming the path or key and what to do, no traceback, and nothing written earlier is lost.

Write faults: a path under a regular file is real; read-only, full and permission-denied locations are
injected at the io layer (``severe.io``'s temp file creation and fsync: the code that maps them), and, when
this machine lets the tests mount a tmpfs (root), also on a real full and a real read-only file system.
One tiny recognition run (interrupted after its first epoch, then resumed) serves the resume, short-video,
umask and re-test checks; its backbone is a one-conv stand-in (tests.helpers) so the module stays fast.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from severe import cli
from severe.synth.checkpoints import write_synthetic_checkpoint
from severe.synth.videos import write_video
from tests.helpers import RECOGNITION_TINY, tiny_repetition_make_backbone

TINY = RECOGNITION_TINY[2:]  # without TRAIN.EPOCHS (given per command: a key twice is an error)
RUN = ["run", "recognition", "domain/ucf101", "--init", "scratch", "--no-progress"]


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """Run ``severe ARGS`` in-process: (exit status, stderr), checking stderr holds no traceback."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def error_line(err: str) -> str:
    """The one error line of stderr (log lines may precede it)."""
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


def split_keys(root: Path, name: str) -> list[str]:
    return [line.split()[0] for line in (root / "ucf101" / "ucfTrainTestlist" / name).read_text().splitlines()
            if line.strip()]


# ------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", autouse=True)
def tiny_backbone():
    """Every run of this module builds the one-conv stand-in instead of R(2+1)D-18 (the faults are the point)."""
    from _pytest.monkeypatch import MonkeyPatch

    from severe.tasks import lifecycle

    with MonkeyPatch.context() as mp:
        mp.setattr(lifecycle, "make_backbone", tiny_repetition_make_backbone)
        yield


@pytest.fixture(scope="module")
def data(synthetic_root, tmp_path_factory) -> Path:
    """UCF101 with a 1-frame training video and a truncated test video (header 32 frames, fewer decode)."""
    root = tmp_path_factory.mktemp("faults") / "data"
    shutil.copytree(synthetic_root / "ucf101", root / "ucf101")
    videos = root / "ucf101" / "UCF-101"
    one = videos / split_keys(root, "trainlist01.txt")[0]
    write_video(one, np.full((1, 32, 42, 3), 128, np.uint8), 25.0)
    cut = videos / split_keys(root, "testlist01.txt")[0]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 3])
    return root


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    """A 2-epoch run interrupted (Ctrl-C) after epoch 1 with a stale temp file of ours, then resumed; the data
    root comes from $SEVERE_DATA (so only the run directory's data_root.txt records it)."""
    from _pytest.monkeypatch import MonkeyPatch

    import severe.engine.trainer as trainer

    run_dir = tmp_path_factory.mktemp("faults_run") / "run"
    args = [*RUN, "--out", str(run_dir), *TINY, "TRAIN.EPOCHS", "2",
            "TRAIN.WEIGHT_DECAY", "0"]  # an integer where the schema has a float
    real = trainer.save_checkpoint

    def save_then_interrupt(path, payload):
        real(path, payload)
        (Path(path).parent / ".checkpoint_last.pt.abcd1234.tmp").write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    umask = os.umask(0o027)  # the run's files must follow it
    with MonkeyPatch.context() as mp:
        mp.setenv("SEVERE_DATA", str(data))
        mp.setattr(trainer, "save_checkpoint", save_then_interrupt)
        assert cli.main(args) == 130
        assert (run_dir / "checkpoint_last.pt").is_file() and not (run_dir / "results.json").exists()
        mp.undo()
        mp.setenv("SEVERE_DATA", str(data))
        (run_dir / "keep.tmp").write_text("not ours")
        try:
            assert cli.main([*args, "--resume"]) == 0
        finally:
            os.umask(umask)
    return run_dir


# ------------------------------------------------------------------------------------------- config values

@pytest.mark.parametrize("key,value,words", [
    ("TRAIN.LR", "-0.1", "TRAIN.LR must be > 0"),
    ("TRAIN.LR", "0", "TRAIN.LR must be > 0"),  # an integer is read as a float, then out of range
    ("TRAIN.WEIGHT_DECAY", "-1", "TRAIN.WEIGHT_DECAY must be >= 0"),
    ("TRAIN.EPOCHS", "0", "TRAIN.EPOCHS must be >= 1"),
    ("TRAIN.BATCH_SIZE", "0", "TRAIN.BATCH_SIZE must be >= 1"),
    ("TRAIN.MILESTONES", "[3, 3]", "TRAIN.MILESTONES must be strictly increasing"),
    ("DATA.VAL_FRACTION", "1.5", "DATA.VAL_FRACTION must be in [0, 1]"),
    ("TRAIN.MOMENTUM", "2", "TRAIN.MOMENTUM must be in [0, 1]"),
])
def test_bad_values_fail_before_anything_is_created(capsys, tmp_path, key, value, words):
    out = tmp_path / "run"
    code, err = run_cli(capsys, *RUN, "--data-root", tmp_path, "--out", out, key, value)
    assert code == 2 and words in error_line(err) and not out.exists()


def test_slowfast_names_are_range_checked_too(capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(capsys, "run", "ava", "AVA/TINY_SYNTHETIC", "--init", "scratch", "--data-root", tmp_path,
                       "--out", out, "SOLVER.BASE_LR", "-1")
    assert code == 2 and "TRAIN.LR (SOLVER.BASE_LR) must be > 0" in error_line(err) and not out.exists()


def test_duplicate_and_odd_overrides(capsys, tmp_path):
    out = tmp_path / "run"
    base = [*RUN, "--data-root", tmp_path, "--out", out]
    code, err = run_cli(capsys, *base, "TRAIN.EPOCHS", "1", "TRAIN.EPOCHS", "2")
    assert code == 2 and "TRAIN.EPOCHS is given twice (1 and 2)" in error_line(err)
    code, err = run_cli(capsys, *base, "RUN.OUT_DIR", tmp_path / "other")
    assert code == 2 and "RUN.OUT_DIR is given twice (--out" in error_line(err)
    code, err = run_cli(capsys, "run", "ava", "AVA/TINY_SYNTHETIC", "--init", "scratch", "--out", out,
                       "SOLVER.MAX_EPOCH", "1", "TRAIN.EPOCHS", "2")
    assert code == 2 and "TRAIN.EPOCHS" in error_line(err)
    code, err = run_cli(capsys, *base, "TRAIN.EPOCHS", "1", "SEED")
    line = error_line(err)
    assert code == 2 and line.endswith("odd number of arguments: TRAIN.EPOCHS 1 SEED")
    assert "RUN." not in line and not out.exists()


# ------------------------------------------------------------------------------------------- write failures

def test_output_under_a_regular_file_in_every_command(capsys, tmp_path, synthetic_checkpoint, synthetic_root):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file")
    target = blocker / "sub"
    source = synthetic_checkpoint("moco")
    commands = [
        ["convert", "--method", "moco", source, target / "moco_r21d.pth"],
        ["synth", "--out", target, "--size", "tiny", "--datasets", "ucf101"],
        ["demo", "--out", target, "--quick", "--no-progress"],
        [*RUN, "--data-root", synthetic_root, "--out", target, *TINY, "TRAIN.EPOCHS", "1"],
    ]
    for args in commands:
        code, err = run_cli(capsys, *args)
        line = error_line(err)
        assert code == 2 and "not a folder" in line and str(blocker) in line, args
    assert blocker.read_text() == "a regular file"


def _refuse(monkeypatch, code: int, where: str) -> None:
    """Make the io layer's temp files (``where="create"``) or their fsync (``"flush"``) fail with ``code``."""
    import severe.io as io

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io.tempfile, "mkstemp", fail) if where == "create" else monkeypatch.setattr(io.os, "fsync", fail)


@pytest.mark.parametrize("code,where,words", [
    (errno.EROFS, "create", "read-only file system"),
    (errno.ENOSPC, "flush", "no space left on device"),
    (errno.EACCES, "create", "permission denied"),
])
def test_refused_writes_in_every_command(capsys, tmp_path, monkeypatch, synthetic_checkpoint, synthetic_root,
                                         code, where, words):
    source = synthetic_checkpoint("moco")
    _refuse(monkeypatch, code, where)
    commands = [
        (["convert", "--method", "moco", source, tmp_path / "c" / "moco_r21d.pth"], tmp_path / "c"),
        (["synth", "--out", tmp_path / "s", "--size", "tiny", "--datasets", "ucf101"], tmp_path / "s"),
        (["demo", "--out", tmp_path / "d", "--quick", "--no-progress"], tmp_path / "d"),
        ([*RUN, "--data-root", synthetic_root, "--out", tmp_path / "r", *TINY, "TRAIN.EPOCHS", "1"], tmp_path / "r"),
    ]
    for args, folder in commands:
        status, err = run_cli(capsys, *args)
        line = error_line(err)
        assert status == 2 and words in line and str(folder) in line, args
        assert not [p for p in folder.rglob("*") if p.is_file()], args  # checked before any work: nothing written


def test_torch_writer_failure_leaves_nothing(tmp_path, monkeypatch):
    """torch's zip writer reports a failed write as ``RuntimeError: [enforce fail at inline_container.cc]``."""
    from severe.errors import WriteError
    from severe.io import atomic_torch_save

    def broken_save(obj, f):
        f.write(b"PK\x03\x04 half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(WriteError, match=f"cannot write {tmp_path / 'w.pth'}"):
        atomic_torch_save({"x": 1}, tmp_path / "w.pth")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs (skipped where the tests may not mount one); yields (folder, remount-read-only)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, capture_output=True)

    try:
        yield mnt, read_only
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_real_full_and_read_only_file_systems(capsys, tmpfs, synthetic_checkpoint):
    mnt, read_only = tmpfs
    (mnt / "earlier.txt").write_text("kept")
    code, err = run_cli(capsys, "convert", "--method", "moco", synthetic_checkpoint("moco"), mnt / "moco_r21d.pth")
    assert code == 2 and "no space left on device" in error_line(err) and str(mnt / "moco_r21d.pth") in err
    assert sorted(p.name for p in mnt.iterdir()) == ["earlier.txt"]  # no partial file, no temp file
    read_only()
    code, err = run_cli(capsys, "synth", "--out", mnt / "data", "--size", "tiny", "--datasets", "ucf101")
    assert code == 2 and "read-only file system" in error_line(err) and str(mnt / "data") in err
    assert (mnt / "earlier.txt").read_text() == "kept"


def test_written_files_honour_the_umask(capsys, tmp_path, synthetic_checkpoint, trained):
    old = os.umask(0o002)
    try:
        assert run_cli(capsys, "convert", "--method", "moco", synthetic_checkpoint("moco"), tmp_path / "b.pth")[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "b.pth").stat().st_mode & 0o777 == 0o664
    for name in ("results.json", "config.yaml", "init.json", "checkpoint_last.pt"):  # written under umask 027
        assert (trained / name).stat().st_mode & 0o777 == 0o640, name


# ------------------------------------------------------------------------------------------- checkpoints

def test_checkpoint_refusals_name_the_object_and_trust(capsys, tmp_path):
    pickled = tmp_path / "callable.pth"
    torch.save({"state_dict": {}, "hook": print}, pickled)
    code, err = run_cli(capsys, "convert", "--method", "moco", pickled, tmp_path / "o.pth")
    line = error_line(err)
    assert code == 2 and "object of type print" in line and "--trust" in line and "Weights only load failed" not in line
    text = tmp_path / "notes.pth"
    text.write_text("hello, these are my notes")
    code, err = run_cli(capsys, "convert", "--method", "moco", text, tmp_path / "o.pth")
    assert code == 2 and f"{text} is not a PyTorch checkpoint (starts with b'hello, t'" in error_line(err)
    assert not (tmp_path / "o.pth").exists()


# ------------------------------------------------------------------------------------------- data messages

def test_missing_video_names_the_key(capsys, tmp_path, synthetic_root):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "ucf101", root / "ucf101")
    (root / "ucf101" / "UCF-101" / split_keys(root, "testlist01.txt")[1]).unlink()
    code, err = run_cli(capsys, *RUN, "--data-root", root, "--out", tmp_path / "r", *TINY, "TRAIN.EPOCHS", "1")
    line = error_line(err)
    assert code == 2 and "DATA.ALLOW_MISSING True" in line and "--allow-missing" not in line


def test_cpu_memory_is_checked_before_training(capsys, tmp_path, synthetic_root, monkeypatch):
    import severe.engine.memory as memory

    monkeypatch.setattr(memory, "available_ram", lambda: 3 * 2**30)  # 3 GiB; R(2+1)D-18 32x112x112 needs ~1.4 each
    out = tmp_path / "run"
    code, err = run_cli(capsys, *RUN, "--data-root", synthetic_root, "--out", out, "DATA.NUM_WORKERS", "0")
    line = error_line(err)
    assert code == 2 and "TRAIN.BATCH_SIZE 32 of 32x112x112 clips needs about" in line
    assert "the largest batch that fits is 2" in line and not out.exists()


# ------------------------------------------------------------------------------------------- a run and its re-tests

def test_resume_removes_our_stale_temp_files(trained):
    assert (trained / "results.json").is_file()
    assert not list(trained.glob(".checkpoint_last.pt.*.tmp")) and (trained / "keep.tmp").read_text() == "not ours"
    record = json.loads((trained / "results.json").read_text())
    assert record["config"]["TRAIN"]["WEIGHT_DECAY"] == 0.0


def test_short_and_truncated_videos_are_counted(trained, data):
    short = json.loads((trained / "results.json").read_text())["data"]["short_videos"]
    one = split_keys(data, "trainlist01.txt")[0]
    cut = split_keys(data, "testlist01.txt")[0]
    assert short["train"]["one_frame"] == 1 and short["train"]["examples"]["one_frame"][0].endswith(one)
    assert "single frame repeated" in short["train"]["padding"]["one_frame"]
    assert short["test"]["truncated"] == 1 and short["test"]["examples"]["truncated"][0].endswith(cut)
    assert "decodable frames" in short["test"]["padding"]["truncated"]


def test_run_test_takes_test_time_overrides_and_the_recorded_data_root(capsys, trained, data, tmp_path, monkeypatch):
    results = (trained / "results.json").read_bytes()
    monkeypatch.delenv("SEVERE_DATA", raising=False)
    assert (trained / "data_root.txt").read_text().strip() == str(data.resolve())
    code, err = run_cli(capsys, "run", "test", trained, "--no-progress")  # the recorded data root
    assert code == 0 and (trained / "retest.json").is_file()

    code, err = run_cli(capsys, "run", "test", trained, "TRAIN.LR", "0.1")
    assert code == 2 and "TRAIN.LR is a training setting" in error_line(err)

    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    (bad / "ucf101" / "UCF-101" / split_keys(bad, "testlist01.txt")[2]).write_bytes(b"not a video at all")
    (trained / "retest.json").unlink()
    code, err = run_cli(capsys, "run", "test", trained, "--data-root", bad, "--no-progress")
    assert code == 2 and "DATA.ALLOW_TEST_FAILURES True" in error_line(err)
    assert not (trained / "retest.json").exists()
    code, err = run_cli(capsys, "run", "test", trained, "--data-root", bad, "--no-progress",
                       "DATA.ALLOW_TEST_FAILURES", "True")
    assert code == 0 and json.loads((trained / "retest.json").read_text())["data"]["test_failures"] == 1
    assert (trained / "results.json").read_bytes() == results  # nothing earlier lost


def test_run_test_checks_the_folder_before_evaluating(capsys, trained, monkeypatch):
    from severe.tasks.recognition import RecognitionTask

    def never(*args, **kwargs):
        raise AssertionError("evaluated before checking the output folder")

    monkeypatch.setattr(RecognitionTask, "evaluate", never)
    _refuse(monkeypatch, errno.EROFS, "create")
    code, err = run_cli(capsys, "run", "test", trained, "--no-progress")
    assert code == 2 and f"cannot write {trained}: read-only file system" in error_line(err)


def test_a_foreign_training_checkpoint_is_refused_in_one_line(capsys, trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    torch.save({"format": "severe-train-checkpoint/1", "epoch": 1, "hook": print}, copy / "checkpoint_last.pt")
    code, err = run_cli(capsys, "run", "test", copy, "--no-progress")
    line = error_line(err)
    assert code == 2 and "contains a pickled Python object of type print" in line and "Weights only" not in line
