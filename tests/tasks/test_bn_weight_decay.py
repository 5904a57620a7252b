"""EK-100 exempts BatchNorm weights and biases from weight decay (PySlowFast's BN.WEIGHT_DECAY 0); the other
recognition recipes decay every parameter alike."""

from __future__ import annotations

import torch.nn as nn

from severe.engine.optim import build_optimizer
from severe.recognition.runner import plan_run
from severe.tasks.recognition import RecognitionTask, build_model


def _decay_by_kind(config: str) -> dict[str, set[float]]:
    cfg = plan_run(config, "scratch", None).cfg
    model = build_model("r2plus1d_18", None, 5, cfg.MODEL.HEAD_INIT, cfg.MODEL.DROPOUT, cfg.MODEL.NOUN_HEAD)
    bn = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm3d) for p in m.parameters()}
    opt = build_optimizer(model, RecognitionTask.optimizer_spec(cfg, model), 0.1)
    seen: dict[str, set[float]] = {"bn": set(), "other": set()}
    count = 0
    for group in opt.param_groups:
        for p in group["params"]:
            seen["bn" if id(p) in bn else "other"].add(group["weight_decay"])
            count += 1
    assert count == sum(1 for p in model.parameters() if p.requires_grad) and bn
    return seen


def test_ek100_gives_batchnorm_no_weight_decay():
    assert _decay_by_kind("domain/ek100") == {"bn": {0.0}, "other": {1e-4}}


def test_other_recipes_decay_batchnorm_like_the_rest():
    seen = _decay_by_kind("domain/ucf101")
    assert seen["bn"] == seen["other"] and len(seen["bn"]) == 1
