"""Tasks: what a run learns and predicts (binary, instances, multiclass, regression), one module each.

``get_task(name_or_config)`` is the one way the rest of unetkit learns what a task means; nothing
else branches on the task's name. Adding a task: a ``Task`` subclass in a new module and one line here.
"""

from __future__ import annotations

from typing import Any

from unetkit.errors import InputError
from unetkit.tasks.base import OutputOptions, Result, Task
from unetkit.tasks.binary import BinaryTask
from unetkit.tasks.instances import InstancesTask
from unetkit.tasks.multiclass import MulticlassTask
from unetkit.tasks.regression import RegressionTask

TASKS: dict[str, Task] = {task.name: task for task in (
    BinaryTask(), InstancesTask(), MulticlassTask(), RegressionTask())}


def get_task(task: str | Any) -> Task:
    """The task named ``task`` (or the task of a ``RunConfig``); an InputError for unknown names."""
    name = task if isinstance(task, str) else task.task
    if name not in TASKS:
        raise InputError(f"unknown task '{name}'; choose one of {', '.join(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "OutputOptions", "Result", "Task", "get_task"]
