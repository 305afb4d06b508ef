"""The task registry: every task the lab, the CLI and the chapters name.

``TASKS`` maps a name to a ready-built :class:`~annotated.tasks.base.Task`
instance, so a task registered with arguments keeps them:
``"addition_reversed"`` is ``AdditionTask(reverse_digits=True)`` and
``get_task("addition_reversed")`` returns exactly that object.
:func:`register_task` takes an instance (built with whatever arguments you
like) or, as a decorator, a ``Task`` subclass, which it instantiates with no
arguments. User code registers its own tasks the same way, e.g. from a
``--plugins`` file::

    register_task("copy_3", CopyTask(n_symbols=3))
    get_task("copy_3")(2, 4, 0)  # Batch of 2 problems of length 4, seed 0

This module sits above the task families and imports them; none of them
imports it.
"""

from __future__ import annotations

import re

from annotated.tasks.arithmetic import (
    AdditionTask,
    ModularRunningSumTask,
    ParityTask,
)
from annotated.tasks.base import Task
from annotated.tasks.corpus import load_tiny_shakespeare
from annotated.tasks.dates import DateTask
from annotated.tasks.extrapolation import CopyEOSTask, ReversedAdditionTask
from annotated.tasks.matching import (
    AssociativeRecallTask,
    ContainsPatternTask,
    KBackTask,
    LongRangeMatchTask,
)
from annotated.tasks.sequences import CopyTask, ReverseTask, SortTask
from annotated.tasks.text import TextDataset

TASKS: dict[str, Task] = {}


def register_task(name: str, task=None, *, replace: bool = False):
    """Add a task under ``name``, as an instance or a decorated class.

    ``register_task("mine", MyTask())``, or as a decorator on a ``Task``
    subclass (instantiated with no arguments): ``@register_task("mine")``. A
    taken name raises ValueError unless ``replace=True``."""
    if not isinstance(name, str) or not re.fullmatch(
        r"[A-Za-z0-9_\-]+", name
    ):
        raise ValueError(
            f"a task name is letters, digits, '_' or '-', got {name!r}"
        )

    def add(obj):
        instance = obj() if isinstance(obj, type) else obj
        if not isinstance(instance, Task):
            raise TypeError(
                "register_task needs a Task instance or subclass, "
                f"got {type(instance).__name__}"
            )
        if name in TASKS and not replace:
            raise ValueError(
                f"a task named {name!r} is already registered; choose "
                f"another name (taken: {', '.join(sorted(TASKS))}) "
                "or pass replace=True"
            )
        TASKS[name] = instance
        return obj

    return add if task is None else add(task)


def get_task(name: str | Task) -> Task:
    """The task registered as ``name``; a Task instance is returned as is."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(
            f"unknown task {name!r}; valid names: {', '.join(sorted(TASKS))}"
        )
    return TASKS[name]


register_task("copy", CopyTask())
register_task("reverse", ReverseTask())
register_task("sort", SortTask())
register_task("addition", AdditionTask())
register_task("addition_reversed", AdditionTask(reverse_digits=True))
register_task("running_sum", ModularRunningSumTask())
register_task("parity", ParityTask())
register_task("k_back", KBackTask())
register_task("contains_pattern", ContainsPatternTask())
register_task("long_range_match", LongRangeMatchTask())
register_task("associative_recall", AssociativeRecallTask())
# Kazemnejad et al. 2023: copy, then EOS
register_task("copy_eos", CopyEOSTask())
# one symbol n times, then EOS: counting
register_task("counting_copy", CopyEOSTask(repeated=True))
# Cho et al. 2024
register_task(
    "addition_coupled",
    ReversedAdditionTask(end_marker=True, position_ids="coupled"),
)
# without 0 $ per operand
register_task(
    "addition_coupled_nomarker", ReversedAdditionTask(position_ids="coupled")
)
# McLeish et al. 2024
register_task("addition_abacus", ReversedAdditionTask(position_ids="abacus"))
# baselines: 0…T−1
register_task(
    "addition_marked",
    ReversedAdditionTask(end_marker=True, position_ids="none"),
)
# human dates → ISO 8601, with held-out forms and years (train_length 1)
register_task("dates", DateTask())
# reads the corpus on first use
register_task("tiny_shakespeare", TextDataset(load_tiny_shakespeare))
