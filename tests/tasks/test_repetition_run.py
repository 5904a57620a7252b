"""UCF-RC procedures end to end: the counting procedure with an oracle in place of the network, the model
scorer's inputs, a tiny run on the synthetic oscillation videos (CLI, results, re-test), exact resume, and
the input convention taken from the checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import severe.repetition.runner as runner
from severe.checkpoints.weights import SCRATCH_META, load_weights
from severe.data.transforms import Normalization
from severe.engine import load_checkpoint
from severe.errors import SevereError
from severe.repetition import cli as rc_cli
from severe.repetition.inference import (
    InferenceSettings,
    ModelScorer,
    StreamScores,
    count_repetitions,
    period_search,
)
from severe.repetition.inputs import InputBuilder, state_positions
from severe.repetition.targets import ANCHORS
from severe.synth.checkpoints import write_synthetic_checkpoint
from severe.tasks import lifecycle
from severe.tasks.repetition import normalization, prepare_videos
from tests.helpers import REPETITION_TINY as TINY
from tests.helpers import tiny_repetition_backbone, tiny_repetition_make_backbone, torchrun_two_processes

ANCHOR_ARRAY = np.asarray(ANCHORS)


def oracle(periods, calls=None):
    """A scorer that knows each video's true cycle length P: anchor a of a stream of current length c
    scores IoU(P, a c) and regresses log(P / (a c)) exactly, so the best anchor is the true period."""
    P = np.asarray(periods, dtype=np.float64)[:, None]

    def score(states: np.ndarray) -> StreamScores:
        if calls is not None:
            calls.append(states.copy())
        lp, mp, rp = states.T
        out = []
        for current in (mp - lp + 1, rp - mp):
            span = ANCHOR_ARRAY[None, :] * current[:, None]
            out += [np.minimum(P, span) / np.maximum(P, span), np.log(P / span)]
        return StreamScores(*out)

    return score


# ---------------------------------------------------------------------------------------- counting procedure

@pytest.mark.parametrize("period,count,extra", [
    (10, 5, 0), (10, 8, 0), (16, 4, 2), (16, 10, 0), (23, 6, 1), (33, 5, 0), (33, 12, 2), (40, 7, 0), (12, 6, 0),
])
def test_oracle_recovers_the_count(period, count, extra):
    calls: list = []
    length = period * count + extra
    (r,) = count_repetitions(oracle([period], calls), [length])
    assert r.count == count
    assert len(calls) == 30 + 4 + 2 * 4 + 4 * 2 + 8 + 16 == 74  # forward passes per video
    assert r.period + 1 in (period - 1, period) and r.valid_positions > 0  # cycle length = period + 1


def test_oracle_over_many_periods_is_within_one():
    pred, gt = [], []
    for period in range(6, 41, 3):
        for count in (3, 5, 8, 12, 20):
            length = period * count
            if 30 <= length <= 600:
                pred.append(count_repetitions(oracle([period]), [length])[0].count)
                gt.append(count)
    err = np.abs(np.asarray(pred) - np.asarray(gt))
    assert len(gt) > 40 and err.max() <= 1 and (err == 0).mean() >= 0.9


def test_batched_videos_match_single_runs_and_the_fallback():
    periods, lengths = [10, 25, 8, 20], [80, 150, 40, 50]
    batch = count_repetitions(oracle(periods), lengths)
    singles = [count_repetitions(oracle([p]), [n])[0] for p, n in zip(periods, lengths)]
    assert batch == singles
    # 50 frames of period 20: no final position has its 4-cycle context inside -> L / (period + 1)
    assert batch[3].fallback and batch[3].count == round(50 / (batch[3].period + 1))
    # the period search returns the cycle length - 1 (the original's half-length convention)
    assert period_search(oracle([12]), np.array([120.0]), InferenceSettings())[0] in (10, 11)


def test_no_valid_period_gives_the_original_fallback():
    # box 0 everywhere: on 10 frames every candidate half-length is < 4, so no period is found (0) and no
    # final position has its context inside the segment: count = round(L / (0 + 1)), as the original did
    flat = lambda s: StreamScores(*(np.zeros((len(s), 7)),) * 4)  # noqa: E731
    (r,) = count_repetitions(flat, [10])
    assert (r.period, r.valid_positions, r.count) == (0, 0, 10) and r.fallback


def _noisy(period):
    """A deterministic imperfect scorer: the oracle plus noise drawn from the state itself."""
    exact = oracle([period])

    def score(states: np.ndarray) -> StreamScores:
        base = exact(states)
        out = []
        for k, arr in enumerate((base.prob1, base.box1, base.prob2, base.box2)):
            noisy = arr.copy()
            for b, st in enumerate(states):
                g = np.random.default_rng([k, *np.round(np.abs(st) * 1000).astype(np.int64).tolist()])
                noisy[b] += g.normal(0, 0.3, arr.shape[1])
            out.append(noisy)
        return StreamScores(*out)

    return score


def _reference_count(score, L: int) -> tuple[int, int, int, float]:
    """The counting procedure written out scalar-wise, one video, loop by loop (independent of the
    vectorised implementation): period search, hierarchy with the original's propagation rules, count."""
    anchors, w, cap = list(ANCHORS), 0.5, L / 2

    def one(state):
        out = score(np.array([state], dtype=np.float64))
        return out.prob1[0], out.box1[0], out.prob2[0], out.box2[0]

    best, period = -1e6, 0
    for k in range(30):
        half = L * 0.03 * (0.35 / 0.03) ** (k / 29)
        p1, b1, _, _ = one((L / 2 - half, L / 2, L / 2 + half + 1))
        cand = half * np.exp(min(max(b1[3], -0.5), 0.5))
        if p1[3] > best and 4 <= cand < cap:
            best, period = p1[3], int(cand)
    for _ in range(4):
        p1, b1, _, _ = one((L / 2 - period, L / 2, L / 2 + period + 1))
        cand = period * np.exp(min(max(b1[3], -0.5), 0.5))
        if 4 <= cand < cap:
            period = round(period * 0.5 + cand * 0.5)
    mp = [[0] * 32 for _ in range(5)]
    lpl, lpr, rpl, rpr = ([[0] * 32 for _ in range(5)] for _ in range(4))
    for i in range(32):
        mp[0][i] = int(L / 33 * (i + 0.5))
        lpl[0][i] = lpr[0][i] = mp[0][i] - period
        rpl[0][i] = rpr[0][i] = mp[0][i] + period + 1
    for l1 in range(1, 5):
        steps = 2 ** (4 - l1)
        pos = -steps
        for l2 in range(2 ** l1):
            pos += 2 * steps
            for l3 in range({1: 4, 2: 2}.get(l1, 1)):
                if l3 == 0:
                    lm, ll, lr = mp[l1 - 1][pos], round((lpl[l1 - 1][pos] + lpr[l1 - 1][pos]) / 2), round((rpl[l1 - 1][pos] + rpr[l1 - 1][pos]) / 2)
                else:
                    lm, ll, lr = sm, round(sl * w + ll * (1 - w)), round(sr * w + lr * (1 - w))
                p1, b1, p2, b2 = one((ll, lm, lr))
                k1, k2 = int(np.argmax(p1)), int(np.argmax(p2))
                s1 = min(max(4, (lm - ll + 1) * anchors[k1] * np.exp(min(max(b1[k1], -0.5), 0.5))), cap)
                s2 = min(max(4, (lr - lm) * anchors[k2] * np.exp(min(max(b2[k2], -0.5), 0.5))), cap)
                sm, sl, sr = lm, int(lm - s1 + 1), int(lm + s2)
                if sm - sl + 1 < 4 or sr - sm < 4:
                    sl, sr = ll, lr
            lseg, rseg = sl * w + ll * (1 - w), sr * w + lr * (1 - w)
            for s in range(-steps, 0):
                q = pos + s
                mp[l1][q] = mp[l1 - 1][q]
                lpr[l1][q] = int(mp[l1 - 1][q] + (lseg - mp[l1 - 1][pos]))
                rpr[l1][q] = int(mp[l1 - 1][q] + (rseg - mp[l1 - 1][pos]))
                if l1 <= 2 or l1 == 4 or l2 == 0:
                    lpl[l1][q], rpl[l1][q] = lpr[l1][q], rpr[l1][q]
                else:
                    lpl[l1][q], rpl[l1][q] = lpl[l1 - 1][q], rpl[l1 - 1][q]
            for s in range(steps):
                q = pos + s
                mp[l1][q] = mp[l1 - 1][q]
                lpl[l1][q] = int(mp[l1 - 1][q] + (lseg - mp[l1 - 1][pos]))
                rpl[l1][q] = int(mp[l1 - 1][q] + (rseg - mp[l1 - 1][pos]))
                if l1 <= 2 or l1 == 4 or l2 == 2 ** l1 - 1:
                    lpr[l1][q], rpr[l1][q] = lpl[l1][q], rpl[l1][q]
                else:
                    lpr[l1][q], rpr[l1][q] = lpr[l1 - 1][q], rpr[l1 - 1][q]
    rates = []
    for k in range(32):
        lp, rp, m = round((lpl[4][k] + lpr[4][k]) / 2), round((rpl[4][k] + rpr[4][k]) / 2), mp[4][k]
        if int(lp - (m - lp + 1)) >= 0 and int(rp + (rp - m)) < L:
            rates.append(0.5 / (m - lp + 1) + 0.5 / (rp - m))
    rate = sum(rates) / len(rates) if rates else 1 / (period + 1)
    return round(L * rate), period, len(rates), rate


@pytest.mark.parametrize("period,length", [(9, 61), (14, 140), (21, 170), (30, 333), (12, 47), (7, 90), (18, 260), (5, 400), (6, 520)])
def test_vectorised_procedure_equals_a_scalar_transcription(period, length):
    score = _noisy(period)
    r = count_repetitions(score, [length])[0]
    count, found, valid, rate = _reference_count(score, length)
    assert (r.count, r.period, r.valid_positions) == (count, found, valid) and r.rate == pytest.approx(rate, rel=1e-12)


class _PositionReader(nn.Module):
    """A 'network' that records the decoded frame positions of its input and returns neutral scores."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[np.ndarray] = []

    def forward(self, x):
        self.seen.append(np.rint(x[:, 0, :, 0, 0].numpy() * 255).astype(int))
        B = x.shape[0]
        return torch.zeros(B, 2, 7), torch.zeros(B, 7), torch.zeros(B, 2, 7), torch.zeros(B, 7)


def test_model_scorer_feeds_the_state_frames():
    seg = torch.arange(60, dtype=torch.uint8).view(60, 1, 1, 1).expand(60, 3, 2, 2).contiguous()
    net = _PositionReader()
    scorer = ModelScorer(net, InputBuilder(Normalization(None, None, "RGB"), 16), [seg, seg[:40]], torch.device("cpu"))
    states = np.array([[10.0, 19.0, 29.0], [2.0, 5.0, 9.0]])
    out = scorer(states)
    assert out.prob1.shape == (2, 7) and np.allclose(out.prob1, 0.5)
    for row, state in zip(net.seen[0], states):
        expected = [p if p >= 0 else 124 for p in state_positions(*state, 16)]  # 124 = round(0.485 * 255): the mean
        assert row.tolist() == expected


# ---------------------------------------------------------------------------------------- runs

@pytest.fixture
def data_root(synthetic_root) -> Path:
    return synthetic_root


@pytest.fixture
def tiny_trunk(monkeypatch):
    monkeypatch.setattr(lifecycle, "make_backbone", tiny_repetition_make_backbone)


def test_tiny_run_writes_results_and_retests(data_root, tmp_path, tiny_trunk, capsys):
    out = tmp_path / "run"
    assert rc_cli.train_main(["ucfrep", "--init", "scratch", "--data-root", str(data_root), "--out", str(out),
                       "--no-progress", *TINY]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    res = json.loads((out / "results.json").read_text())
    assert (res["task"], res["dataset"], res["factor"]) == ("repetition_counting", "ucfrep", "task")
    assert res["init_method"] == "scratch" and res["mode"] == "finetune"
    assert res["primary"] == {"metric": "mae", "value": round(res["metrics"]["mae"], 6), "higher_is_better": False}
    assert printed["mae"] == res["metrics"]["mae"] and 0 <= res["metrics"]["obo"] <= 1
    assert res["metrics"]["num_videos"] == 6 and res["data"]["train"]["videos"] == 9
    assert any("last epoch" in d for d in res["deviations"])
    with open(out / "test_predictions.csv") as f:
        rows = list(csv.DictReader(f))
    pred = np.array([int(r["pred_count"]) for r in rows])
    gt = np.array([int(r["gt_count"]) for r in rows])
    assert len(rows) == 6 and res["metrics"]["mae"] == pytest.approx(np.mean(np.abs(pred - gt) / gt))
    items = (out / "train_items.csv").read_text().splitlines()
    assert len(items) == 1 + 9 and items[0].startswith("video,begin_frame,end_frame,count")
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if r["event"] == "epoch"] == [0, 1]
    assert {"checkpoint_last.pt", "checkpoint_e000.pt", "checkpoint_e001.pt"} <= {p.name for p in out.iterdir()}
    # test-only mode on the run directory: the same counts
    assert rc_cli.test_main([str(out), "--data-root", str(data_root), "--no-progress"]) == 0
    again = json.loads((out / "retest.json").read_text())
    assert again["metrics"] == res["metrics"]
    with pytest.raises(SevereError, match="finished run"):
        rc_cli.train_main(["ucfrep", "--init", "scratch", "--data-root", str(data_root), "--out", str(out), *TINY])


def test_resume_ends_with_the_same_weights(data_root, tmp_path, tiny_trunk):
    over = [*TINY, "TEST.NUM_SCALES", "2", "TEST.REFINE_ITERS", "0"]
    full = tmp_path / "full"
    runner.run(runner.plan_run("ucfrep", "scratch", None, over), data_root, full, progress=False)
    part = tmp_path / "part"
    assert runner.run(runner.plan_run("ucfrep", "scratch", None, over), data_root, part, progress=False,
                      stop_after_epoch=0) is None
    assert load_checkpoint(part / "checkpoint_last.pt")["epoch"] == 0
    with pytest.raises(SevereError, match="unfinished run"):
        runner.run(runner.plan_run("ucfrep", "scratch", None, over), data_root, part, progress=False)
    resumed = runner.run(runner.plan_run("ucfrep", "scratch", None, over), data_root, part, resume=True, progress=False)
    a, b = load_checkpoint(full / "checkpoint_last.pt"), load_checkpoint(part / "checkpoint_last.pt")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    full_res = json.loads((full / "results.json").read_text())
    assert resumed["metrics"] == full_res["metrics"]


def test_trainer_resume_checks_the_repetition_settings_and_stops_on_a_nonfinite_inner_step(data_root, tmp_path):
    from severe.io import sha256_file
    from severe.repetition.data import TrainSegments
    from severe.repetition.model import RepetitionCounter
    from severe.repetition.segments import draw_train_items, load_videos
    from severe.repetition.training import RepetitionTrainer, StateMachine

    folder = data_root / "ucfrep"
    train, _, _ = load_videos(folder, "train")
    ds = TrainSegments(folder, train, draw_train_items(train, 1, 30, seed=0), size=16, seed=0)

    def trainer(items_sha256="a", max_batches=2, lr=1e-4, inner=2):
        torch.manual_seed(0)
        return RepetitionTrainer(RepetitionCounter(tiny_repetition_backbone()), ds, run_dir=tmp_path / "run",
                                 builder=InputBuilder(Normalization(), 4), machine=StateMachine(max_inner_steps=inner),
                                 epochs=2, batch_size=3, lr=lr, weight_decay=0.0, seed=0, max_batches=max_batches,
                                 progress=False, console=False, items_sha256=items_sha256)

    first = trainer()
    assert first.fit(stop_after_epoch=0)[0]["iterations"] == 2  # 9 items in batches of 3, at most 2 batches
    ckpt = tmp_path / "run" / "checkpoint_last.pt"
    digest = sha256_file(ckpt)
    for kwargs, key in (({"items_sha256": "b"}, "items_sha256"), ({"max_batches": 3}, "max_batches"),
                        ({"lr": 1e-3}, "schedule"), ({"inner": 3}, "settings")):
        with pytest.raises(SevereError, match=f"cannot resume .*setting '{key}' was"):
            trainer(**kwargs).fit(resume=True)
    poisoned = trainer()
    forward = poisoned.net.forward
    calls = []

    def nan_on_the_second_step(x):  # the 2nd inner step of epoch 1's first batch
        calls.append(1)
        out = forward(x)
        return tuple(o * float("nan") for o in out) if len(calls) == 2 else out

    poisoned.net.forward = nan_on_the_second_step
    with pytest.raises(SevereError, match=r"non-finite loss at epoch 1 \(0-based\), iteration 0 of 2, optimiser step 1 "):
        poisoned.fit(resume=True)
    assert sha256_file(ckpt) == digest and load_checkpoint(ckpt)["epoch"] == 0


def test_tclr_convention_from_the_checkpoint(tmp_path):
    path = tmp_path / "tclr.pth"
    write_synthetic_checkpoint("tclr", path, dtype=torch.float16)
    norm = normalization(load_weights(path, method="tclr", trust=True).meta)
    assert norm == Normalization(None, None, "BGR")  # no normalisation, BGR: in training and testing alike
    assert normalization(dict(SCRATCH_META)) == Normalization()


def test_missing_frames_are_reported(data_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(data_root / "ucfrep", root / "ucfrep")
    victim = next((root / "ucfrep" / "imgs" / "val").glob("*/*"))
    shutil.rmtree(victim)
    with pytest.raises(SevereError, match="frames of 1 of 6 videos are missing"):
        prepare_videos(root, "test", allow_missing=False, run_dir=None)
    kept = prepare_videos(root, "test", allow_missing=True, run_dir=tmp_path)
    assert len(kept.videos) == 5 and (tmp_path / "test_missing.txt").read_text().strip().endswith(victim.name)


DDP_WORKER = """
from pathlib import Path
import severe.repetition.runner as runner
from tests.helpers import REPETITION_TINY as TINY, tiny_repetition_make_backbone
from severe.engine import cleanup_distributed, init_distributed
from severe.tasks import lifecycle

lifecycle.make_backbone = tiny_repetition_make_backbone
assert init_distributed("cpu").world_size == 2
over = [*TINY, "TRAIN.BATCH_SIZE", "4", "TEST.BATCH_SIZE", "2"]
runner.run(runner.plan_run("ucfrep", "scratch", None, over), Path({data!r}), Path({run!r}), progress=False)
cleanup_distributed()
"""


@pytest.mark.slow
def test_two_processes_train_and_count_like_one(data_root, tmp_path, tiny_trunk):
    run = tmp_path / "run"
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER.format(data=str(data_root), run=str(run)))
    torchrun_two_processes(script, timeout=300)
    ckpt = load_checkpoint(run / "checkpoint_last.pt")
    assert ckpt["setup"]["world_size"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])
    # 9 items in batches of 4: the last batch (1 item) cannot be shared by 2 processes and is dropped
    assert [r["samples"] for r in ckpt["history"]] == [8, 8]
    # the sharded count over 2 processes equals a single-process re-test of the same weights
    single = runner.retest_run(run, data_root, progress=False)
    assert single["metrics"] == json.loads((run / "results.json").read_text())["metrics"]


def test_undecodable_frames_are_never_replaced_silently(data_root, tmp_path):
    import shutil

    from severe.repetition.data import TestSegments, TrainSegments
    from severe.repetition.segments import draw_train_items, load_videos

    root = tmp_path / "data"
    shutil.copytree(data_root / "ucfrep", root / "ucfrep")
    folder = root / "ucfrep"
    train, _, _ = load_videos(folder, "train")
    items = draw_train_items(train, 1, 300, seed=1)
    bad = train[0]
    (folder / bad.key / f"image_{bad.start_frame + 1:05d}.jpg").write_bytes(b"not a jpeg")
    ds = TrainSegments(folder, train, items, size=16, seed=1)
    item = ds[0]  # item 0 belongs to the damaged video: another video's item is returned, and reported
    assert item["failed"] == [bad.key] and items[item["index"]].video_index != 0
    assert item["frames"].shape == (items[item["index"]].length, 3, 16, 16) and len(item["pre"]) == item["frames"].shape[0]
    assert ds[1]["failed"] == []
    test, _, _ = load_videos(folder, "test")
    v = test[0]
    (folder / v.key / f"image_{v.end_frame:05d}.jpg").write_bytes(b"")
    with pytest.raises(SevereError, match="cannot decode test video .* the test split must be complete"):
        TestSegments(folder, test, size=16)[0]
