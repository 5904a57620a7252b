"""Two CPU processes under torchrun (gloo): DDP training and sharded evaluation equal a single process."""

import numpy as np
import pytest
import torch

from severe.engine import load_checkpoint, load_model_weights, predict_dense, read_jsonl
from severe.metrics import video_accuracy
from tests.helpers import NUM_CLASSES, TinyNet, ToyTest, torchrun_two_processes

WORKER = """
import numpy as np
from tests.helpers import TinyNet, ToyTrain, ToyTest
from severe.engine import (MultiStepLR, OptimizerSpec, Trainer, cleanup_distributed, init_distributed,
                           predict_dense, seed_everything)

ctx = init_distributed("cpu")
assert ctx.world_size == 2 and ctx.backend == "gloo", ctx
seed_everything(0)
model = TinyNet()
trainer = Trainer(model, ToyTrain(32), run_dir={run!r}, epochs=2, global_batch_size=8, optimizer=OptimizerSpec("adam"),
                  schedule=MultiStepLR(1e-2, [1], 0.3), seed=7, dist=ctx, progress=False, console=False)
assert trainer.batch_per_process == 4
trainer.fit()
out = predict_dense(model, ToyTest(n=13, k=3), batch_size=4, ctx=ctx, progress=False)
np.savez({out!r} + f"/rank{{ctx.rank}}.npz", values=out.values, labels=out.labels, indices=out.indices)
cleanup_distributed()
"""


@pytest.mark.slow
def test_two_process_gloo_training_and_evaluation_equal_single_process(tmp_path):
    run = tmp_path / "run"
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(run=str(run), out=str(tmp_path)))
    torchrun_two_processes(script, timeout=240)

    # one run directory written by rank 0 only; epoch statistics reduced over both ranks
    ckpt = load_checkpoint(run / "checkpoint_last.pt")
    assert not any(k.startswith("module.") for k in ckpt["model"])
    assert ckpt["setup"]["world_size"] == 2 and ckpt["setup"]["batch_per_process"] == 4
    epochs = read_jsonl(run / "metrics.jsonl", "epoch")
    assert [r["samples"] for r in epochs] == [32, 32] and [r["iterations"] for r in epochs] == [4, 4]
    assert [r["event"] for r in read_jsonl(run / "metrics.jsonl")] == ["start", "epoch", "epoch"]

    # evaluation: 13 videos over 2 ranks (shards 0-7 / 8-12, no padding) == single process, bit for bit
    model = TinyNet()
    load_model_weights(model, ckpt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the torchrun workers
    try:
        single = predict_dense(model, ToyTest(n=13, k=3), batch_size=4, progress=False)
    finally:
        torch.set_num_threads(threads)
    for rank in (0, 1):
        dist_out = np.load(tmp_path / f"rank{rank}.npz")
        assert dist_out["indices"].tolist() == list(range(13))
        assert np.array_equal(dist_out["values"], single.values)
        assert np.array_equal(dist_out["labels"], single.labels)
    assert video_accuracy(dist_out["values"], dist_out["labels"], NUM_CLASSES) == video_accuracy(single.values, single.labels, NUM_CLASSES)
