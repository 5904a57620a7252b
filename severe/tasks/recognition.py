"""Recognition tasks (``ssl_benchmark/``): finetune, linear probe and kNN probe of single-label action
recognition, with EK-100's verb + noun objective as a variant, and arrow of time (forward vs reversed).

Run directory files besides the lifecycle's: train_subset.txt (N-example subset), val_split.txt
(DATA.VAL_FRACTION > 0), *_missing.txt (entries excluded for missing media, DATA.ALLOW_MISSING).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from severe.configs import config_dir
from severe.data.augment import MixCut, RecipeTrainTransform, soft_target_cross_entropy
from severe.data.dataset import ClipDataset, collate_clips, short_video_summary
from severe.data.readers.epic import read_epic_nouns
from severe.data.registry import dataset_dir, get_dataset
from severe.data.transforms import Normalization, TrainTransform
from severe.data.views import MultiViewClipDataset, ThreeCropTestTransform
from severe.engine import MultiStepLR, OptimizerSpec, extract_features, per_process_batch, predict_dense
from severe.engine.optim import LayerDecay, LRSchedule, WarmupCosineLR, count_blocks
from severe.engine.precise_bn import PreciseBN
from severe.engine.trainer import StepOutput, Trainer, TrainStep, classification_step
from severe.errors import SevereError
from severe.metrics.recognition import knn_votes, video_accuracy
from severe.models import AuxiliaryHead, ClipNormalizer, VideoClassifier, linear_head
from severe.recognition.config import init_overrides, recognition_defaults, validate
from severe.recognition.data import (ArrowOfTime, SplitData, carve_validation, clip_dataset, collect_failures,
                                     drop_short_videos, prepare_split)
from severe.recognition.recipes import (effective_lr, recipe_record, recipe_rules, run_arch, set_drop_path,
                                        validate_recipe, warmup_epochs)
from severe.tasks import lifecycle
from severe.tasks.base import EntryPoint, Job, Task

log = logging.getLogger("severe.recognition")

CONFIG_DIR = config_dir("ssl_benchmark")


def input_normalization(cfg: CfgNode, meta: dict) -> Normalization:
    """The checkpoint's convention, or the task constants DATA.MEAN/STD (TCLR's null normalisation wins)."""
    return Normalization.from_meta(meta, list(cfg.DATA.MEAN) or None, list(cfg.DATA.STD) or None)


# ------------------------------------------------------------------------------------------- objectives

def verb_noun_step(num_verbs: int, nouns: torch.Tensor) -> TrainStep:
    """Training step of a model with an :class:`AuxiliaryHead`: the mean of the verb and the noun
    cross-entropies (as EPIC's SlowFast); ``nouns[v]`` is the noun class of training video ``v``."""

    def step(model, batch, device: torch.device, memory_format: torch.memory_format) -> StepOutput:
        clips, verbs, videos = batch[0], batch[1], batch[2]
        clips = clips.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        verbs, noun_targets = verbs.to(device, non_blocking=True), nouns[videos].to(device, non_blocking=True)
        logits = model(clips).float()
        verb_logits, noun_logits = logits[:, :num_verbs], logits[:, num_verbs:]
        loss = (F.cross_entropy(verb_logits, verbs) + F.cross_entropy(noun_logits, noun_targets)) / 2
        return StepOutput(loss, verbs.shape[0], {"top1": (verb_logits.argmax(1) == verbs).sum(),
                                                 "noun_top1": (noun_logits.argmax(1) == noun_targets).sum()})

    return step


def soft_target_step(mix: MixCut) -> TrainStep:
    """Training step of the ViT recipe: MixUp/CutMix of the batch and label smoothing (``mix``), then the
    cross-entropy on the soft targets; ``top1`` counts argmax hits on the unmixed labels."""

    def step(model, batch, device: torch.device, memory_format: torch.memory_format) -> StepOutput:
        clips, labels = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        clips, targets = mix(clips, labels)
        logits = model(clips.contiguous(memory_format=memory_format)).float()
        loss = soft_target_cross_entropy(logits, targets)
        return StepOutput(loss, labels.shape[0], {"top1": (logits.argmax(1) == labels).sum()})

    return step


def soft_targets_on(cfg: CfgNode) -> bool:
    """Whether a config trains on soft targets (label smoothing, MixUp or CutMix)."""
    return bool(cfg.TRAIN.LABEL_SMOOTHING or cfg.TRAIN.MIXUP or cfg.TRAIN.CUTMIX)


# datasets whose original protocol trained more than one label: what a single-label run leaves out
SINGLE_LABEL_NOTES = {"ek100": "EK-100: verb head only (the original also trained an auxiliary noun head)"}


class SingleLabel:
    """One linear classifier, cross-entropy."""

    def head(self, dim: int, classes: int, *, init: str, dropout: float, nouns: int):
        return linear_head(dim, classes, init=init, dropout=dropout)

    def step(self, job: Job, classes: int, train: SplitData) -> TrainStep:
        t = job.cfg.TRAIN
        if soft_targets_on(job.cfg):
            return soft_target_step(MixCut(classes, t.MIXUP, t.CUTMIX, t.MIXUP_SWITCH_PROB, t.LABEL_SMOOTHING))
        return classification_step

    def deviations(self, cfg: CfgNode) -> list[str]:
        return [SINGLE_LABEL_NOTES[cfg.DATA.DATASET]] if cfg.DATA.DATASET in SINGLE_LABEL_NOTES else []


class VerbNoun:
    """EK-100: verb classifier + auxiliary noun classifier (MODEL.NOUN_HEAD classes); the loss is the mean of
    both cross-entropies; the test scores verbs only."""

    def head(self, dim: int, classes: int, *, init: str, dropout: float, nouns: int):
        return AuxiliaryHead(dim, classes, nouns, init=init, dropout=dropout)

    def step(self, job: Job, classes: int, train: SplitData) -> TrainStep:
        if soft_targets_on(job.cfg):
            raise SevereError("TRAIN.LABEL_SMOOTHING / MIXUP / CUTMIX are not available with the EK-100 verb + noun "
                              "objective (MODEL.NOUN_HEAD > 0); set them to 0")
        return verb_noun_step(classes, self.noun_labels(job, train))

    @staticmethod
    def noun_labels(job: Job, train: SplitData) -> torch.Tensor:
        """The noun class of every training entry (index = the dataset's video index); checked against NOUN_HEAD."""
        cfg = job.cfg
        nouns = read_epic_nouns(dataset_dir(job.data_root, cfg.DATA.DATASET), "train")
        labels = torch.tensor([nouns[e.key] for e in train.entries], dtype=torch.long)
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < cfg.MODEL.NOUN_HEAD:
            raise SevereError(f"EK-100 noun classes reach {int(labels.max())}, beyond MODEL.NOUN_HEAD={cfg.MODEL.NOUN_HEAD} "
                              f"classes; set MODEL.NOUN_HEAD to the number of noun classes (300)")
        return labels

    def deviations(self, cfg: CfgNode) -> list[str]:
        return []


OBJECTIVES = {"single": SingleLabel(), "verb_noun": VerbNoun()}


def _objective(noun_classes: int):
    return OBJECTIVES["verb_noun" if noun_classes else "single"]


def objective(cfg: CfgNode):
    """The training objective of a recognition config: EK-100's MODEL.NOUN_HEAD selects verb + noun."""
    return _objective(cfg.MODEL.NOUN_HEAD)


def build_model(arch: str, weights, num_classes: int, head_init: str, dropout: float,
                noun_classes: int = 0, drop_path: float = 0.0, norm: Normalization | None = None) -> VideoClassifier:
    """Backbone (lifecycle.make_backbone) + the objective's head: one linear classifier, or with
    ``noun_classes`` the verb + noun :class:`AuxiliaryHead`; ``drop_path`` > 0 sets the backbone's stochastic depth;
    ``norm``: the input normalisation the model applies to uint8 clips (:class:`ClipNormalizer`)."""
    backbone = lifecycle.make_backbone(arch, weights)
    if drop_path:
        set_drop_path(backbone, drop_path)
    head = _objective(noun_classes).head(backbone.feature_dim, num_classes, init=head_init, dropout=dropout,
                                         nouns=noun_classes)
    normalizer = None if norm is None else ClipNormalizer(*norm.affine(), norm.channel_order)
    return VideoClassifier(backbone, head, normalizer)


# ------------------------------------------------------------------------------------------- task

@dataclass
class RecognitionData:
    train: SplitData | None  # None when re-testing
    test: SplitData
    val: SplitData | None
    norm: Normalization
    short_videos: dict = field(default_factory=dict)  # split -> padded short videos (ShortVideoLog.record)


_VAL_KEYS = ("video_top1", "video_top5", "mean_class_accuracy")


class RecognitionTask(Task):
    name = "recognition"
    description = "finetune / linear / kNN action recognition (ssl_benchmark)"
    primary_metric = "video_top1"
    config_dir = CONFIG_DIR
    entry_points = {
        "recognition": EntryPoint("severe.recognition.cli", "finetune_main",
                                  "finetune / linear / kNN recognition experiment (ssl_benchmark)"),
        "linear": EntryPoint("severe.recognition.cli", "linear_main",
                             "linear probe on a frozen backbone (ssl_benchmark/linear_eval.py)"),
        "test": EntryPoint("severe.recognition.cli", "test_main",
                           "re-test a trained recognition run directory (ssl_benchmark/test.py)"),
    }

    # ------------------------------------------------------------------ config
    def defaults(self) -> CfgNode:
        return recognition_defaults()

    def validate(self, cfg: CfgNode) -> None:
        get_dataset(cfg.DATA.DATASET)  # unknown dataset -> clear error before anything else
        validate(cfg)
        validate_recipe(cfg)

    def init_rules(self, method: str, cfg: CfgNode) -> list:
        """The method's protocol exceptions, then its backbone family's recipe (ViT: docs/protocol.md §15)."""
        return [*init_overrides(method, cfg.DATA.DATASET, cfg.TRAIN.MODE, cfg.DATA.NUM_EXAMPLES),
                *recipe_rules(method, run_arch(method, cfg.MODEL.ARCH), cfg.DATA.DATASET, cfg.TRAIN.MODE)]

    def resolve(self, cfg: CfgNode) -> Task:
        from severe.tasks import TASKS

        return TASKS[RECOGNITION_VARIANTS[cfg.EXPERIMENT.TASK]]

    def identity(self, cfg: CfgNode) -> dict:
        return {"experiment_id": cfg.EXPERIMENT.ID, "task": cfg.EXPERIMENT.TASK, "dataset": cfg.DATA.DATASET,
                "factor": cfg.EXPERIMENT.FACTOR, "mode": cfg.TRAIN.MODE}

    def check_retest(self, cfg: CfgNode, run_dir: Path) -> None:
        if cfg.TRAIN.MODE == "knn":
            raise SevereError(f"{run_dir} is a kNN run: it has no trained weights to test; run it again instead")

    def num_outputs(self, cfg: CfgNode) -> int:
        return cfg.MODEL.NUM_CLASSES or get_dataset(cfg.DATA.DATASET).num_classes

    # ------------------------------------------------------------------ data
    def prepare(self, job: Job) -> RecognitionData:
        cfg, root = job.cfg, job.data_root
        out = None if job.retest else job.out
        norm = input_normalization(cfg, job.meta)
        train = None
        if not job.retest:
            train = prepare_split(cfg.DATA.DATASET, root, "train", num_examples=cfg.DATA.NUM_EXAMPLES, seed=cfg.SEED,
                                  allow_missing=cfg.DATA.ALLOW_MISSING, run_dir=out)
        test = prepare_split(cfg.DATA.DATASET, root, "test", num_examples=0, seed=cfg.SEED,
                             allow_missing=cfg.DATA.ALLOW_MISSING, run_dir=out)
        val = None
        if train is not None and cfg.DATA.VAL_FRACTION > 0:
            train, val = carve_validation(cfg.DATA.DATASET, root, train, fraction=cfg.DATA.VAL_FRACTION, seed=cfg.SEED,
                                          run_dir=out)
        if cfg.MODEL.NUM_CLASSES:
            _check_label_space(cfg.DATA.DATASET, cfg.MODEL.NUM_CLASSES, train, test, val)
        return RecognitionData(train, test, val, norm)

    def train_dataset(self, cfg: CfgNode, data_root: Path, entries, norm: Normalization):
        if cfg.DATA.RAND_AUGMENT or cfg.DATA.RANDOM_ERASING or not cfg.DATA.FLIP:
            return self._recipe_dataset(cfg, data_root, entries, "train", RecipeTrainTransform(
                TrainTransform(size=cfg.DATA.CROP, scale=tuple(cfg.DATA.TRAIN_CROP_SCALE), flip_p=0.5 if cfg.DATA.FLIP else 0.0,
                               jitter=(0.4, 0.4, 0.4, 0.2) if cfg.DATA.COLOR_JITTER else None, norm=norm,
                               short_side=tuple(cfg.DATA.TRAIN_SHORT_SIDE) or None),
                rand_augment=tuple(cfg.DATA.RAND_AUGMENT) or None, erase_p=cfg.DATA.RANDOM_ERASING))
        return clip_dataset(cfg.DATA.DATASET, data_root, entries, mode="train", num_frames=cfg.DATA.NUM_FRAMES,
                            fps=cfg.DATA.FPS, clips=cfg.DATA.TRAIN_CLIPS_PER_VIDEO, crop=cfg.DATA.CROP,
                            test_resize=cfg.DATA.TEST_RESIZE, norm=norm, seed=cfg.SEED,
                            crop_scale=tuple(cfg.DATA.TRAIN_CROP_SCALE), color_jitter=cfg.DATA.COLOR_JITTER,
                            short_side=tuple(cfg.DATA.TRAIN_SHORT_SIDE) or None,
                            # uint8 clips, normalised by the model on its device, unless the step mixes clips
                            normalize=soft_targets_on(cfg))

    def test_dataset(self, cfg: CfgNode, data_root: Path, entries, norm: Normalization):
        if cfg.DATA.TEST_CROPS > 1:
            return self._recipe_dataset(cfg, data_root, entries, "test", ThreeCropTestTransform(
                cfg.DATA.TEST_RESIZE, cfg.DATA.CROP, norm, views=cfg.DATA.TEST_CROPS), dataset_cls=MultiViewClipDataset)
        return clip_dataset(cfg.DATA.DATASET, data_root, entries, mode="test", num_frames=cfg.DATA.NUM_FRAMES,
                            fps=cfg.DATA.FPS, clips=cfg.DATA.TEST_CLIPS, crop=cfg.DATA.CROP,
                            test_resize=cfg.DATA.TEST_RESIZE, norm=norm, seed=cfg.SEED,
                            allow_failures=cfg.DATA.ALLOW_TEST_FAILURES,
                            normalize=False)  # uint8 clips, normalised by the model on its device

    @staticmethod
    def _recipe_dataset(cfg: CfgNode, data_root: Path, entries, mode: str, transform, dataset_cls=ClipDataset):
        """A clip dataset with the ViT recipe's transforms (training augmentation or multi-view test)."""
        spec = get_dataset(cfg.DATA.DATASET)
        clips = cfg.DATA.TRAIN_CLIPS_PER_VIDEO if mode == "train" else cfg.DATA.TEST_CLIPS
        return dataset_cls(entries, dataset_dir(data_root, cfg.DATA.DATASET), media=spec.media, mode=mode,
                           num_frames=cfg.DATA.NUM_FRAMES, fps=cfg.DATA.FPS, clips_per_video=clips, transform=transform,
                           seed=cfg.SEED, frames_fps=spec.frames_fps, frame_pattern=spec.frame_pattern,
                           allow_failures=cfg.DATA.ALLOW_TEST_FAILURES and mode == "test")

    # ------------------------------------------------------------------ model
    def build_model(self, cfg: CfgNode, meta: dict, weights) -> VideoClassifier:
        return build_model(meta["arch"], weights, self.num_outputs(cfg), cfg.MODEL.HEAD_INIT, cfg.MODEL.DROPOUT,
                           cfg.MODEL.NOUN_HEAD, drop_path=cfg.MODEL.DROP_PATH, norm=input_normalization(cfg, meta))

    @staticmethod
    def optimizer_spec(cfg: CfgNode, model) -> OptimizerSpec:
        """The optimiser of TRAIN.*; TRAIN.LAYER_DECAY < 1 adds the ViT recipe's layer-wise groups."""
        layer_decay = None
        if cfg.TRAIN.LAYER_DECAY < 1.0:
            family = model.backbone.spec.family
            layer_decay = LayerDecay(family, cfg.TRAIN.LAYER_DECAY, count_blocks(model, family))
        bn_decay = cfg.TRAIN.BN_WEIGHT_DECAY if cfg.TRAIN.BN_WEIGHT_DECAY >= 0 else None
        return OptimizerSpec(cfg.TRAIN.OPTIMIZER, weight_decay=cfg.TRAIN.WEIGHT_DECAY, momentum=cfg.TRAIN.MOMENTUM,
                             nesterov=cfg.TRAIN.NESTEROV, betas=tuple(cfg.TRAIN.BETAS), layer_decay=layer_decay,
                             bn_weight_decay=bn_decay)

    @staticmethod
    def schedule(cfg: CfgNode) -> LRSchedule:
        """TRAIN.SCHEDULE from :data:`SCHEDULE_BUILDERS`, at the (batch-scaled, TRAIN.LR_SCALE_BATCH) lr."""
        scale = functools.partial(effective_lr, batch_size=cfg.TRAIN.BATCH_SIZE, accum_steps=cfg.TRAIN.ACCUM_STEPS,
                                  scale_batch=cfg.TRAIN.LR_SCALE_BATCH)
        return SCHEDULE_BUILDERS[cfg.TRAIN.SCHEDULE](cfg, scale)

    # ------------------------------------------------------------------ train
    def train_step(self, job: Job, data: RecognitionData) -> TrainStep:
        return objective(job.cfg).step(job, self.num_outputs(job.cfg), data.train)

    def train(self, job: Job, model, data: RecognitionData) -> dict | None:
        cfg = job.cfg
        if cfg.TRAIN.MODE == "knn":
            return {"recipe": recipe_record(cfg)}
        train_ds = self.train_dataset(cfg, job.data_root, data.train.entries, data.norm)
        trainer = Trainer(
            model, train_ds, run_dir=job.run_dir, epochs=cfg.TRAIN.EPOCHS, global_batch_size=cfg.TRAIN.BATCH_SIZE,
            optimizer=self.optimizer_spec(cfg, model), schedule=self.schedule(cfg), seed=cfg.SEED,
            mode=cfg.TRAIN.MODE, head_names=("head",), num_workers=cfg.DATA.NUM_WORKERS,
            accum_steps=cfg.TRAIN.ACCUM_STEPS, dist=job.ctx, amp=cfg.TRAIN.AMP, channels_last=cfg.TRAIN.CHANNELS_LAST,
            compile=cfg.TRAIN.COMPILE, tensorboard=cfg.TRAIN.TENSORBOARD, progress=job.progress,
            checkpoint_every=cfg.TRAIN.CHECKPOINT_EVERY,
            val_fn=self._after_epoch(job, train_ds, data), freeze_bn_stats=cfg.TRAIN.FREEZE_BN_STATS,
            step_fn=self.train_step(job, data), collate_fn=collate_clips,
        )
        history = trainer.fit(resume=job.resume)
        data.short_videos["train"] = short_video_summary(train_ds, "train")
        extra: dict = {}
        if data.val is not None:
            last = {k: v for k, v in history[-1]["val"].items() if k in _VAL_KEYS} if history else None
            extra["val"] = {"videos": len(data.val.entries), "sha256": data.val.sha256, "last_epoch": last}
        extra["train"] = {"epochs": len(history), "final_train_loss": history[-1].get("train_loss") if history else None,
                          "decode_failures": train_ds.failures.count, "failed_videos": train_ds.failed_keys()[:20],
                          "runtime": trainer.runtime.record}
        extra["recipe"] = recipe_record(cfg)
        return extra

    def _after_epoch(self, job: Job, train_ds, data: RecognitionData):
        """The trainer's ``val_fn``: precise BN after the last epoch (TRAIN.PRECISE_BN_BATCHES), then validation
        metrics on the held-out split (DATA.VAL_FRACTION); None when neither is configured."""
        cfg, ctx = job.cfg, job.ctx
        precise = None
        if cfg.TRAIN.PRECISE_BN_BATCHES:
            precise = PreciseBN(train_ds, batch_size=per_process_batch(cfg.TRAIN.BATCH_SIZE, ctx.world_size),
                                num_batches=cfg.TRAIN.PRECISE_BN_BATCHES, period=0, epochs=cfg.TRAIN.EPOCHS,
                                seed=cfg.SEED, num_workers=cfg.DATA.NUM_WORKERS, device=ctx.device)
        if precise is None and data.val is None:
            return None

        def after_epoch(model, epoch: int) -> dict:
            record = precise(model, epoch) if precise is not None else {}
            if data.val is not None:  # dense protocol, no progress bar; logged, never used to pick a model
                metrics, _ = self.dense_test(model, cfg, job.data_root, data.val.entries, data.norm, ctx, progress=False,
                                                 split="validation")
                record.update({k: v for k, v in metrics.items() if k in _VAL_KEYS})
            return record

        return after_epoch

    # ------------------------------------------------------------------ test
    def evaluate(self, job: Job, model, data: RecognitionData) -> tuple[dict, dict]:
        if job.cfg.TRAIN.MODE == "knn":
            return self.knn(job, model, data)
        return self.dense_test(model, job.cfg, job.data_root, data.test.entries, data.norm, job.ctx, job.progress)

    def dense_test(self, model, cfg: CfgNode, data_root: Path, entries, norm: Normalization, ctx,
                   progress: bool = True, split: str = "test") -> tuple[dict, dict]:
        """Dense test protocol (TEST_CLIPS uniformly spaced clips per video, softmax averaged) on ``entries``;
        undecodable videos fail the run unless allowed."""
        ds = self.test_dataset(cfg, data_root, entries, norm)
        out = predict_dense(model, ds, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA.NUM_WORKERS, ctx=ctx,
                            amp=cfg.TRAIN.AMP, progress=progress)
        values, labels, failures = collect_failures(out.values, out.labels)
        metrics = video_accuracy(values, labels, self.num_outputs(cfg))
        return metrics, {"test_videos": int(len(labels)), "test_failures": failures,
                         "failed_test_videos": ds.failed_keys()[:50] if failures else [],
                         "short_videos": {"test": short_video_summary(ds, split)}}

    def knn(self, job: Job, model, data: RecognitionData) -> tuple[dict, dict]:
        """Frozen features (mean over the dense test clips) of train and test videos; cosine k-NN votes."""
        cfg = job.cfg
        feats = {}
        for name, split in (("train", data.train), ("test", data.test)):
            ds = self.test_dataset(cfg, job.data_root, split.entries, data.norm)
            out = extract_features(model, ds, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA.NUM_WORKERS,
                                   ctx=job.ctx, amp=cfg.TRAIN.AMP, progress=job.progress)
            feats[name] = collect_failures(out.values, out.labels)
        (train_x, train_y, f1), (test_x, test_y, f2) = feats["train"], feats["test"]
        C = self.num_outputs(cfg)
        votes = knn_votes(train_x, train_y, test_x, cfg.KNN.K, num_classes=C, temperature=cfg.KNN.TEMPERATURE)
        return video_accuracy(votes, test_y, C), {"test_videos": int(len(test_y)), "test_failures": f2,
                                                  "train_feature_failures": f1, "failed_test_videos": []}

    # ------------------------------------------------------------------ record
    def reported_metrics(self, metrics: dict) -> dict:
        return {k: v for k, v in metrics.items() if k != "per_class_top1"}

    def data_record(self, data: RecognitionData, counts: dict) -> dict:
        splits = {"train": data.train.record()} if data.train is not None else {}
        short = {**data.short_videos, **counts.get("short_videos", {})}
        return {**splits, "test": data.test.record(), **counts, **({"short_videos": short} if short else {})}

    def deviations(self, job: Job, data: RecognitionData, counts: dict) -> list[str]:
        cfg = job.cfg
        if job.retest:
            return []
        out = []
        if cfg.TRAIN.MODE != "knn":
            out.append("reported model = last epoch (the original reported the best epoch on the test split)")
        if cfg.TRAIN.MODE == "linear":
            out.append("linear probe with frozen BatchNorm statistics (the original's statistics drifted)")
        if cfg.DATA.VAL_FRACTION > 0:
            out.append(f"trained on {len(data.train.entries)} videos: {cfg.DATA.VAL_FRACTION} of each class's training "
                       "videos held out for validation (val_split.txt); the reported model is still the last epoch")
        if data.train.missing or data.test.missing:
            out.append(f"{len(data.train.missing)} train and {len(data.test.missing)} test entries excluded for missing media")
        if counts.get("test_failures"):
            out.append(f"{counts['test_failures']} undecodable test videos excluded (DATA.ALLOW_TEST_FAILURES)")
        out += objective(cfg).deviations(cfg)
        if cfg.TRAIN.RECIPE != "severe":
            out.append(f"ViT recipe '{cfg.TRAIN.RECIPE}' (inferred, docs/protocol.md §15): SEVERE++ has not published "
                       "its transformer settings")
        if cfg.TRAIN.SCHEDULE == "warmup_cosine" and cfg.TRAIN.MODE != "knn" and warmup_epochs(cfg) < cfg.TRAIN.WARMUP_EPOCHS:
            out.append(f"lr warm-up shortened from {cfg.TRAIN.WARMUP_EPOCHS} to the run's {cfg.TRAIN.EPOCHS} epochs")
        if cfg.TRAIN.AMP != "off":
            out.append(f"mixed precision {cfg.TRAIN.AMP} (the original trained in fp32)")
        return out


def _check_label_space(dataset: str, num_classes: int, *splits: SplitData | None) -> None:
    """A run with ``MODEL.NUM_CLASSES`` set: every label of the lists it uses must fit the classifier."""
    for data, name in zip(splits, ("train", "test", "validation")):
        if data is None:
            continue
        bad = next((e for e in data.entries if e.label >= num_classes), None)
        if bad is not None:
            raise SevereError(f"MODEL.NUM_CLASSES {num_classes}: the {dataset} {name} list has label {bad.label} "
                              f"({bad.key}); set MODEL.NUM_CLASSES to at least {bad.label + 1} or 0 (the dataset's "
                              f"{get_dataset(dataset).num_classes})")


class ArrowOfTimeTask(RecognitionTask):
    """Forward vs reversed clips of a recognition dataset (2 outputs); videos shorter than one clip excluded."""

    name = "arrow_of_time"
    description = "arrow of time: forward vs reversed clips (ssl_benchmark task/arrow_of_time)"
    entry_points = {}

    def num_outputs(self, cfg: CfgNode) -> int:
        return 2

    def _long_enough(self, cfg: CfgNode, data_root: Path, entries, norm: Normalization, split: str):
        probe = clip_dataset(cfg.DATA.DATASET, data_root, entries, mode="test", num_frames=cfg.DATA.NUM_FRAMES,
                             fps=cfg.DATA.FPS, clips=1, crop=cfg.DATA.CROP, test_resize=cfg.DATA.TEST_RESIZE, norm=norm,
                             seed=cfg.SEED)
        kept, dropped = drop_short_videos(probe, cfg.DATA.NUM_FRAMES / cfg.DATA.FPS)
        log.info("arrow of time: %d %s videos shorter than one clip excluded", dropped, split)
        return kept

    def train_dataset(self, cfg: CfgNode, data_root: Path, entries, norm: Normalization):
        kept = self._long_enough(cfg, data_root, entries, norm, "training")
        return ArrowOfTime(super().train_dataset(cfg, data_root, kept, norm), cfg.SEED)

    def test_dataset(self, cfg: CfgNode, data_root: Path, entries, norm: Normalization):
        kept, dropped = drop_short_videos(super().test_dataset(cfg, data_root, entries, norm),
                                          cfg.DATA.NUM_FRAMES / cfg.DATA.FPS)
        log.info("arrow of time: %d test videos shorter than one clip excluded", dropped)
        return ArrowOfTime(super().test_dataset(cfg, data_root, kept, norm), cfg.SEED)


#: TRAIN.SCHEDULE -> builder(cfg, scale) where ``scale(lr)`` applies TRAIN.LR_SCALE_BATCH
SCHEDULE_BUILDERS = {
    "multistep": lambda cfg, scale: MultiStepLR(scale(cfg.TRAIN.LR), list(cfg.TRAIN.MILESTONES), cfg.TRAIN.GAMMA),
    "warmup_cosine": lambda cfg, scale: WarmupCosineLR(scale(cfg.TRAIN.LR), cfg.TRAIN.EPOCHS, warmup_epochs(cfg),
                                                       scale(cfg.TRAIN.MIN_LR), scale(cfg.TRAIN.WARMUP_START_LR)),
}

# EXPERIMENT.TASK of a recognition config -> the registered task that runs it
RECOGNITION_VARIANTS = {"classification": "recognition", "arrow_of_time": "arrow_of_time"}
