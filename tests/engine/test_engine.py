"""Train/eval engine on a tiny 3D-conv model and synthetic clips (CPU, seconds)."""

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from severe.engine import (
    BatchStep,
    ConstantLR,
    DistContext,
    EpochLoader,
    MultiStepLR,
    OptimizerSpec,
    RelativeStepsLR,
    StepOutput,
    Trainer,
    build_optimizer,
    build_schedule,
    classification_step,
    extract_features,
    freeze_backbone,
    gather_by_index,
    load_checkpoint,
    load_model_weights,
    per_process_batch,
    predict_dense,
    read_jsonl,
    resolve_runtime,
    seed_epoch,
    seed_everything,
    shard_range,
)
from severe.engine.checkpointing import capture_rng_state, restore_rng_state
from severe.engine.precise_bn import update_bn_stats
from severe.errors import SevereError
from severe.io import sha256_file
from severe.metrics import knn_classify, video_accuracy
from tests.helpers import NUM_CLASSES, TinyNet, ToyTest, ToyTrain


def make_trainer(run_dir, model=None, **overrides):
    if model is None:
        seed_everything(0)
        model = TinyNet()
    kwargs = dict(
        run_dir=run_dir,
        epochs=3,
        global_batch_size=8,
        optimizer=OptimizerSpec("adam"),
        schedule=MultiStepLR(1e-2, [2], 0.3),
        seed=7,
        progress=False,
        console=False,
    )
    kwargs.update(overrides)
    dataset = kwargs.pop("dataset", ToyTrain())
    return Trainer(model, dataset, **kwargs)


def epoch_lines(run_dir):
    return [{k: v for k, v in r.items() if k not in ("time", "timing")} for r in read_jsonl(run_dir / "metrics.jsonl", "epoch")]


# ------------------------------------------------------------------------------------------ training
def test_learns_synthetic_task_and_writes_run_dir(tmp_path):
    trainer = make_trainer(tmp_path / "run", tensorboard=True, checkpoint_every=2)
    history = trainer.fit()
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert [h["lr"] for h in history] == pytest.approx([1e-2, 1e-2, 3e-3])
    assert history[-1]["samples"] == 48 and history[-1]["iterations"] == 6
    out = predict_dense(trainer.model, ToyTest(), batch_size=4, progress=False)
    assert out.indices.tolist() == list(range(24))
    metrics = video_accuracy(out.values, out.labels, NUM_CLASSES)
    assert metrics["video_top1"] >= 0.8  # chance is 0.25
    assert np.allclose(out.values.sum(axis=1), 1.0)  # averaged probabilities
    # run directory: weights-only checkpoint with the bare state dict, append-only logs
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")
    assert ckpt["epoch"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])
    assert {"optimizer", "scaler", "schedule", "rng", "history", "setup"} <= set(ckpt)
    events = [r["event"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert events == ["start", "epoch", "epoch", "epoch"]
    assert (tmp_path / "run" / "train.log").read_text().count("epoch ") >= 3
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    periodic = load_checkpoint(tmp_path / "run" / "checkpoint_e001.pt")  # model weights of every 2nd epoch
    assert periodic["epoch"] == 1 and set(periodic) == {"format", "epoch", "model"}
    assert not (tmp_path / "run" / "checkpoint_e002.pt").exists()
    restored = TinyNet()
    load_model_weights(restored, tmp_path / "run" / "checkpoint_last.pt")
    assert all(torch.equal(a, b) for a, b in zip(restored.state_dict().values(), trainer.model.state_dict().values()))


def test_dense_protocol_averages_probabilities_not_logits(tmp_path):
    class Fixed(nn.Module):
        def forward(self, x):  # logits: clip 0 -> [4, 0], clip 1 -> [0, 1]
            first = x[:, 0, 0, 0, 0]
            return torch.stack([4 * first, 1 - first], dim=1)

    class TwoClips(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            clips = torch.zeros(2, 1, 1, 1, 1)
            clips[0] = 1.0
            return clips, 0, i

    out = predict_dense(Fixed(), TwoClips(), progress=False)
    p0, p1 = torch.tensor([4.0, 0.0]).softmax(0), torch.tensor([0.0, 1.0]).softmax(0)
    assert np.allclose(out.values[0], ((p0 + p1) / 2).numpy())
    # averaging logits would give [2, 0.5] -> a different distribution
    assert not np.allclose(out.values[0], torch.tensor([2.0, 0.5]).softmax(0).numpy())


def test_linear_mode_keeps_backbone_and_bn_bit_identical(tmp_path):
    seed_everything(0)
    model = TinyNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = make_trainer(tmp_path / "run", model, mode="linear", head_names=("head",), epochs=2)
    trainer.net.train()
    assert not model.backbone.training and not model.backbone[1].training and model.head.training
    assert all(not p.requires_grad for p in model.backbone.parameters())
    history = trainer.fit()
    after = model.state_dict()
    for name, tensor in before.items():
        if name.startswith("backbone."):
            assert torch.equal(tensor, after[name]), name  # includes BN running stats and num_batches_tracked
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert history[-1]["backbone_unchanged"] is True
    assert load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["setup"]["mode_record"]["trainable_parameters"] == 6 * 4 + 4


def test_finetune_mode_updates_bn_statistics(tmp_path):
    seed_everything(0)
    model = TinyNet()
    before = model.backbone[1].running_mean.clone()
    make_trainer(tmp_path / "run", model, epochs=1).fit()
    assert not torch.equal(before, model.backbone[1].running_mean)


def test_frozen_bn_statistics_train_weights_and_precise_bn_still_updates_them(tmp_path):
    seed_everything(0)
    model = TinyNet()
    bn = model.backbone[1]
    stats, weight = (bn.running_mean.clone(), bn.running_var.clone()), bn.weight.detach().clone()
    trainer = make_trainer(tmp_path / "run", model, epochs=1, freeze_bn_stats=True)
    trainer.fit()
    assert trainer.mode_record["bn_statistics_frozen"] == 1
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])  # statistics kept
    assert not torch.equal(bn.weight, weight)  # the affine parameters trained
    model.train()
    assert not bn.training and model.backbone[0].training  # pinned in eval, the rest trains
    # precise BN collects statistics on the frozen module and leaves it in eval mode again
    batches = [torch.randn(4, 3, 4, 8, 8) * 3 + 1 for _ in range(3)]
    assert update_bn_stats(model, iter(batches), 3, lambda m, b: m(b)) == 3
    expected = torch.stack([model.backbone[0](b).mean(dim=(0, 2, 3, 4)) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5) and not bn.training


def test_freeze_backbone_rejects_unknown_head():
    with pytest.raises(SevereError, match="head module 'fc' not found"):
        freeze_backbone(TinyNet(), ("fc",))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_is_bit_identical_to_uninterrupted(tmp_path, num_workers):
    common = dict(
        epochs=3,
        accum_steps=2,
        num_workers=num_workers,
        schedule=RelativeStepsLR(0.05, [0, 2], [1.0, 0.1], warmup_epochs=1, warmup_start_lr=0.001),
    )
    full = make_trainer(tmp_path / "full", **common)
    full.fit()

    first = make_trainer(tmp_path / "split", **common)
    first.fit(stop_after_epoch=0)  # "killed" after epoch 0's checkpoint
    seed_everything(12345)  # a fresh process: different global RNG state and a different initial model
    torch.randn(100)
    second = make_trainer(tmp_path / "split", model=TinyNet(), **common)
    history = second.fit(resume=True)

    assert [h["epoch"] for h in history] == [0, 1, 2]
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    assert epoch_lines(tmp_path / "full") == epoch_lines(tmp_path / "split")
    events = [r["event"] for r in read_jsonl(tmp_path / "split" / "metrics.jsonl")]
    assert events == ["start", "epoch", "resume", "epoch", "epoch"]


def test_resume_backfills_a_missing_epoch_line(tmp_path):
    first = make_trainer(tmp_path / "run", epochs=2)
    first.fit(stop_after_epoch=0)
    path = tmp_path / "run" / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n")  # killed after the checkpoint, before the epoch line
    make_trainer(tmp_path / "run", epochs=2).fit(resume=True)
    assert [r["epoch"] for r in read_jsonl(path, "epoch")] == [0, 1]


def test_fresh_start_refuses_existing_run_and_resume_checks_settings(tmp_path):
    make_trainer(tmp_path / "run", epochs=1).fit()
    with pytest.raises(SevereError, match="already holds checkpoint_last.pt"):
        make_trainer(tmp_path / "run", epochs=1).fit()
    with pytest.raises(SevereError, match="setting 'seed' was 7 and is now 8"):
        make_trainer(tmp_path / "run", epochs=1, seed=8).fit(resume=True)
    with pytest.raises(SevereError, match="does not exist"):
        make_trainer(tmp_path / "other", epochs=1).fit(resume=True)


class PoisonStep:
    """classification_step whose loss becomes NaN at one global iteration."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __call__(self, model, batch, device, memory_format):
        out = classification_step(model, batch, device, memory_format)
        self.calls += 1
        if self.calls == self.at + 1:
            out = StepOutput(out.loss * float("nan"), out.count, out.sums)
        return out


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path):
    make_trainer(tmp_path / "run").fit(stop_after_epoch=0)
    ckpt = tmp_path / "run" / "checkpoint_last.pt"
    digest = sha256_file(ckpt)
    trainer = make_trainer(tmp_path / "run", step_fn=PoisonStep(at=3))  # 4th iteration of epoch 1
    with pytest.raises(SevereError, match=r"non-finite loss at epoch 1 \(0-based\), iteration 3 of 6 \(loss on this process: nan\).*left untouched"):
        trainer.fit(resume=True)
    assert sha256_file(ckpt) == digest
    assert load_checkpoint(ckpt)["epoch"] == 0
    assert read_jsonl(tmp_path / "run" / "metrics.jsonl")[-1]["kind"] == "nonfinite_loss"


# ------------------------------------------------------------------- several optimiser steps per batch
class ListLoader:
    """A custom TrainLoader: the same fixed batches every epoch."""

    def __init__(self, batches) -> None:
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def for_epoch(self, epoch):
        return self.batches


class TwoSGDSteps(BatchStep):
    """Two optimiser steps on the batch's squared error."""

    def __call__(self, net, batch, ctx):
        x, t = batch
        for _ in range(2):
            ctx.optimize(((net(x) - t) ** 2).mean())
        return {"items": len(x)}

    def epoch_record(self, sums):
        return {"samples": int(sums["items"])}


def test_batch_step_takes_two_sgd_steps_per_batch_by_hand(tmp_path):
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    x, t = torch.tensor([[1.0]]), torch.tensor([[4.0]])
    trainer = Trainer(model, torch.utils.data.TensorDataset(x, t), run_dir=tmp_path / "run", epochs=2, global_batch_size=1,
                      optimizer=OptimizerSpec("sgd", momentum=0.0), schedule=MultiStepLR(0.25, [1], 0.5), seed=0,
                      step_fn=TwoSGDSteps(), loader=ListLoader([(x, t)]), progress=False, console=False)
    history = trainer.fit()
    # loss (w - 4)^2, gradient 2 (w - 4); epoch 0 at lr 0.25: w 0 -> 2 -> 3; epoch 1 at lr 0.125: 3 -> 3.25 -> 3.4375
    assert model.weight.item() == 3.4375
    assert load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["model"]["weight"].item() == 3.4375
    assert [(h["lr"], h["iterations"], h["samples"]) for h in history] == [(0.25, 1, 1), (0.125, 1, 1)]
    with pytest.raises(SevereError, match="accum_steps must be 1"):
        Trainer(nn.Linear(1, 1), [0], run_dir=tmp_path / "other", epochs=1, global_batch_size=1, accum_steps=2,
                optimizer=OptimizerSpec("sgd"), schedule=ConstantLR(0.1), seed=0, step_fn=TwoSGDSteps(), loader=ListLoader([]))


class ForwardAndReversed(BatchStep):
    """Two steps per batch (cross-entropy on the clips, then on the time-reversed clips); counts every
    optimiser step of the run (state saved with the checkpoint). ``poison`` = (epoch, iteration, step)
    whose loss becomes NaN."""

    def __init__(self, poison=None) -> None:
        self.poison, self.total = poison, 0

    def __call__(self, net, batch, ctx):
        clips, labels = batch[0].to(ctx.device), batch[1].to(ctx.device)
        loss_sum = 0.0
        for k, x in enumerate((clips, clips.flip(2))):
            with ctx.autocast():
                loss = nn.functional.cross_entropy(net(x), labels)
            if (ctx.epoch, ctx.iteration, k) == self.poison:
                loss = loss * float("nan")
            ctx.optimize(loss)
            self.total += 1
            loss_sum += loss.item() * len(labels)
        return {"loss": loss_sum, "items": len(labels), "noise": float(np.random.rand())}  # global RNG: seeded per epoch

    def epoch_record(self, sums):
        return {"samples": int(sums["items"]), "train_loss": sums["loss"] / (2 * sums["items"]), "noise": sums["noise"],
                "steps_so_far": self.total}

    def state_dict(self):
        return {"total": self.total}

    def load_state_dict(self, state):
        self.total = state["total"]


def test_multi_step_resume_is_bit_identical_and_checks_extra_settings(tmp_path):
    common = dict(epochs=3, schedule=RelativeStepsLR(0.05, [0, 2], [1.0, 0.1], warmup_epochs=1, warmup_start_lr=0.001),
                  setup_extra={"task_setting": "a"})
    full = make_trainer(tmp_path / "full", step_fn=ForwardAndReversed(), **common)
    full.fit()
    make_trainer(tmp_path / "split", step_fn=ForwardAndReversed(), **common).fit(stop_after_epoch=0)
    seed_everything(12345)  # a fresh process
    second = make_trainer(tmp_path / "split", model=TinyNet(), step_fn=ForwardAndReversed(), **common)
    history = second.fit(resume=True)
    assert [h["steps_so_far"] for h in history] == [12, 24, 36]  # 6 batches x 2 steps per epoch, state restored
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    assert epoch_lines(tmp_path / "full") == epoch_lines(tmp_path / "split")
    assert load_checkpoint(tmp_path / "split" / "checkpoint_last.pt")["setup"]["task_setting"] == "a"
    with pytest.raises(SevereError, match="setting 'task_setting' was 'a' and is now 'b'"):
        make_trainer(tmp_path / "split", step_fn=ForwardAndReversed(), **{**common, "setup_extra": {"task_setting": "b"}}).fit(resume=True)
    with pytest.raises(SevereError, match=r"setup_extra: keys \['seed'\] are the trainer's own"):
        make_trainer(tmp_path / "other", step_fn=ForwardAndReversed(), setup_extra={"seed": 1})


def test_nan_in_a_later_optimiser_step_stops_and_keeps_last_checkpoint(tmp_path):
    make_trainer(tmp_path / "run", step_fn=ForwardAndReversed()).fit(stop_after_epoch=0)
    ckpt = tmp_path / "run" / "checkpoint_last.pt"
    digest = sha256_file(ckpt)
    trainer = make_trainer(tmp_path / "run", step_fn=ForwardAndReversed(poison=(1, 2, 1)))
    with pytest.raises(SevereError, match=r"^non-finite loss at epoch 1 \(0-based\), iteration 2 of 6, optimiser step 1 "
                                          r"\(0-based\) of the batch \(loss on this process: nan\).*left untouched[^\n]*$"):
        trainer.fit(resume=True)
    assert trainer.step_fn.total == 12 + 5  # the 2nd step of the 3rd batch was refused
    assert sha256_file(ckpt) == digest and load_checkpoint(ckpt)["epoch"] == 0
    error = read_jsonl(tmp_path / "run" / "metrics.jsonl")[-1]
    assert (error["kind"], error["epoch"], error["iteration"], error["inner_step"]) == ("nonfinite_loss", 1, 2, 1)


def test_learning_rate_is_set_every_iteration(tmp_path):
    seen = []

    def step(model, batch, device, memory_format):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return classification_step(model, batch, device, memory_format)

    schedule = RelativeStepsLR(0.1, [0, 1], [1.0, 0.1], warmup_epochs=1, warmup_start_lr=0.02)
    trainer = make_trainer(tmp_path / "run", epochs=2, schedule=schedule, step_fn=step)
    trainer.fit()
    # 6 iterations per epoch; warm-up from 0.02 to the lr at epoch 1 (0.01)
    expected = [0.02 + (i / 6) * (0.01 - 0.02) for i in range(6)] + [0.01] * 6
    assert seen == pytest.approx(expected, rel=1e-12)


def test_gradient_accumulation_equals_large_batch(tmp_path):
    """SGD without momentum: 2 micro-batches of 4 accumulate to the gradient of one batch of 8."""

    class NoBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.AdaptiveAvgPool3d(1), nn.Flatten())
            self.head = nn.Linear(4, NUM_CLASSES)

        def forward(self, x):
            return self.head(self.backbone(x))

    results = []
    for accum, name in ((1, "a"), (2, "b")):
        seed_everything(0)
        trainer = make_trainer(
            tmp_path / name, NoBN(), epochs=1, accum_steps=accum, optimizer=OptimizerSpec("sgd", momentum=0.0), schedule=ConstantLR(0.1)
        )
        trainer.fit()
        results.append(trainer.model.state_dict())
    for name in results[0]:
        assert torch.allclose(results[0][name], results[1][name], atol=1e-6), name


# ------------------------------------------------------------------------------- optimiser / schedule
def test_multistep_schedule_matches_recognition_recipe():
    s = build_schedule("multistep", base_lr=1e-4, milestones=[6, 10, 14], gamma=0.3)
    lrs = [s.lr_at(e) for e in range(16)]
    assert lrs == pytest.approx([1e-4] * 6 + [3e-5] * 4 + [9e-6] * 4 + [2.7e-6] * 2, rel=1e-12)
    assert s.lr_at(5.99) == 1e-4  # changes only at epoch boundaries
    # same values as torch's MultiStepLR stepped once per epoch
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-4)
    ref = torch.optim.lr_scheduler.MultiStepLR(opt, [6, 10, 14], gamma=0.3)
    for e in range(16):
        assert opt.param_groups[0]["lr"] == pytest.approx(lrs[e], rel=1e-12)
        opt.step()
        ref.step()


def test_relative_steps_with_warmup_ava_values():
    s = build_schedule("relative_steps", base_lr=0.1, steps=[0, 10, 15, 20], factors=[1, 0.1, 0.01, 0.001], warmup_epochs=5, warmup_start_lr=0.000125)
    assert s.lr_at(0.0) == pytest.approx(0.000125)
    assert s.lr_at(2.5) == pytest.approx(0.000125 + 2.5 * (0.1 - 0.000125) / 5)  # 0.0500625
    assert s.lr_at(2.5) == pytest.approx(0.0500625)
    assert s.lr_at(4.999) == pytest.approx(0.000125 + 4.999 * 0.099875 / 5)
    assert s.lr_at(5.0) == pytest.approx(0.1)
    assert s.lr_at(9.99) == pytest.approx(0.1)
    assert s.lr_at(10.0) == pytest.approx(0.01)
    assert s.lr_at(14.5) == pytest.approx(0.01)
    assert s.lr_at(15.0) == pytest.approx(0.001)
    assert s.lr_at(19.9) == pytest.approx(0.001)
    charades = RelativeStepsLR(0.0375, [0, 41, 49], [1, 0.1, 0.01], warmup_epochs=4, warmup_start_lr=1e-4)
    assert charades.lr_at(2.0) == pytest.approx(1e-4 + 2 * (0.0375 - 1e-4) / 4)
    assert charades.lr_at(45) == pytest.approx(0.00375) and charades.lr_at(56.9) == pytest.approx(0.000375)
    ek = RelativeStepsLR(0.0025, [0, 20, 25], [1, 0.1, 0.01])
    assert [ek.lr_at(e) for e in (0, 19.9, 20, 25)] == pytest.approx([0.0025, 0.0025, 0.00025, 0.000025])


def test_schedule_and_optimizer_errors():
    with pytest.raises(SevereError, match="unknown kind 'cosine'"):
        build_schedule("cosine", base_lr=1)
    with pytest.raises(SevereError, match="bad arguments"):
        build_schedule("multistep", base_lr=1, steps=[1])
    with pytest.raises(SevereError, match="start at epoch 0"):
        RelativeStepsLR(0.1, [5, 10], [1, 0.1])
    with pytest.raises(SevereError, match="unknown kind 'lamb'"):
        build_optimizer(TinyNet(), OptimizerSpec("lamb"), 0.1)  # adamw became a kind with the ViT recipe


def test_optimizer_builders():
    model = TinyNet()
    adam = build_optimizer(model, OptimizerSpec("adam", weight_decay=1e-4), 1e-4)
    assert type(adam) is torch.optim.Adam and adam.param_groups[0]["weight_decay"] == 1e-4
    assert not adam.param_groups[0].get("decoupled_weight_decay", False)  # coupled L2, not AdamW
    assert adam.param_groups[0]["betas"] == (0.9, 0.999) and adam.param_groups[0]["eps"] == 1e-8
    sgd = build_optimizer(model, OptimizerSpec("sgd", weight_decay=1e-7, nesterov=True, bn_weight_decay=0.0), 0.1)
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["momentum"] == 0.9
    bn = {id(p) for p in model.backbone[1].parameters()}
    decay, no_decay = sgd.param_groups
    assert decay["weight_decay"] == 1e-7 and {id(p) for p in no_decay["params"]} == bn
    assert no_decay["weight_decay"] == 0.0 and not bn & {id(p) for p in decay["params"]}
    freeze_backbone(model, ("head",))
    head_only = build_optimizer(model, OptimizerSpec("adam"), 1e-2)
    assert {id(p) for p in head_only.param_groups[0]["params"]} == {id(p) for p in model.head.parameters()}


# ------------------------------------------------------------------------------ batch / seeds / misc
def test_per_process_batch():
    assert per_process_batch(32, 2) == 16
    assert per_process_batch(32, 2, accum_steps=4) == 4
    with pytest.raises(SevereError, match="not divisible by world size 3"):
        per_process_batch(32, 3)


def test_shard_range_covers_once_and_aligns_to_batches():
    for n, world, block in [(13, 2, 2), (10, 3, 1), (5, 4, 4), (7, 2, 3)]:
        shards = [shard_range(n, r, world, block) for r in range(world)]
        assert [i for s in shards for i in s] == list(range(n))
        assert all(s.start % block == 0 for s in shards if len(s))


def test_gather_orders_by_index_and_checks_coverage():
    arrays, order = gather_by_index({"v": np.array([30, 10, 20])}, np.array([2, 0, 1]), DistContext(), expected=3)
    assert order.tolist() == [0, 1, 2] and arrays["v"].tolist() == [10, 20, 30]
    with pytest.raises(SevereError, match="own position"):
        gather_by_index({"v": np.array([1, 2])}, np.array([0, 5]), DistContext(), expected=2)


def test_epoch_streams_depend_only_on_seed_and_epoch():
    """Loader order and item randomness of epoch e are the same whatever ran before (main process or workers)."""

    class Draws(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return torch.tensor([random.random(), float(np.random.rand()), torch.rand(()).item(), float(i)])

    def draw(loader, epoch):  # what Trainer.train_one_epoch does before iterating
        seed_epoch(3, epoch)
        return torch.cat(list(loader.for_epoch(epoch)))

    for workers in (0, 2):
        a = EpochLoader(Draws(), 4, seed=3, ctx=DistContext(), num_workers=workers)
        draw(a, 0)
        a1 = draw(a, 1)
        seed_everything(999)  # unrelated global state, fresh loader
        b1 = draw(EpochLoader(Draws(), 4, seed=3, ctx=DistContext(), num_workers=workers), 1)
        assert torch.equal(a1, b1)
        assert not torch.equal(draw(a, 2), a1)
        assert sorted(a1[:, 3].tolist()) == list(range(8))


def test_rng_state_roundtrip_through_weights_only_checkpoint(tmp_path):
    from severe.engine import save_checkpoint

    seed_everything(5)
    save_checkpoint(tmp_path / "c.pt", {"rng": capture_rng_state()})
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(99)
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_load_checkpoint_errors(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SevereError, match="weights-only"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(SevereError, match="not a severe training checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(SevereError, match="do not fit the model"):
        load_model_weights(TinyNet(num_classes=5), {"model": TinyNet().state_dict()})


def test_speed_flags_are_recorded_noops_on_cpu():
    rt = resolve_runtime(torch.device("cpu"), amp="bf16", channels_last=True, compile=True)
    assert rt.amp_dtype is None and rt.memory_format == torch.contiguous_format and not rt.compile
    assert rt.record["amp"].startswith("off (requested bf16") and "no-op" in rt.record["compile"]
    with pytest.raises(SevereError, match="unknown precision"):
        resolve_runtime(torch.device("cpu"), amp="fp8")


def test_features_and_knn(tmp_path):
    trainer = make_trainer(tmp_path / "run", epochs=2)
    trainer.fit()
    train = extract_features(trainer.model, ToyTest(n=32, k=1), batch_size=8, progress=False)
    test = extract_features(trainer.model, ToyTest(n=12, k=3), batch_size=5, progress=False)
    assert train.values.shape == (32, 6) and test.values.shape == (12, 6)
    pred = knn_classify(train.values, train.labels, test.values, 5, num_classes=NUM_CLASSES)
    assert np.mean(pred == test.labels) >= 0.75
    # per-video feature = mean over the video's clips
    clips = ToyTest(n=12, k=3)[4][0]
    with torch.inference_mode():
        direct = trainer.model.eval().backbone(clips).mean(0).numpy()
    assert np.allclose(test.values[4], direct, atol=1e-6)
    json.dumps(video_accuracy(np.eye(NUM_CLASSES)[pred], test.labels, NUM_CLASSES))  # JSON-friendly
