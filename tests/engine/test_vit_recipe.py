"""The ViT finetuning recipe's pieces against hand-computed values (docs/protocol.md §15): layer-decay groups,
the warm-up + cosine schedule, MixUp/CutMix soft targets, label smoothing, the 3-crop x N-clip test and the
recipe rules of each backbone family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from severe.data.augment import MixCut, RecipeTrainTransform, soft_target_cross_entropy, soft_targets
from severe.data.transforms import Normalization, TrainTransform
from severe.data.views import ThreeCropTestTransform, crop_offsets
from severe.engine import predict_dense
from severe.engine.optim import (LayerDecay, OptimizerSpec, WarmupCosineLR, build_optimizer, count_blocks,
                                 layer_decay_groups, set_lr)
from severe.recognition.recipes import effective_lr, recipe_rules, set_drop_path
from severe.tasks.recognition import build_model


def _model(arch: str, classes: int = 5):
    torch.manual_seed(0)
    return build_model(arch, None, classes, "default", 0.0)


def _group_of(groups: list[dict], model, name: str) -> dict:
    p = dict(model.named_parameters())[name]
    (group,) = [g for g in groups if any(q is p for q in g["params"])]
    return group


# ------------------------------------------------------------------------------------------- layer decay

def test_layer_decay_groups_videomae_tiny():
    model = _model("vit_tiny_videomae")
    assert count_blocks(model, "videomae") == 2
    groups = layer_decay_groups(model, 0.05, LayerDecay("videomae", 0.75, 2))
    # depth 2 -> layer ids 0..3, scale 0.75^(3 - id)
    expected = {  # name -> (layer id, lr scale, weight decay)
        "backbone.patch_embed.proj.weight": (0, 0.421875, 0.05),
        "backbone.patch_embed.proj.bias": (0, 0.421875, 0.0),
        "backbone.blocks.0.attn.q_bias": (1, 0.5625, 0.0),
        "backbone.blocks.0.attn.qkv.weight": (1, 0.5625, 0.05),
        "backbone.blocks.0.norm1.weight": (1, 0.5625, 0.0),
        "backbone.blocks.1.mlp.fc1.weight": (2, 0.75, 0.05),
        "backbone.blocks.1.mlp.fc1.bias": (2, 0.75, 0.0),
        "backbone.fc_norm.weight": (3, 1.0, 0.0),
        "head.weight": (3, 1.0, 0.05),
        "head.bias": (3, 1.0, 0.0),
    }
    for name, (lid, scale, wd) in expected.items():
        g = _group_of(groups, model, name)
        assert (g["layer_id"], g["weight_decay"]) == (lid, wd), name
        assert g["lr_scale"] == pytest.approx(scale, abs=1e-15), name
    # every trainable parameter in exactly one group
    counted = sorted(id(p) for g in groups for p in g["params"])
    assert counted == sorted(id(p) for p in model.parameters())
    # the optimiser applies the scales on every lr change
    opt = build_optimizer(model, OptimizerSpec("adamw", weight_decay=0.05, layer_decay=LayerDecay("videomae", 0.75, 2)), 0.1)
    assert isinstance(opt, torch.optim.AdamW)
    set_lr(opt, 0.2)
    assert sorted({round(g["lr"], 12) for g in opt.param_groups}) == [0.084375, 0.1125, 0.15, 0.2]


def test_layer_decay_embeddings_timesformer_and_clip():
    ts = _model("vit_tiny_timesformer")
    groups = layer_decay_groups(ts, 0.05, LayerDecay("timesformer", 0.75, 2))
    for name in ("backbone.cls_token", "backbone.pos_embed", "backbone.time_embed"):  # no decay, layer 0
        g = _group_of(groups, ts, name)
        assert (g["layer_id"], g["weight_decay"]) == (0, 0.0), name
    assert _group_of(groups, ts, "backbone.blocks.1.temporal_fc.weight")["layer_id"] == 2
    assert _group_of(groups, ts, "backbone.norm.weight")["layer_id"] == 3
    clip = _model("vit_tiny_clip")
    groups = layer_decay_groups(clip, 0.05, LayerDecay("clip", 0.75, count_blocks(clip, "clip")))
    assert (_group_of(groups, clip, "backbone.positional_embedding")["weight_decay"],
            _group_of(groups, clip, "backbone.conv1.weight")["layer_id"],
            _group_of(groups, clip, "backbone.transformer.resblocks.0.attn.in_proj_weight")["layer_id"],
            _group_of(groups, clip, "backbone.ln_post.weight")["layer_id"]) == (0.0, 0, 1, 3)


def test_cnn_optimizer_record_unchanged():
    """Runs without layer decay keep one group without lr_scale and the optimizer record they always had."""
    spec = OptimizerSpec("adam", weight_decay=0.0)
    assert sorted(spec.describe()) == ["betas", "bn_weight_decay", "eps", "kind", "momentum", "nesterov", "weight_decay"]
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model, spec, 0.1)
    set_lr(opt, 0.3)
    assert [g["lr"] for g in opt.param_groups] == [0.3] and "lr_scale" not in opt.param_groups[0]


# ------------------------------------------------------------------------------------------- schedule

def test_warmup_cosine_values():
    s = WarmupCosineLR(1e-3, epochs=10, warmup_epochs=5, min_lr=1e-6, warmup_start_lr=1e-6)
    # hand-computed: warm-up 1e-6 + (1e-3 - 1e-6) e / 5; then 1e-6 + 0.5 (1e-3 - 1e-6) (1 + cos(pi (e - 5) / 5))
    assert s.lr_at(0.0) == pytest.approx(1e-6, rel=1e-12)
    assert s.lr_at(2.5) == pytest.approx(5.005e-4, rel=1e-12)
    assert s.lr_at(5.0) == pytest.approx(1e-3, rel=1e-12)
    assert s.lr_at(7.5) == pytest.approx(5.005e-4, rel=1e-12)
    assert s.lr_at(6.0) == pytest.approx(1e-6 + 0.5 * 0.999e-3 * (1 + math.cos(math.pi / 5)), rel=1e-12)
    assert s.lr_at(10.0) == pytest.approx(1e-6, rel=1e-12)
    assert effective_lr(1e-3, 32, 2, 256) == pytest.approx(2.5e-4) and effective_lr(1e-4, 32, 1, 0) == 1e-4


# ------------------------------------------------------------------------------------------- targets and loss

def test_mixup_targets_match_lambda():
    torch.manual_seed(3)
    x, y = torch.rand(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 3])
    mixed, t = MixCut(5, mixup=0.8, smoothing=0.1)(x, y)
    assert torch.allclose(t.sum(1), torch.ones(4))
    lam = float((t[0, 0] - 0.02) / 0.9)  # smoothing 0.1 over 5 classes: 0.9 * mix + 0.02
    assert torch.allclose(t, 0.9 * (lam * F.one_hot(y, 5) + (1 - lam) * F.one_hot(y.roll(1), 5)) + 0.02, atol=1e-6)
    assert torch.allclose(mixed, lam * x + (1 - lam) * x.roll(1, 0), atol=1e-5)


def test_cutmix_targets_match_area():
    torch.manual_seed(5)
    x = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 3, 2, 16, 16).clone()  # sample i = value i everywhere
    y = torch.tensor([0, 1, 2, 3])
    mixed, t = MixCut(4, cutmix=1.0)(x, y)
    assert torch.allclose(t.sum(1), torch.ones(4))
    kept = (mixed[0] == 0).float().mean().item()  # fraction of sample 0's pixels left in place
    assert t[0, 0].item() == pytest.approx(kept, abs=1e-6) and t[0, 3].item() == pytest.approx(1 - kept, abs=1e-6)


def test_label_smoothing_loss_hand_computed():
    logits, targets = torch.tensor([[2.0, 0.0, 0.0]]), soft_targets(torch.tensor([0]), 3, 0.1)
    log_z = math.log(math.exp(2.0) + 2.0)
    expected = -((0.9 + 0.1 / 3) * (2.0 - log_z) + 2 * (0.1 / 3) * (0.0 - log_z))
    assert soft_target_cross_entropy(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    torch.manual_seed(0)
    z, y = torch.randn(6, 7), torch.randint(0, 7, (6,))
    assert soft_target_cross_entropy(z, soft_targets(y, 7, 0.1)).item() == pytest.approx(
        F.cross_entropy(z, y, label_smoothing=0.1).item(), rel=1e-6)


# ------------------------------------------------------------------------------------------- augmentation

def test_recipe_train_transform_reproducible_and_erases_per_frame():
    video = torch.randint(0, 256, (4, 3, 40, 48), dtype=torch.uint8)
    t = RecipeTrainTransform(TrainTransform(size=32, jitter=None), rand_augment=(7, 4), erase_p=1.0)
    a, b = t(video, 7), t(video, 7)
    assert a.shape == (3, 4, 32, 32) and torch.equal(a, b) and not torch.equal(a, t(video, 8))
    plain = RecipeTrainTransform(TrainTransform(size=32, jitter=None), rand_augment=(7, 4))(video, 7)
    changed = [(a[:, i] != plain[:, i]).any(0) for i in range(4)]
    assert all(c.any() for c in changed)  # every frame erased ...
    assert any(not torch.equal(changed[0], c) for c in changed[1:])  # ... each with its own box


# ------------------------------------------------------------------------------------------- multi-view test

def test_three_crop_positions():
    assert crop_offsets(40, 32, 3) == [0, 4, 8] and crop_offsets(41, 32, 1) == [5]
    clip = torch.arange(48, dtype=torch.uint8).view(1, 1, 1, 48).expand(2, 3, 32, 48).contiguous()
    views = ThreeCropTestTransform(32, 32, Normalization(None, None), views=3).finish(clip)
    assert views.shape == (3, 3, 2, 32, 32)
    assert [round(float(v[0, 0, 0, 0]) * 255) for v in views] == [0, 8, 16]  # left, centre, right columns


class _Views(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i][0], self.items[i][1], i


class _MeanModel(torch.nn.Module):
    def forward(self, x):
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([m, -m, 0 * m], 1)


def test_three_crops_times_clips_softmax_averaged():
    g = torch.Generator().manual_seed(0)
    t = ThreeCropTestTransform(16, 16, Normalization(None, None), views=3)
    items = []
    for label in (0, 1):
        clips = [t.finish(torch.randint(0, 256, (2, 3, 16, 28), dtype=torch.uint8, generator=g)) for _ in range(5)]
        items.append((torch.stack(clips).flatten(0, 1), label))  # [5 clips x 3 crops, C, T, S, S]
    out = predict_dense(_MeanModel(), _Views(items), batch_size=2, progress=False)
    for v, (views, _) in enumerate(items):
        assert views.shape[0] == 15
        expected = np.mean([F.softmax(_MeanModel()(w[None])[0], 0).numpy() for w in views], axis=0)
        np.testing.assert_allclose(out.values[v], expected, rtol=1e-6)


# ------------------------------------------------------------------------------------------- recipe rules

def test_recipe_rules_by_family():
    assert recipe_rules("gdt", "r2plus1d_18", "ucf101", "finetune") == []  # CNN: the configs as written
    (rule,) = recipe_rules("videomae", "vit_b_videomae", "ucf101", "finetune")
    s = rule.settings
    assert (s["DATA.NUM_FRAMES"], s["DATA.CROP"], s["TRAIN.OPTIMIZER"], s["TRAIN.LAYER_DECAY"], s["DATA.TEST_CROPS"],
            s["DATA.TEST_CLIPS"], s["DATA.RAND_AUGMENT"], "DATA.FLIP" in s) == (16, 224, "adamw", 0.75, 3, 5, [7, 4], False)
    ssv2 = recipe_rules("videomae", "vit_b_videomae", "ssv2", "finetune")[0].settings
    assert (ssv2["DATA.FLIP"], ssv2["DATA.TEST_CLIPS"]) == (False, 2)
    svt = recipe_rules("svt", "vit_b_timesformer", "ucf101", "linear")[0].settings
    assert svt["DATA.NUM_FRAMES"] == 8 and "TRAIN.OPTIMIZER" not in svt and "TRAIN.MIXUP" not in svt


def test_drop_path_linear_over_blocks():
    from severe.models.registry import build_backbone
    from severe.models.vit_common import DropPath

    backbone = build_backbone("vit_tiny_videomae")
    assert set_drop_path(backbone, 0.1) == 2
    assert [m.p for m in backbone.modules() if isinstance(m, DropPath)] == [0.0, 0.1]
    with pytest.raises(Exception, match="MODEL.DROP_PATH"):
        set_drop_path(build_backbone("r2plus1d_18"), 0.1)


def test_every_shipped_recognition_config_takes_the_vit_recipe():
    """Each ssl_benchmark config with the ViT recipe applied (as `severe run` does) loads and validates; EK-100
    keeps hard labels and drops the BatchNorm settings; normalisation is the checkpoint's."""
    from severe.configs import shipped_configs
    from severe.recognition.config import flatten_settings
    from severe.tasks import TASKS, lifecycle

    task = TASKS["recognition"]
    for path in shipped_configs("ssl_benchmark"):
        base = lifecycle.load_task_config(task, path)
        rules = task.init_rules("videomae", base)
        cfg = lifecycle.load_task_config(task, path, flatten_settings(rules))
        assert cfg.TRAIN.RECIPE == "videomae" and list(cfg.DATA.MEAN) == [] and cfg.DATA.TEST_CROPS == 3, path
        if cfg.DATA.DATASET == "ek100" and cfg.TRAIN.MODE == "finetune":
            assert (cfg.TRAIN.MIXUP, cfg.TRAIN.LABEL_SMOOTHING, cfg.TRAIN.PRECISE_BN_BATCHES) == (0.0, 0.0, 0)
