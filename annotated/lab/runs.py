"""Runs: train one experiment into a dated folder, and continue one that
stopped.

:func:`run` writes ``<out_dir>/<YYYYmmdd-HHMMSS>_<name>/``:

- ``config.yaml``: the resolved config and the environment (library, torch,
  python, device, git commit)
- ``metrics.csv``: one row per logged step; ``eval.csv``: one row per
  evaluation and length
- ``model.pt``: weights and config
  (:func:`annotated.models.transformer.load_model` reads it), and the
  optimizer and RNG state
- ``*.png``: loss, accuracy, gradient norms, accuracy vs length, attention
  maps
- ``report.json``: status, in-distribution and per-length accuracy,
  generalisation gap, time, size, and the exact match on each held-out
  split a task names (``eval_splits``); ``report.md``: the same for people
- ``tensorboard/`` with ``tracker: tensorboard`` (``wandb/`` with
  ``tracker: wandb``): the same metrics (:mod:`annotated.lab.trackers`)

The whole config is checked before any folder exists, so a bad config leaves
nothing behind. Folders are never overwritten (a taken name gets ``-2``,
``-3``…) and every file is written to a temporary name and moved into place,
so no file is ever half-written. report.json says ``"running"`` while
training; a run that fails keeps its folder, marked ``"failed"`` with the
error and the metrics so far. A run stopped by Ctrl-C, by SIGTERM (turned into
the same KeyboardInterrupt while a run trains) or by a divergence writes its
last good state to model.pt before it stops and is marked ``"interrupted"`` or
``"diverged"``; :func:`resume` continues any of them in the same folder,
changing the training fields a run may change mid-run if asked
(:mod:`annotated.lab.resuming`). No exit leaves report.json ``"running"``: a
stop after the last step leaves it ``"completed"``. While a run trains, it
holds the folder's lock (:mod:`annotated.lab.folders`); under torchrun, rank
0 alone writes the folder (:mod:`annotated.lab.ranks`).
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from annotated.core.atomic import write_atomic
from annotated.lab.config import as_config
from annotated.lab.folders import environment, new_folder, run_lock
from annotated.lab.ranks import read_on_rank_zero, train_beside_rank_zero
from annotated.lab.reports import kept, write_report
from annotated.lab.resuming import check_resumable
from annotated.lab.trackers import open_tracker
from annotated.lab.validation import Resolved, resolve
from annotated.models.checkpoints import write_checkpoint
from annotated.models.summary import count_parameters
from annotated.training.distributed import current_ranks
from annotated.training.evaluation import evaluate_splits
from annotated.training.history import History
from annotated.training.loop import TrainingDiverged, resolve_device, train


def save_checkpoint(path: Path, resolved: Resolved, state: dict) -> None:
    """model.pt: loadable by ``annotated.models.transformer.load_model``, plus
    the state :func:`resume` needs."""
    state = dict(state)
    write_checkpoint(
        path, resolved.model_config, state.pop("model"), training_state=state
    )


def run(
    config,
    out_dir="experiments",
    *,
    progress: bool = False,
    callback=None,
    _folder: Path | None = None,
) -> Path:
    """Train one experiment into a new run folder and return its path (see the
    module docstring). Errors in the config raise ValueError before any folder
    is made; a failure during training re-raises after marking the folder's
    report ``failed``. ``callback(kind, row)`` sees every logged step
    (``kind == "step"``) and evaluation row as it is made."""
    config = as_config(config)
    if config.grid:
        raise ValueError(
            "this config has a grid: run it as a sweep (sweep(), or python "
            "-m annotated sweep CONFIG), or remove grid"
        )
    resolved = resolve(config)
    folder = current_ranks().from_main(  # under torchrun: rank 0 makes it
        lambda: _folder or new_folder(Path(out_dir), config.name)
    )
    return _train_into(folder, resolved, progress=progress, callback=callback)


def resume(
    folder, *, changes=None, progress: bool = False, callback=None
) -> Path:
    """Continue an interrupted, diverged or failed run from its last
    checkpoint (model.pt) in its own folder; ``changes``: new values of the
    mid-run training fields (:mod:`annotated.lab.resuming`)."""
    resolved, state = read_on_rank_zero(
        lambda: check_resumable(folder, changes)
    )
    return _train_into(
        Path(folder),
        resolved,
        progress=progress,
        callback=callback,
        resume_state=state,
    )


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill PID``, a scheduler's stop) raises
    KeyboardInterrupt as Ctrl-C does, so training saves its last good state;
    later SIGTERMs are ignored until the block ends (SIGKILL does not). Only
    the main thread can set a handler; elsewhere, and among several ranks
    (where signals ask every rank to stop), the block runs unchanged."""
    main = threading.current_thread() is threading.main_thread()
    if not main or current_ranks().size > 1:
        yield
        return

    def interrupt(signum, frame):
        # one is enough: a second must not cut the save short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train_into(
    folder: Path, resolved: Resolved, *, progress, callback, resume_state=None
) -> Path:
    if not current_ranks().is_main:  # rank 0 alone writes the folder
        return train_beside_rank_zero(folder, resolved, resume_state)
    with run_lock(folder), sigterm_as_interrupt():
        try:
            return _train_locked(
                folder,
                resolved,
                progress=progress,
                callback=callback,
                resume_state=resume_state,
            )
        except BaseException as error:
            # the command line names it in its message
            error.run_folder = folder
            raise


def _train_locked(
    folder: Path, resolved: Resolved, *, progress, callback, resume_state=None
) -> Path:
    device = resolve_device(resolved.train_config.device)
    info = {
        "name": resolved.config.name,
        "task": resolved.config.task,
        "parameters": None,
        "train_length": list(resolved.lengths),
        "eval_lengths": resolved.eval_lengths,
        "device": str(device),
    }
    began, tracker, history = time.perf_counter(), None, None
    cpu_began = time.process_time()  # this process's CPU time, all threads
    # what a failure keeps
    live = (
        History.from_dict(resume_state["history"])
        if resume_state
        else History()
    )

    def record(kind, row):
        (live.steps if kind == "step" else live.evals).append(row)
        for listener in (tracker, callback):
            if listener:
                listener(kind, row)

    # the step model.pt holds
    saved = {"step": resume_state["step"] if resume_state else None}

    def save(state):
        save_checkpoint(folder / "model.pt", resolved, state)
        saved["step"] = state["step"]

    # from here on every exit leaves a report that is not "running"
    try:
        write_atomic(
            folder / "config.yaml",
            yaml.safe_dump(
                resolved.to_dict() | {"environment": environment(device)},
                sort_keys=False,
                allow_unicode=True,
            ),
        )
        model = resolved.build_model()
        info["parameters"] = count_parameters(model)
        write_report(folder, info | {"status": "running"}, None)
        tracker = open_tracker(
            resolved.config.tracker,
            folder,
            run_name=resolved.config.name,
            config=resolved.to_dict(),
        )
        history = train(
            model,
            resolved.task,
            train_length=list(resolved.lengths),
            eval_lengths=resolved.eval_lengths,
            config=resolved.train_config,
            progress=progress,
            callback=record,
            resume_state=resume_state,
            checkpoint=save,
        )
        splits = evaluate_splits(  # a task's held-out splits, if any
            model,
            resolved.task,
            resolved.lengths[1],
            resolved.train_config,
            device,
        )
        if splits:
            info["splits"] = {k: kept(row) for k, row in splits.items()}
        info |= {"status": "completed", "error": None}
        tracker, closing = None, tracker
        if closing:
            closing.close()
        info["wall_time_s"] = time.perf_counter() - began
        info["cpu_time_s"] = time.process_time() - cpu_began
        write_report(
            folder,
            info,
            history,
            model=model.cpu(),
            task=resolved.task,
            length=resolved.lengths[1],
        )
    except BaseException as error:
        if history is None:  # stopped before training had finished
            history = getattr(error, "history", None) or live
            history.meta["steps_done"] = (
                history.steps[-1]["step"] if history.steps else 0
            )
            info |= {
                "status": stop_status(error),
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
                "checkpoint_step": saved["step"],
            }
        info["wall_time_s"] = time.perf_counter() - began
        info["cpu_time_s"] = time.process_time() - cpu_began
        write_report(folder, info, history)
        raise
    finally:
        if tracker:
            tracker.close()
    return folder


def stop_status(error: BaseException) -> str:
    """What report.json says of a run that ``error`` stopped while it
    trained."""
    if isinstance(error, TrainingDiverged):
        return "diverged"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return "failed"
