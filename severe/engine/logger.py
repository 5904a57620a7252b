"""Run logging: console (through tqdm), an append-only text log, append-only JSON lines and optional
TensorBoard (docs/differences.md §23). Only the main process writes; the others get a silent logger."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["RunLogger", "read_jsonl"]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_jsonl(path: str | os.PathLike, event: str | None = None) -> list[dict]:
    """Records of a JSON-lines file (optionally only one event type); [] if the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if event is None or r.get("event") == event]


class RunLogger:
    """Writes ``<run_dir>/train.log``, ``<run_dir>/metrics.jsonl`` and ``<run_dir>/tensorboard/``.

    Files are opened in append mode for every write: nothing is ever truncated. ``purge_step`` (resume)
    makes TensorBoard discard events a crashed run wrote after the last checkpoint.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        enabled: bool = True,
        console: bool = True,
        tensorboard: bool = False,
        purge_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.enabled, self.console = enabled, console
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.text_path = self.run_dir / "train.log"
        self._tb = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge_step)

    def info(self, message: str) -> None:
        """A human-readable line on the console and in train.log."""
        if not self.enabled:
            return
        if self.console:
            tqdm.write(f"[severe] {message}")
        with open(self.text_path, "a", encoding="utf-8") as f:
            f.write(f"{_now()} {message}\n")

    def record(self, event: str, **fields: Any) -> dict:
        """Append one JSON line ``{"event": event, **fields, "time": ...}`` to metrics.jsonl."""
        line = {"event": event, **fields, "time": _now()}
        if self.enabled:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return line

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        """TensorBoard scalars (no-op without TensorBoard)."""
        if self._tb is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{prefix}{name}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
