"""Shared train/eval engine: seeding, optimisers and schedules, DDP, checkpoints, logging, the training
loop and the dense test protocol. Everything takes explicit objects and numbers, never a config."""

from severe.engine.checkpointing import load_checkpoint, load_model_weights, save_checkpoint
from severe.engine.distributed import (
    DistContext,
    broadcast_buffers,
    cleanup_distributed,
    gather_by_index,
    init_distributed,
    per_process_batch,
    shard_range,
    unwrap_model,
    wrap_model,
)
from severe.engine.evaluate import AGGREGATORS, EvalOutput, extract_features, predict_dense
from severe.engine.freezing import MODES, backbone_digest, freeze_backbone, prepare_mode
from severe.engine.loaders import EpochLoader, build_eval_loader
from severe.engine.logger import RunLogger, read_jsonl
from severe.engine.optim import (
    OPTIMIZERS,
    SCHEDULES,
    ConstantLR,
    LRSchedule,
    MultiStepLR,
    OptimizerSpec,
    RelativeStepsLR,
    build_optimizer,
    build_schedule,
)
from severe.engine.runtime import resolve_runtime
from severe.engine.seeding import WorkerSeeder, configure_determinism, derive_seed, loader_generator, seed_epoch, seed_everything
from severe.engine.trainer import LAST_CHECKPOINT, BatchStep, StepContext, StepOutput, Trainer, classification_step

__all__ = [
    "AGGREGATORS", "BatchStep", "ConstantLR", "DistContext", "EpochLoader", "EvalOutput", "LAST_CHECKPOINT", "LRSchedule",
    "MODES", "MultiStepLR", "OPTIMIZERS", "OptimizerSpec", "RelativeStepsLR", "RunLogger", "SCHEDULES",
    "StepContext", "StepOutput", "Trainer", "WorkerSeeder", "backbone_digest", "broadcast_buffers", "build_eval_loader", "build_optimizer",
    "build_schedule", "classification_step", "cleanup_distributed", "configure_determinism", "derive_seed",
    "extract_features", "freeze_backbone", "gather_by_index", "init_distributed", "load_checkpoint",
    "load_model_weights", "loader_generator", "per_process_batch", "predict_dense", "prepare_mode",
    "read_jsonl", "resolve_runtime", "save_checkpoint", "seed_epoch", "seed_everything", "shard_range",
    "unwrap_model", "wrap_model",
]
