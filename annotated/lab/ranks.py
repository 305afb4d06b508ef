"""The lab under torchrun: one run trained by several ranks
(:mod:`annotated.training.distributed`).

::

    torchrun --nproc_per_node 2 -m annotated train --task sort …
    torchrun --nproc_per_node 2 -m annotated resume experiments/<run>

Every rank reads the same command line and trains the same model; rank 0
alone makes the run folder and writes it (config, metrics, plots, model.pt,
report), evaluates, and, on ``resume``, reads the checkpoint and sends it to
the others (:func:`read_on_rank_zero`). The other ranks train beside it and
write nothing (:func:`train_beside_rank_zero`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from annotated.lab.validation import Resolved, resolve
from annotated.training.distributed import (
    check_examples_per_step,
    current_ranks,
)
from annotated.training.loop import train


def read_on_rank_zero(
    read: Callable[[], tuple[Resolved, dict]],
) -> tuple[Resolved, dict]:
    """``read()``, an experiment and its training state, called on rank 0
    and sent to every rank; ValueError before anything is written when
    these ranks would train on another number of examples per step than
    the run did. The task travels as its config (a plugin's task class
    cannot be sent): every other rank builds it again, as
    :func:`~annotated.lab.validation.resolve` does."""
    ranks = current_ranks()
    kept = {}

    def without_task():
        resolved, state = read()
        kept["task"] = resolved.task
        return replace(resolved, task=None), state

    resolved, state = ranks.from_main(without_task)
    task = kept.get("task") or resolve(resolved.config).task
    check_examples_per_step(state, resolved.train_config, ranks)
    return replace(resolved, task=task), state


def train_beside_rank_zero(
    folder: Path, resolved, resume_state: dict | None = None
) -> Path:
    """Train as a rank other than 0: the experiment rank 0 trains
    (``resolved``, a :class:`~annotated.lab.validation.Resolved`), from the
    same state, writing nothing; returns rank 0's ``folder``."""
    train(
        resolved.build_model(),
        resolved.task,
        train_length=list(resolved.lengths),
        eval_lengths=resolved.eval_lengths,
        config=resolved.train_config,
        resume_state=resume_state,
    )
    return folder
