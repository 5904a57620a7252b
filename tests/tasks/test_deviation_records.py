"""The deviations a run records (issue 12): TCLR's input convention in UCF-RC is a listed deliberate difference,
and Charades records no test-label difference (both codes label a test video with the union over the whole
video)."""

from __future__ import annotations

from types import SimpleNamespace

from severe.tasks import TASKS
from severe.tasks.base import Job
from severe.engine import DistContext


def _job(task: str, method: str, **cfg_changes) -> Job:
    cfg = TASKS[task].defaults()
    cfg.merge_from_list([x for kv in cfg_changes.items() for x in kv])
    return Job(cfg, method, {}, None, None, DistContext())


def test_repetition_lists_tclr_input_convention_only_for_tclr():
    data = SimpleNamespace(train=SimpleNamespace(missing=[]), test=SimpleNamespace(missing=[]), items=[])
    task = TASKS["repetition"]
    tclr = task.deviations(_job("repetition", "tclr", **{"DATA.CORRECT_CAPPED_COUNT": False}), data, {})
    gdt = task.deviations(_job("repetition", "gdt", **{"DATA.CORRECT_CAPPED_COUNT": False}), data, {})
    extra = [d for d in tclr if d not in gdt]
    assert len(extra) == 1 and "BGR" in extra[0] and "no normalisation" in extra[0] and "RGB" in extra[0]
    assert "docs/differences.md §30" in extra[0]


def test_charades_records_no_test_label_difference():
    for method in ("gdt", "tclr"):
        out = TASKS["charades"].deviations(_job("charades", method), None, {})
        assert out and not any("label" in d for d in out), out
