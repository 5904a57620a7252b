"""Tasks: one :class:`~severe.tasks.base.Task` per kind of experiment, registered in ``TASKS``, all run by
the one lifecycle in :mod:`severe.tasks.lifecycle`. ``ENTRY_POINTS`` (``severe run NAME``) is built from
the registered tasks."""

from __future__ import annotations

from severe.tasks.base import EntryPoint, Job, Task

TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task instance to the registry (its ``name`` must be new)."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    from severe.errors import SevereError

    if name not in TASKS:
        raise SevereError(f"unknown task '{name}'; known: {', '.join(TASKS)}")
    return TASKS[name]


def entry_points() -> dict[str, EntryPoint]:
    """``severe run`` command name -> entry point, over every registered task."""
    return {name: ep for task in TASKS.values() for name, ep in task.entry_points.items()}


def _register_builtin() -> None:
    from severe.tasks.ava import AvaTask
    from severe.tasks.charades import CharadesTask
    from severe.tasks.recognition import ArrowOfTimeTask, RecognitionTask
    from severe.tasks.repetition import RepetitionTask

    for cls in (RecognitionTask, ArrowOfTimeTask, AvaTask, CharadesTask, RepetitionTask):
        register_task(cls())


_register_builtin()

__all__ = ["TASKS", "Task", "Job", "EntryPoint", "register_task", "get_task", "entry_points"]
