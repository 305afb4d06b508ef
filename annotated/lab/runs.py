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
  generalisation gap, time, size; ``report.md``: the same for people
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
``"diverged"``; :func:`resume` continues any of them in the same folder. While
a run trains, it holds the folder's lock (:mod:`annotated.lab.folders`).
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
from annotated.lab.config import ExperimentConfig, as_config, read_json_file
from annotated.lab.folders import (
    LOCK,
    environment,
    lock_holder,
    new_folder,
    run_lock,
)
from annotated.lab.reports import write_report
from annotated.lab.trackers import open_tracker
from annotated.lab.validation import Resolved, resolve
from annotated.models.checkpoints import read_checkpoint, write_checkpoint
from annotated.models.summary import count_parameters
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
    folder = _folder or new_folder(Path(out_dir), config.name)
    return _train_into(folder, resolved, progress=progress, callback=callback)


def resume(folder, *, progress: bool = False, callback=None) -> Path:
    """Continue an interrupted, diverged or failed run from its last
    checkpoint (model.pt) in its own folder."""
    resolved, state = check_resumable(folder)
    return _train_into(
        Path(folder),
        resolved,
        progress=progress,
        callback=callback,
        resume_state=state,
    )


def check_resumable(folder) -> tuple[Resolved, dict]:
    """The checked experiment and training state :func:`resume` starts from;
    ValueError (naming the folder or file) when the run is complete, still
    training in another process, or has no checkpoint."""
    folder = Path(folder)
    if not (folder / "config.yaml").is_file():
        raise ValueError(
            f"{folder} is not a run folder (it has no config.yaml)"
        )
    holder = lock_holder(folder)
    if holder is not None:
        pid = holder["pid"]
        raise ValueError(
            f"{folder} is still training in process {pid} on "
            f"{holder['host']} ({folder / LOCK}); wait for it to finish or "
            f"stop it (kill -INT {pid}) and resume then; if no such process "
            f"runs (it was killed on another machine), delete {LOCK}"
        )
    report = (
        read_json_file(folder / "report.json")
        if (folder / "report.json").is_file()
        else {}
    )
    if report.get("status") == "completed":
        raise ValueError(f"{folder} is already complete; nothing to resume")
    if not (folder / "model.pt").is_file():
        raise ValueError(
            f"{folder} has no checkpoint (model.pt); it cannot be resumed — "
            "start it again with run()"
        )
    resolved = resolve(ExperimentConfig.from_file(folder / "config.yaml"))
    checkpoint = read_checkpoint(folder / "model.pt")
    if not isinstance(checkpoint.get("training_state"), dict):
        raise ValueError(
            f"{folder / 'model.pt'} holds weights but no training state; it "
            "cannot be resumed"
        )
    return resolved, {
        **checkpoint["training_state"],
        "model": checkpoint["state_dict"],
    }


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill PID``, a scheduler's stop) raises
    KeyboardInterrupt as Ctrl-C does, so training saves its last good state;
    later SIGTERMs are ignored until the block ends (SIGKILL does not). Only
    the main thread can set a handler; elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
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
    write_atomic(
        folder / "config.yaml",
        yaml.safe_dump(
            resolved.to_dict() | {"environment": environment(device)},
            sort_keys=False,
            allow_unicode=True,
        ),
    )
    model = resolved.build_model()
    info = {
        "name": resolved.config.name,
        "task": resolved.config.task,
        "parameters": count_parameters(model),
        "train_length": list(resolved.lengths),
        "eval_lengths": resolved.eval_lengths,
        "device": str(device),
    }
    write_report(folder, info | {"status": "running"}, None)
    began = time.perf_counter()
    # what a failure keeps
    live = (
        History.from_dict(resume_state["history"])
        if resume_state
        else History()
    )
    tracker = open_tracker(
        resolved.config.tracker,
        folder,
        run_name=resolved.config.name,
        config=resolved.to_dict(),
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

    try:
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
    except BaseException as error:
        history = getattr(error, "history", None) or live
        history.meta["steps_done"] = (
            history.steps[-1]["step"] if history.steps else 0
        )
        if isinstance(error, TrainingDiverged):
            status = "diverged"
        elif isinstance(error, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "failed"
        info |= {
            "status": status,
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
            "checkpoint_step": saved["step"],
            "wall_time_s": time.perf_counter() - began,
        }
        write_report(folder, info, history)
        raise
    finally:
        if tracker:
            tracker.close()
    info |= {
        "status": "completed",
        "error": None,
        "wall_time_s": time.perf_counter() - began,
    }
    write_report(
        folder,
        info,
        history,
        model=model.cpu(),
        task=resolved.task,
        length=resolved.lengths[1],
    )
    return folder
