"""One recognition experiment, top to bottom: config -> data -> model -> train -> dense test -> results.

Run directory (one per experiment, initialisation and seed):
  config.yaml         the resolved config (defaults <- file <- init exceptions <- command line), written once
  init.json           the initial weights' metadata (method, arch, input convention, source sha256)
  train_subset.txt    the N-example subset, when one is used
  val_split.txt       the validation entries carved from training (DATA.VAL_FRACTION > 0)
  *_missing.txt       entries excluded for missing media (only with DATA.ALLOW_MISSING)
  metrics.jsonl, train.log, checkpoint_last.pt   written by the engine
  results.json        the final record (severe.results)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from fvcore.common.config import CfgNode

from severe.checkpoints.convert import Converted
from severe.checkpoints.weights import check_initialisation, SCRATCH_META, build_initialised_backbone, load_weights
from severe.config import load_config, to_plain, find_config as _find_config
from severe.configs import config_dir
from severe.data.readers.epic import read_epic_nouns
from severe.data.registry import dataset_dir, get_dataset
from severe.data.transforms import Normalization
from severe.engine import (
    DistContext,
    MultiStepLR,
    OptimizerSpec,
    extract_features,
    init_distributed,
    load_checkpoint,
    per_process_batch,
    predict_dense,
    seed_everything,
)
from severe.engine.precise_bn import PreciseBN
from severe.engine.trainer import LAST_CHECKPOINT, StepOutput, Trainer, TrainStep, classification_step
from severe.errors import SevereError
from severe.io import atomic_write_json, atomic_write_text
from severe.metrics.recognition import knn_votes, video_accuracy
from severe.models import ARCHITECTURES, AuxiliaryHead, VideoClassifier, build_backbone, linear_head
from severe.recognition.config import InitRule, flatten_settings, init_overrides, recognition_defaults, validate
from severe.recognition.data import (ArrowOfTime, SplitData, carve_validation, clip_dataset, collect_failures,
                                     drop_short_videos, prepare_split)
from severe.results import RESULTS_FILE, make_results, prepare_run_dir, results_target, write_results

log = logging.getLogger("severe.recognition")

CONFIG_DIR = config_dir("ssl_benchmark")
CONFIG_FILE, INIT_FILE = "config.yaml", "init.json"


def find_config(name: str | Path) -> Path:
    """A config path, or a name under ssl_benchmark/configs (``domain/ucf101`` or ``domain/ucf101.yaml``)."""
    return _find_config(name, CONFIG_DIR)


@dataclass
class Plan:
    """Everything a run needs, resolved before any data is touched."""

    cfg: CfgNode
    method: str
    weights: Converted | None
    rules: list[InitRule]


def plan_run(config: str | Path, init: str, weights: str | Path | None, overrides: list[str] = (),
             trust: bool = False, force: list[str] = ()) -> Plan:
    """Resolve the config (defaults <- file <- ``force`` <- the init's exceptions <- overrides) and the weights."""
    path = find_config(config)
    method = check_initialisation(init, weights)
    loaded = None if method == "scratch" else load_weights(weights, method=method, trust=trust)
    base = load_config(recognition_defaults(), path, list(force))
    rules = init_overrides(method, base.DATA.DATASET, base.TRAIN.MODE, base.DATA.NUM_EXAMPLES)
    cfg = load_config(recognition_defaults(), path, [*force, *flatten_settings(rules), *overrides])
    get_dataset(cfg.DATA.DATASET)  # unknown dataset -> clear error before anything else
    validate(cfg)
    _check_arch(cfg.MODEL.ARCH, loaded)
    return Plan(cfg, method, loaded, rules)


def _check_arch(arch: str, weights: Converted | None) -> None:
    if not arch:
        return
    if arch not in ARCHITECTURES:
        raise SevereError(f"MODEL.ARCH '{arch}' is not a registered architecture; known: {', '.join(ARCHITECTURES)}")
    if weights is not None and weights.meta["arch"] != arch:
        raise SevereError(f"MODEL.ARCH '{arch}' differs from the architecture of the '{weights.meta.get('method')}' "
                          f"weights ({weights.meta['arch']}); drop MODEL.ARCH or use --init scratch")


def input_normalization(cfg: CfgNode, meta: dict) -> Normalization:
    """The checkpoint's convention, or the task constants DATA.MEAN/STD (TCLR's null normalisation wins)."""
    return Normalization.from_meta(meta, list(cfg.DATA.MEAN) or None, list(cfg.DATA.STD) or None)


def default_run_dir(cfg: CfgNode, method: str) -> Path:
    return Path("runs") / cfg.EXPERIMENT.ID / method / f"seed{cfg.SEED}"


# ------------------------------------------------------------------------------------------- model

def build_model(arch: str, weights: Converted | None, num_classes: int, head_init: str, dropout: float,
                noun_classes: int = 0) -> VideoClassifier:
    """Backbone + head: one linear classifier, or with ``noun_classes`` the verb + noun :class:`AuxiliaryHead`."""
    backbone = build_initialised_backbone(weights) if weights is not None else build_backbone(arch)
    if noun_classes:
        head = AuxiliaryHead(backbone.feature_dim, num_classes, noun_classes, init=head_init, dropout=dropout)
    else:
        head = linear_head(backbone.feature_dim, num_classes, init=head_init, dropout=dropout)
    return VideoClassifier(backbone, head)


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


def _noun_labels(cfg: CfgNode, data_root: Path, train: SplitData) -> torch.Tensor:
    """The noun class of every training entry (index = the dataset's video index); checked against NOUN_HEAD."""
    nouns = read_epic_nouns(dataset_dir(data_root, cfg.DATA.DATASET), "train")
    labels = torch.tensor([nouns[e.key] for e in train.entries], dtype=torch.long)
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < cfg.MODEL.NOUN_HEAD:
        raise SevereError(f"EK-100 noun classes reach {int(labels.max())}, beyond MODEL.NOUN_HEAD={cfg.MODEL.NOUN_HEAD} "
                          f"classes; set MODEL.NOUN_HEAD to the number of noun classes (300)")
    return labels


def _num_outputs(cfg: CfgNode) -> int:
    return 2 if cfg.EXPERIMENT.TASK == "arrow_of_time" else get_dataset(cfg.DATA.DATASET).num_classes


def _init_meta(plan: Plan) -> dict:
    meta = dict(plan.weights.meta) if plan.weights is not None else dict(SCRATCH_META)
    if plan.cfg.MODEL.ARCH:
        meta["arch"] = plan.cfg.MODEL.ARCH  # scratch (checked against the weights otherwise)
    meta["rules"] = [{"why": r.why, "settings": r.settings} for r in plan.rules]
    return meta


# ------------------------------------------------------------------------------------------- run

def run(plan: Plan, data_root: Path, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train (unless kNN) and test one experiment; returns the results record (written by rank 0)."""
    cfg, ctx = plan.cfg, init_distributed()
    run_dir = Path(run_dir)
    if ctx.is_main:
        prepare_run_dir(run_dir, resume=resume)
        _write_or_check_config(run_dir, cfg)
        atomic_write_json(run_dir / INIT_FILE, _init_meta(plan))
    resume = resume and (run_dir / LAST_CHECKPOINT).exists()  # killed before the first epoch ended: start afresh
    seed_everything(cfg.SEED)
    meta = _init_meta(plan)
    norm = input_normalization(cfg, meta)
    data_root = Path(data_root)
    train = prepare_split(cfg.DATA.DATASET, data_root, "train", num_examples=cfg.DATA.NUM_EXAMPLES, seed=cfg.SEED,
                          allow_missing=cfg.DATA.ALLOW_MISSING, run_dir=run_dir if ctx.is_main else None)
    test = prepare_split(cfg.DATA.DATASET, data_root, "test", num_examples=0, seed=cfg.SEED,
                         allow_missing=cfg.DATA.ALLOW_MISSING, run_dir=run_dir if ctx.is_main else None)
    val = None
    if cfg.DATA.VAL_FRACTION > 0:
        train, val = carve_validation(cfg.DATA.DATASET, data_root, train, fraction=cfg.DATA.VAL_FRACTION, seed=cfg.SEED,
                                      run_dir=run_dir if ctx.is_main else None)
    model = build_model(meta["arch"], plan.weights, _num_outputs(cfg), cfg.MODEL.HEAD_INIT, cfg.MODEL.DROPOUT,
                        cfg.MODEL.NOUN_HEAD)
    extra: dict = {}
    if cfg.TRAIN.MODE == "knn":
        metrics, counts = _knn(model, cfg, data_root, train, test, norm, ctx, progress)
    else:
        train_ds = _train_dataset(cfg, data_root, train, norm)
        after_epoch = _after_epoch_hooks(cfg, data_root, train_ds, val, norm, ctx)
        step = (verb_noun_step(_num_outputs(cfg), _noun_labels(cfg, data_root, train)) if cfg.MODEL.NOUN_HEAD
                else classification_step)
        trainer = Trainer(
            model, train_ds, run_dir=run_dir, epochs=cfg.TRAIN.EPOCHS, global_batch_size=cfg.TRAIN.BATCH_SIZE,
            optimizer=OptimizerSpec(cfg.TRAIN.OPTIMIZER, weight_decay=cfg.TRAIN.WEIGHT_DECAY,
                                    momentum=cfg.TRAIN.MOMENTUM, nesterov=cfg.TRAIN.NESTEROV),
            schedule=MultiStepLR(cfg.TRAIN.LR, list(cfg.TRAIN.MILESTONES), cfg.TRAIN.GAMMA), seed=cfg.SEED,
            mode=cfg.TRAIN.MODE, head_names=("head",), num_workers=cfg.DATA.NUM_WORKERS,
            accum_steps=cfg.TRAIN.ACCUM_STEPS, dist=ctx, amp=cfg.TRAIN.AMP, channels_last=cfg.TRAIN.CHANNELS_LAST,
            compile=cfg.TRAIN.COMPILE, tensorboard=cfg.TRAIN.TENSORBOARD, progress=progress,
            checkpoint_every=cfg.TRAIN.CHECKPOINT_EVERY,
            val_fn=after_epoch, freeze_bn_stats=cfg.TRAIN.FREEZE_BN_STATS, step_fn=step,
        )
        history = trainer.fit(resume=resume)
        if val is not None:
            extra["val"] = {"videos": len(val.entries), "sha256": val.sha256,
                            "last_epoch": _val_metrics(history[-1]["val"]) if history else None}
        extra["train"] = {"epochs": len(history), "final_train_loss": history[-1].get("train_loss") if history else None,
                          "decode_failures": train_ds.failures.count, "failed_videos": train_ds.failed_keys()[:20],
                          "runtime": trainer.runtime.record}
        metrics, counts = evaluate(model, cfg, data_root, test.entries, norm, ctx, progress)
    results = _results(plan, cfg, metrics, counts, train, test, extra)
    if ctx.is_main:
        write_results(run_dir, results)
        log.info("%s %s: video@1 %.2f%% (%d test videos) -> %s", cfg.EXPERIMENT.ID, plan.method,
                 results["primary"]["value"], counts["test_videos"], Path(run_dir) / RESULTS_FILE)
    return results


def _write_or_check_config(run_dir: Path, cfg: CfgNode) -> None:
    text = yaml.safe_dump(to_plain(cfg), sort_keys=True)
    path = Path(run_dir) / CONFIG_FILE
    if path.exists():
        if path.read_text(encoding="utf-8") != text:
            raise SevereError(f"{path} differs from the config of this command; resume with the same config and "
                              f"overrides, or choose another output directory")
        return
    atomic_write_text(path, text)


def _train_dataset(cfg: CfgNode, data_root: Path, train: SplitData, norm: Normalization):
    entries = train.entries
    if cfg.EXPERIMENT.TASK == "arrow_of_time":
        probe = clip_dataset(cfg.DATA.DATASET, data_root, entries, mode="test", num_frames=cfg.DATA.NUM_FRAMES,
                             fps=cfg.DATA.FPS, clips=1, crop=cfg.DATA.CROP, test_resize=cfg.DATA.TEST_RESIZE, norm=norm, seed=cfg.SEED)
        entries, dropped = drop_short_videos(probe, cfg.DATA.NUM_FRAMES / cfg.DATA.FPS)
        log.info("arrow of time: %d training videos shorter than one clip excluded", dropped)
    ds = clip_dataset(cfg.DATA.DATASET, data_root, entries, mode="train", num_frames=cfg.DATA.NUM_FRAMES, fps=cfg.DATA.FPS,
                      clips=cfg.DATA.TRAIN_CLIPS_PER_VIDEO, crop=cfg.DATA.CROP, test_resize=cfg.DATA.TEST_RESIZE,
                      norm=norm, seed=cfg.SEED, crop_scale=tuple(cfg.DATA.TRAIN_CROP_SCALE), color_jitter=cfg.DATA.COLOR_JITTER,
                      short_side=tuple(cfg.DATA.TRAIN_SHORT_SIDE) or None)
    return ArrowOfTime(ds, cfg.SEED) if cfg.EXPERIMENT.TASK == "arrow_of_time" else ds


def _test_dataset(cfg: CfgNode, data_root: Path, entries, norm: Normalization, clips: int | None = None):
    ds = clip_dataset(cfg.DATA.DATASET, data_root, entries, mode="test", num_frames=cfg.DATA.NUM_FRAMES, fps=cfg.DATA.FPS,
                      clips=clips or cfg.DATA.TEST_CLIPS, crop=cfg.DATA.CROP, test_resize=cfg.DATA.TEST_RESIZE, norm=norm,
                      seed=cfg.SEED, allow_failures=cfg.DATA.ALLOW_TEST_FAILURES)
    if cfg.EXPERIMENT.TASK == "arrow_of_time":
        kept, dropped = drop_short_videos(ds, cfg.DATA.NUM_FRAMES / cfg.DATA.FPS)
        log.info("arrow of time: %d test videos shorter than one clip excluded", dropped)
        ds = ArrowOfTime(clip_dataset(cfg.DATA.DATASET, data_root, kept, mode="test", num_frames=cfg.DATA.NUM_FRAMES,
                                      fps=cfg.DATA.FPS, clips=clips or cfg.DATA.TEST_CLIPS, crop=cfg.DATA.CROP,
                                      test_resize=cfg.DATA.TEST_RESIZE, norm=norm, seed=cfg.SEED,
                                      allow_failures=cfg.DATA.ALLOW_TEST_FAILURES), cfg.SEED)
    return ds


def evaluate(model, cfg: CfgNode, data_root: Path, entries, norm: Normalization, ctx: DistContext,
             progress: bool = True) -> tuple[dict, dict]:
    """Dense test protocol (protocol.md §4) on the test entries; undecodable videos fail the run unless allowed."""
    ds = _test_dataset(cfg, data_root, entries, norm)
    out = predict_dense(model, ds, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA.NUM_WORKERS, ctx=ctx,
                        amp=cfg.TRAIN.AMP, progress=progress)
    values, labels, failures = collect_failures(out.values, out.labels)
    metrics = video_accuracy(values, labels, _num_outputs(cfg))
    return metrics, {"test_videos": int(len(labels)), "test_failures": failures,
                     "failed_test_videos": ds.failed_keys()[:50] if failures else []}


_VAL_KEYS = ("video_top1", "video_top5", "mean_class_accuracy")


def _val_metrics(record: dict) -> dict:
    return {k: v for k, v in record.items() if k in _VAL_KEYS}


def _after_epoch_hooks(cfg: CfgNode, data_root: Path, train_ds, val: SplitData | None, norm: Normalization,
                       ctx: DistContext):
    """The trainer's ``val_fn``: precise BN after the last epoch (TRAIN.PRECISE_BN_BATCHES), then validation
    metrics on the held-out split (DATA.VAL_FRACTION); None when neither is configured."""
    precise = None
    if cfg.TRAIN.PRECISE_BN_BATCHES:
        precise = PreciseBN(train_ds, batch_size=per_process_batch(cfg.TRAIN.BATCH_SIZE, ctx.world_size),
                            num_batches=cfg.TRAIN.PRECISE_BN_BATCHES, period=0, epochs=cfg.TRAIN.EPOCHS, seed=cfg.SEED,
                            num_workers=cfg.DATA.NUM_WORKERS, device=ctx.device)
    if precise is None and val is None:
        return None

    def after_epoch(model, epoch: int) -> dict:
        record = precise(model, epoch) if precise is not None else {}
        if val is not None:  # dense protocol, no progress bar; logged, never used to pick a model
            metrics, _ = evaluate(model, cfg, data_root, val.entries, norm, ctx, progress=False)
            record.update(_val_metrics(metrics))
        return record

    return after_epoch


def _knn(model, cfg: CfgNode, data_root: Path, train: SplitData, test: SplitData, norm: Normalization,
         ctx: DistContext, progress: bool) -> tuple[dict, dict]:
    """Frozen features (mean over the dense test clips) of train and test videos; cosine k-NN votes."""
    feats = {}
    for name, split in (("train", train), ("test", test)):
        ds = _test_dataset(cfg, data_root, split.entries, norm)
        out = extract_features(model, ds, batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA.NUM_WORKERS, ctx=ctx,
                               amp=cfg.TRAIN.AMP, progress=progress)
        feats[name] = collect_failures(out.values, out.labels)
    (train_x, train_y, f1), (test_x, test_y, f2) = feats["train"], feats["test"]
    C = _num_outputs(cfg)
    votes = knn_votes(train_x, train_y, test_x, cfg.KNN.K, num_classes=C, temperature=cfg.KNN.TEMPERATURE)
    return video_accuracy(votes, test_y, C), {"test_videos": int(len(test_y)), "test_failures": f2,
                                              "train_feature_failures": f1, "failed_test_videos": []}


def _deviations(cfg: CfgNode, train: SplitData, test: SplitData, counts: dict) -> list[str]:
    out = []
    if cfg.TRAIN.MODE != "knn":
        out.append("reported model = last epoch (the original reported the best epoch on the test split)")
    if cfg.TRAIN.MODE == "linear":
        out.append("linear probe with frozen BatchNorm statistics (the original's statistics drifted)")
    if cfg.DATA.VAL_FRACTION > 0:
        out.append(f"trained on {len(train.entries)} videos: {cfg.DATA.VAL_FRACTION} of each class's training videos "
                   "held out for validation (val_split.txt); the reported model is still the last epoch")
    if train.missing or test.missing:
        out.append(f"{len(train.missing)} train and {len(test.missing)} test entries excluded for missing media")
    if counts.get("test_failures"):
        out.append(f"{counts['test_failures']} undecodable test videos excluded (DATA.ALLOW_TEST_FAILURES)")
    if cfg.DATA.DATASET == "ek100" and not cfg.MODEL.NOUN_HEAD:
        out.append("EK-100: verb head only (the original also trained an auxiliary noun head)")
    if cfg.TRAIN.AMP != "off":
        out.append(f"mixed precision {cfg.TRAIN.AMP} (the original trained in fp32)")
    return out


def _results(plan: Plan, cfg: CfgNode, metrics: dict, counts: dict, train: SplitData, test: SplitData, extra: dict) -> dict:
    metrics = {k: v for k, v in metrics.items() if k != "per_class_top1"}
    return make_results(
        experiment_id=cfg.EXPERIMENT.ID, task=cfg.EXPERIMENT.TASK, dataset=cfg.DATA.DATASET, factor=cfg.EXPERIMENT.FACTOR,
        mode=cfg.TRAIN.MODE, init_method=plan.method, metrics=metrics, primary_metric="video_top1",
        primary_value=round(100.0 * metrics["video_top1"], 4), higher_is_better=True, seed=cfg.SEED, config=to_plain(cfg),
        data={"train": train.record(), "test": test.record(), **counts},
        deviations=_deviations(cfg, train, test, counts),
        extra={"init": _init_meta(plan), **extra},
    )


# ------------------------------------------------------------------------------------------- test only

def retest_run(run_dir: Path, data_root: Path, progress: bool = True) -> dict:
    """Re-test a trained run directory: its own config, architecture and last-epoch weights only."""
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, INIT_FILE, LAST_CHECKPOINT):
        if not (run_dir / name).is_file():
            raise SevereError(f"{run_dir} is not a trained run directory: {name} is missing")
    cfg = load_config(recognition_defaults(), run_dir / CONFIG_FILE)
    if cfg.TRAIN.MODE == "knn":
        raise SevereError(f"{run_dir} is a kNN run: it has no trained weights to test; run it again instead")
    meta = json.loads((run_dir / INIT_FILE).read_text(encoding="utf-8"))
    ckpt = load_checkpoint(run_dir / LAST_CHECKPOINT)
    if ckpt["epoch"] + 1 != cfg.TRAIN.EPOCHS:
        raise SevereError(f"{run_dir}: training stopped after epoch {ckpt['epoch'] + 1} of {cfg.TRAIN.EPOCHS}; "
                          f"resume it first (same command with --resume)")
    model = build_model(meta["arch"], None, _num_outputs(cfg), cfg.MODEL.HEAD_INIT, cfg.MODEL.DROPOUT, cfg.MODEL.NOUN_HEAD)
    model.load_state_dict(ckpt["model"], strict=True)
    ctx = init_distributed()
    norm = input_normalization(cfg, meta)
    test = prepare_split(cfg.DATA.DATASET, Path(data_root), "test", num_examples=0, seed=cfg.SEED,
                         allow_missing=cfg.DATA.ALLOW_MISSING, run_dir=None)
    metrics, counts = evaluate(model, cfg, Path(data_root), test.entries, norm, ctx, progress)
    plan = Plan(cfg, meta["method"], None, [])
    record = make_results(
        experiment_id=cfg.EXPERIMENT.ID, task=cfg.EXPERIMENT.TASK, dataset=cfg.DATA.DATASET, factor=cfg.EXPERIMENT.FACTOR,
        mode=cfg.TRAIN.MODE, init_method=plan.method, metrics={k: v for k, v in metrics.items() if k != "per_class_top1"},
        primary_metric="video_top1", primary_value=round(100.0 * metrics["video_top1"], 4), higher_is_better=True,
        seed=cfg.SEED, config=to_plain(cfg), data={"test": test.record(), **counts}, deviations=[], extra={"init": meta},
    )
    if ctx.is_main:
        atomic_write_json(results_target(run_dir), record)
    return record


