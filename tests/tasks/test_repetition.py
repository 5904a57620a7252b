"""UCF-RC pieces on hand-made cases: metrics, annotations, sub-segments and the count after the cap,
anchor targets and loss, network inputs, the model heads, the training state machine, configs."""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from severe.config import load_config
from severe.data.readers.ucfrep import UcfRepAnnotation, read_repetition_labels
from severe.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalization
from severe.errors import SevereError
from severe.metrics.repetition import repetition_errors, repetition_summary
from severe.models import build_backbone
from severe.repetition.config import repetition_defaults, validate
from severe.repetition.inputs import InputBuilder, letterbox, pad_value, state_positions
from severe.repetition.model import RepetitionCounter
from severe.repetition.runner import CONFIG_DIR
from severe.repetition.segments import (
    RepVideo,
    draw_video_items,
    load_videos,
    recount_after_cut,
)
from severe.repetition.targets import ANCHORS, label_at, repetition_loss, state_targets, stream_targets
from severe.repetition.training import (
    StateMachine,
    advance,
    best_action,
    draw_initial,
    epoch_batches,
    initial_state,
)
from severe.synth.annotations import write_ucfrep_mat


# ---------------------------------------------------------------------------------------- metrics

def test_metrics_by_hand():
    pred, gt = [3, 5, 10, 0], [4, 5, 8, 2]
    # normalised errors 1/4, 0, 2/8, 2/2; within one: yes, yes, no, no
    assert repetition_errors(pred, gt) == pytest.approx({"mae": 1.5 / 4, "obo": 0.5})
    s = repetition_summary(pred, gt)
    assert s["mae_std"] == pytest.approx(0.375)  # population std of [.25, 0, .25, 1]
    assert s["mae_over"] == pytest.approx(0.25) and s["mae_under"] == pytest.approx((0.25 + 1.0) / 2)
    assert (s["num_over"], s["num_under"], s["num_exact"], s["num_videos"]) == (1, 2, 1, 4)
    assert repetition_summary([2], [2])["mae_over"] is None


@pytest.mark.parametrize("pred,gt,words", [
    ([1, 2], [1, 0], "must be > 0"), ([1, 2], [1], "2 predictions for 1"), ([], [], "no videos"),
    ([float("nan")], [3], "non-finite"), ([1, 2], [-1, 2], "must be > 0"),
])
def test_metric_bad_input(pred, gt, words):
    with pytest.raises(SevereError, match=words):
        repetition_errors(pred, gt)


# ---------------------------------------------------------------------------------------- annotations

@pytest.fixture(scope="module")
def synth_root(synthetic_root) -> Path:
    return synthetic_root


def test_synthetic_annotations_parse(synth_root):
    folder = synth_root / "ucfrep"
    train, skipped, notes = load_videos(folder, "train")
    test, _, _ = load_videos(folder, "test")
    assert (len(train), len(test), skipped, notes) == (9, 6, [], [])
    labels = {}
    for f in (folder / "annotations" / "repetition_label").glob("*.txt"):
        labels.update(read_repetition_labels(f))
    for v in train + test:
        assert v.count == len(v.bounds) - 1 >= 2
        assert labels[v.video] == v.bounds  # the text labels agree with the .mat files
        assert (folder / v.key / "image_00001.jpg").is_file() and v.key.startswith(("imgs/train/", "imgs/val/"))
        assert len(v.offset_next) == len(v.offset_pre) == v.length
    # training estimates: the cycle containing a position (next: while it fits, previous: once it fits)
    v = train[0]
    b = v.bounds
    assert v.offset_next[0] == b[1] - b[0] - 1 and v.offset_pre[-1] == b[-1] - b[-2] - 1
    assert all((t.offset_next == -1).all() for t in test)  # val estimates are all -1, as in the original


def _mat(tmp_path: Path, name: str, bounds, start, end, duration=None, nxt=None, pre=None) -> Path:
    n = end - start + 1
    ann = UcfRepAnnotation(video=name, class_name=name.split("_")[1], duration=duration or n, start_frame=start,
                           end_frame=end, temporal_bound=tuple(bounds),
                           offset_next_estimate=np.full(n, 9) if nxt is None else np.asarray(nxt),
                           offset_pre_estimate=np.full(n, 9) if pre is None else np.asarray(pre))
    return write_ucfrep_mat(tmp_path / "annotations" / "train" / f"{name}.mat", ann)


def test_hand_made_mat_files(tmp_path):
    _mat(tmp_path, "v_JumpingJack_g01_c01", [3, 13, 23, 33], 3, 33, nxt=np.arange(31), pre=np.arange(31) - 1)
    _mat(tmp_path, "v_JumpingJack_g02_c01", [1, 11], 1, 11)  # count 1: skipped
    _mat(tmp_path, "v_JumpingJack_g03_c01", [1, 11, 21], 1, 21, duration=25)  # inconsistent duration: noted
    videos, skipped, notes = load_videos(tmp_path, "train")
    assert [v.video for v in videos] == ["v_JumpingJack_g01_c01", "v_JumpingJack_g03_c01"]
    assert skipped == ["v_JumpingJack_g02_c01"] and "duration 25 != end_frame - start_frame + 1 = 21" in notes[0]
    v = videos[0]
    assert (v.start_frame, v.end_frame, v.length, v.count, v.bounds) == (3, 33, 31, 3, (3, 13, 23, 33))
    assert v.key == "imgs/train/JumpingJack/v_JumpingJack_g01_c01"
    assert v.offset_next[5] == 5 and v.offset_pre[0] == -1


def test_short_estimates_are_an_error(tmp_path):
    _mat(tmp_path, "v_JumpingJack_g01_c01", [1, 11, 21], 1, 21, nxt=np.full(10, 9), pre=np.full(10, 9))
    with pytest.raises(SevereError, match="estimates cover 10 frames but the segment has 21"):
        load_videos(tmp_path, "train")


# ---------------------------------------------------------------------------------------- sub-segments

def _video(bounds, start=None, end=None) -> RepVideo:
    start = bounds[0] if start is None else start
    end = bounds[-1] if end is None else end
    n = end - start + 1
    return RepVideo("v_X_g01_c01", "imgs/train/X/v_X_g01_c01", start, end, tuple(bounds), np.full(n, 9), np.full(n, 9))


def test_recount_after_cut_by_hand():
    b = (1, 101, 201, 301, 401)
    # started inside cycle [1, 101] (i = 1); the cut end 199 lies in cycle [101, 201] -> e' = 2 -> count 1
    assert recount_after_cut(b, 1, 199) == 1
    assert recount_after_cut(b, 1, 250) == 2  # end inside [201, 301]
    assert recount_after_cut(b, 0, 201) == 2  # a frame on a boundary closes the cycle before it
    assert recount_after_cut(b, 2, 150) == 1  # never below one


def test_sub_segments_and_the_count_after_the_cap():
    b = (1, 101, 201, 301, 401, 501)
    video = _video(b)
    items = draw_video_items(video, 0, 300, 150, seed=5)
    assert items == draw_video_items(video, 0, 300, 150, seed=5)  # seeded
    assert items != draw_video_items(video, 0, 300, 150, seed=6)
    n = len(b)
    capped = [it for it in items if it.capped]
    assert 0 < len(capped) < len(items)
    for it in items:
        i, e = it.first_boundary, it.end_boundary
        assert 0 <= i <= n - 3 and i + 2 <= e <= n
        assert it.uncut_count == e - i  # the original's label
        assert video.start_frame <= it.begin <= it.end <= video.end_frame and it.length <= 150
        assert it.begin == 1 if i == 0 else b[i - 1] <= it.begin <= b[i]
        if it.capped:
            assert it.end == it.begin + 149
            assert it.count == max(bisect.bisect_left(b, it.end) - i, 1)
        else:
            assert it.count == it.uncut_count
            assert it.end == 501 if e == n else b[e - 1] <= it.end <= b[e]
    # the cut items really were inflated by the original's label
    assert any(it.uncut_count > it.count for it in capped)
    faithful = draw_video_items(video, 0, 300, 150, seed=5, correct_capped=False)
    assert [it.count for it in faithful] == [it.uncut_count for it in items]


# ---------------------------------------------------------------------------------------- targets

def test_anchor_targets_by_hand():
    cls, box, pos = stream_targets(9, 10.0)  # true length 10, current 10: spans 5, 6.7, 8, 10, 12.5, 15, 20
    assert cls.tolist() == [1, 1, 1, 1, 1, 1, 1]  # every IoU >= 0.5 (0.5 and 0.5 at both ends)
    np.testing.assert_allclose(box, [math.log(10 / 5), math.log(10 / 6.7), math.log(10 / 8), 0.0,
                                     math.log(10 / 12.5), math.log(10 / 15), math.log(10 / 20)], rtol=1e-6)
    cls, box, pos = stream_targets(9, 4.0)  # spans 2, 2.68, 3.2, 4, 5, 6, 8: IoU .2 .268 .32 .4 .5 .6 .8
    assert cls.tolist() == [0, 0, 0, 0, 1, 1, 1] and pos.tolist() == [False] * 4 + [True] * 3
    np.testing.assert_allclose(box, [0, 0, 0, 0, math.log(2), math.log(10 / 6), math.log(10 / 8)], rtol=1e-6)
    cls, box, pos = stream_targets(-1, 10.0)  # undefined estimate: whole stream ignored
    assert cls.tolist() == [-1] * 7 and not pos.any()
    assert label_at(np.arange(5), 5) == -1 and label_at(np.arange(5), -1) == -1 and label_at(np.arange(5), 4) == 4


def test_state_targets_use_previous_and_next_cycle():
    pre, nxt = np.full(30, -1), np.full(30, -1)
    pre[11], nxt[12] = 9, 4  # previous cycle 10 frames ending at 11; next cycle 5 frames from 12
    t = state_targets([(2, 11, 21), (2, 29, 35)], [pre, pre], [nxt, nxt])
    assert t.cls1[0].tolist() == [1] * 7  # stream 1: current 10 vs true 10
    assert t.cls2[0].tolist() == [1, 1, 1, 1, 0, 0, 0]  # stream 2: current 10 vs true 5: IoU 1 .75 .63 .5 .4 .33 .25
    assert t.cls1[1].tolist() == [-1] * 7 and t.cls2[1].tolist() == [-1] * 7  # pre[29] = -1; mp + 1 = 30 outside


def test_loss_by_hand():
    A = len(ANCHORS)
    t = state_targets([(0, 9, 19)], [np.full(20, 9)], [np.full(21, -1)])  # stream 1 all positive, stream 2 ignored
    cls1, cls2 = torch.zeros(1, 2, A, requires_grad=True), torch.zeros(1, 2, A, requires_grad=True)
    box1, box2 = torch.zeros(1, A, requires_grad=True), torch.full((1, A), 0.3, requires_grad=True)
    total, lc, lb = repetition_loss((cls1, box1, cls2, box2), t)
    targets = np.log(10.0 / (np.asarray(ANCHORS) * 10.0))
    smooth = np.where(np.abs(targets) < 1, 0.5 * targets ** 2, np.abs(targets) - 0.5)
    assert lc.item() == pytest.approx(math.log(2))  # stream 2 fully ignored: contributes 0, not NaN
    assert lb.item() == pytest.approx(50 * smooth.mean(), rel=1e-5)  # stream 2: no positive -> 0
    assert total.item() == pytest.approx(lc.item() + lb.item())
    total.backward()
    assert box2.grad.abs().sum() == 0 and cls2.grad.abs().sum() == 0


# ---------------------------------------------------------------------------------------- inputs

def test_state_positions_by_hand():
    # state (4, 7, 11): previous cycle 4 frames, next 4; halves [0, 7] and [8, 15], 4 frames each
    assert state_positions(4, 7, 11, 4) == [0, 2, 5, 7, 8, 10, 13, 15]
    # float state of the period search (L = 40, half-length 5): int() truncation, round half to even
    assert state_positions(15.0, 20.0, 26.0, 4) == [9, 12, 16, 20, 21, 24, 28, 32]
    assert state_positions(1, 3, 6, 4) == [-2, 0, 2, 3, 4, 6, 8, 9]  # context before the segment start


def test_input_builder_pads_with_the_normalised_mean():
    seg = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 2, 2).contiguous()
    raw = InputBuilder(Normalization(None, None, "RGB"), 4)
    x = raw.build(seg, (1, 3, 6))  # positions [-2, 0, 2, 3, 4, 6, 8, 9]
    assert x.shape == (3, 8, 2, 2)
    np.testing.assert_allclose(x[:, :, 1, 1].numpy(), [[0.485] + [p / 255 for p in (0, 2, 3, 4, 6, 8, 9)],
                                                       [0.456] + [p / 255 for p in (0, 2, 3, 4, 6, 8, 9)],
                                                       [0.406] + [p / 255 for p in (0, 2, 3, 4, 6, 8, 9)]], rtol=1e-6)
    imagenet = InputBuilder(Normalization(IMAGENET_MEAN, IMAGENET_STD, "RGB"), 4)
    assert torch.equal(imagenet.build(seg, (1, 3, 6))[:, :1], torch.zeros(3, 1, 2, 2))  # exactly 0 after ImageNet norm
    x_end = imagenet.build(seg, (14, 17, 19))  # right context runs past the end (L = 20)
    assert torch.equal(x_end[:, -1], torch.zeros(3, 2, 2))
    assert pad_value(Normalization(None, None, "BGR")).flatten().tolist() == pytest.approx([0.406, 0.456, 0.485])


def test_letterbox_keeps_the_aspect_and_pads_black():
    frames = torch.full((2, 3, 24, 32), 200, dtype=torch.uint8)  # 4:3 like UCF
    out = letterbox(frames, 16)
    assert out.shape == (2, 3, 16, 16)
    assert (out[:, :, 2:14] == 200).all() and (out[:, :, :2] == 0).all() and (out[:, :, 14:] == 0).all()


# ---------------------------------------------------------------------------------------- model

def test_model_heads_same_and_split_streams():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 16, 16)
    same = RepetitionCounter(build_backbone("r2plus1d_18"), 7, "same").eval()
    with torch.no_grad():
        same.cls_2.load_state_dict(same.cls_1.state_dict())
        c1, b1, c2, b2 = same(x)
    assert c1.shape == (2, 2, 7) and b1.shape == (2, 7) and torch.equal(c1, c2)  # one pooled vector for both
    split = RepetitionCounter(same.backbone, 7, "split").eval()
    split.load_state_dict(same.state_dict())
    with torch.no_grad():
        s1, _, s2, _ = split(x)
    assert not torch.allclose(s1, s2)  # left/right halves of layer4 (T' = 4) differ
    with pytest.raises(SevereError, match="even number >= 2 of layer4 time steps, got 1"):
        split(torch.randn(1, 3, 8, 16, 16))


# ---------------------------------------------------------------------------------------- state machine

def test_initial_states_are_valid_and_use_the_30_scale_grid():
    sm = StateMachine()
    rng = np.random.default_rng(0)
    for _ in range(300):
        lp, mp, rp = initial_state(rng, 9, 6, 60, sm)
        assert 0 <= lp <= mp and rp == mp + (mp - lp + 1) and 0 < rp < 60
        assert lp < 10  # inside the first cycle (GT period = next[0] = 9 frames here)


class _ScriptedRng:
    """random() from a script; integers(lo, hi) records its bounds and returns the largest allowed value."""

    def __init__(self, values):
        self.values, self.asked = list(values), []

    def random(self):
        return self.values.pop(0)

    def integers(self, lo, hi):
        self.asked.append((lo, hi))
        return hi - 1


def test_initial_state_branches_by_hand():
    sm = StateMachine()
    # GT period next[0] = 19: base 19, lp = int(0.5 * 19) = 9; p 0.25 branch: 19 * 2^0.5 = 26.9 -> rp = 9 + 25
    assert draw_initial(_ScriptedRng([0.5, 0.1, 0.75]), 19, 5, 100, sm) == (9, 34)
    # {0.5, 1, 2} x base branch: r = 1 (largest), 19 * (2 + (0.5 - 0.5) * 0.1) = 38 -> rp = 0 + 37; 2 * 37 + 1 < 100
    rng = _ScriptedRng([0.0, 0.9, 0.5])
    assert draw_initial(rng, 19, 5, 100, sm) == (0, 37) and rng.asked == [(-1, 2)]
    # scale branch: k from 0..29 (the original: 0..30); the largest is 0.35 L
    rng = _ScriptedRng([0.0, 0.5])
    assert draw_initial(rng, 19, 5, 1000, sm) == (0, 349) and rng.asked == [(0, 30)]
    # no estimate at the start: the period is L / count; a state past half the segment falls back to L/2 - 1
    assert draw_initial(_ScriptedRng([0.0, 0.9, 0.5]), -1, 2, 100, sm) == (0, 49)


def test_advance_and_best_action_by_hand():
    assert advance((0, 9, 19), 1.0, 1.0, 5, 100) == ((5, 14, 24), False, False)
    assert advance((0, 9, 19), 0.5, 2.0, 3, 100) == ((8, 12, 32), False, False)  # lengths 5 and 20
    assert advance((0, 9, 19), 0.2, 1.0, 3, 100)[2] is True  # previous cycle of 2 frames < 4: fail
    assert advance((80, 95, 110), 1.0, 1.0, 10, 100)[1] is True  # mp reaches the end: done
    prob = np.array([0.1, 0.9, 0.9, 0.2, 0, 0, 0])
    box = np.array([0, 3.0, 0, 0, 0, 0, 0])
    assert best_action(prob, box, ANCHORS, 2.0) == pytest.approx(0.67 * math.exp(2.0))  # first max, box clamped


def test_epoch_batches():
    b0 = epoch_batches(10, 4, seed=1, epoch=0, max_batches=100)
    assert [len(b) for b in b0] == [4, 4, 2] and sorted(np.concatenate(b0).tolist()) == list(range(10))
    assert all(np.array_equal(x, y) for x, y in zip(b0, epoch_batches(10, 4, 1, 0, 100)))
    assert not np.array_equal(np.concatenate(b0), np.concatenate(epoch_batches(10, 4, 1, 1, 100)))
    assert len(epoch_batches(10, 4, 1, 0, 2)) == 2
    assert [len(b) for b in epoch_batches(10, 4, 1, 0, 100, world_size=3)] == [4, 4]  # 2 items for 3 processes


# ---------------------------------------------------------------------------------------- configs

def test_shipped_configs_validate_and_bad_values_are_refused(tmp_path):
    files = sorted(CONFIG_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {"ucfrep", "ucfrep_split_streams", "ucfrep_faithful_count"}
    for f in files:
        validate(load_config(repetition_defaults(), f))
    cfg = load_config(repetition_defaults(), CONFIG_DIR / "ucfrep.yaml")
    assert (cfg.TRAIN.LR, cfg.TRAIN.WEIGHT_DECAY, cfg.TRAIN.EPOCHS, cfg.TRAIN.BATCH_SIZE, cfg.SEED) == (5e-5, 1e-3, 100, 32, 1)
    with pytest.raises(SevereError, match="STREAM_FEATURES"):
        validate(load_config(repetition_defaults(), None, ["MODEL.STREAM_FEATURES", "halves"]))
    with pytest.raises(SevereError):
        load_config(repetition_defaults(), None, ["TRAIN.MILESTONES", "[5]"])  # a key the code does not read
