"""Resuming a stopped run: the checks before it continues, and the training
fields it may change.

:func:`check_resumable` reads a run folder and returns the experiment and
the training state :func:`annotated.lab.runs.resume` continues from, or
raises ValueError (one sentence naming the folder, file or fields) before
anything is written: the folder's status and files stay as they were.

A checkpoint holds the model config its weights were trained with, and the
training config. ``config.yaml`` must still agree with both: every model
field, and every training field but those a run may change when it resumes
(:data:`~annotated.training.config.MID_RUN`: ``steps``, ``lr``,
``warmup_steps``, ``grad_clip``, which the loop reads at every step) and
``device`` (where it trains, not what it computes). The mid-run fields are
changed by ``resume RUN --lr 1e-4 …`` (or by editing ``config.yaml``); each
change is recorded in the run's history as ``{"step": S, "lr": [old, new]}``
— ``history.meta["changes"]``, which report.json lists — and the new values
are what config.yaml says from then on.
"""

from __future__ import annotations

from pathlib import Path

from annotated.lab.config import ExperimentConfig, read_json_file
from annotated.lab.folders import LOCK, lock_holder
from annotated.lab.validation import Resolved, resolve
from annotated.models.checkpoints import read_checkpoint
from annotated.models.config import ModelConfig
from annotated.training.config import MID_RUN, TrainConfig

__all__ = ["RESUME_FLAGS", "check_resumable", "checkpoint_drift"]

# resume's flags (annotated.lab.flags.add_flags): the mid-run fields, each
# keeping the run's value when left out
RESUME_FLAGS = {
    "only": MID_RUN,
    "defaults": dict.fromkeys(MID_RUN, "the run's value"),
}


def check_resumable(
    folder, changes: dict | None = None
) -> tuple[Resolved, dict]:
    """The checked experiment (with ``changes``, mid-run training fields,
    applied) and the training state :func:`~annotated.lab.runs.resume`
    starts from; ValueError (naming the folder, file or fields) when the run
    is complete, still training in another process, has no checkpoint, or
    its config no longer matches the checkpoint."""
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
    config = ExperimentConfig.from_file(folder / "config.yaml")
    unknown = sorted(set(changes or {}) - set(MID_RUN))
    if unknown:
        raise ValueError(
            f"resume can change only {', '.join(MID_RUN)}, not {unknown}"
        )
    config.train = {**config.train, **(changes or {})}
    resolved = resolve(config)
    checkpoint = read_checkpoint(folder / "model.pt")
    state = checkpoint.get("training_state")
    if not isinstance(state, dict):
        raise ValueError(
            f"{folder / 'model.pt'} holds weights but no training state; it "
            "cannot be resumed"
        )
    drift = checkpoint_drift(resolved, checkpoint)
    if drift:
        raise ValueError(
            f"{folder / 'config.yaml'} no longer matches the checkpoint "
            f"{folder / 'model.pt'}: {drift}; put config.yaml back as it "
            f"was (resume itself may change {', '.join(MID_RUN)})"
        )
    step = int(state["step"])
    train = resolved.train_config
    if train.end_step <= step:
        ends = f"steps={train.steps}" + (
            f" with stop_after={train.stop_after}" if train.stop_after else ""
        )
        raise ValueError(
            f"{ends} leaves nothing to train: the checkpoint is at step "
            f"{step}; give --steps above {step}"
            + (" or a later --stop-after" if train.stop_after else "")
        )
    return resolved, {
        **state,
        "history": record_changes(resolved, state),
        "model": checkpoint["state_dict"],
    }


def checkpoint_drift(resolved: Resolved, checkpoint: dict) -> str:
    """The fields in which the experiment differs from what the checkpoint
    was trained with, in words (``"model.d_model 64 → 32"``), "" if none;
    the mid-run training fields and ``device`` may differ."""
    trained = ModelConfig.from_dict(checkpoint["config"])
    differ = {
        f"model.{name}": (old, new)
        for name, (old, new) in trained.diff(resolved.model_config).items()
    }
    before = checkpoint["training_state"].get("train_config", {})
    now, defaults = resolved.train_config.to_dict(), TrainConfig().to_dict()
    for name, value in now.items():
        old = before.get(name, defaults[name])
        if name not in (*MID_RUN, "device") and old != value:
            differ[f"train.{name}"] = (old, value)
    return ", ".join(f"{k} {old} → {new}" for k, (old, new) in differ.items())


def record_changes(resolved: Resolved, state: dict) -> dict:
    """The checkpoint's history with this resume's changes of mid-run fields
    appended to ``meta["changes"]`` (nothing when none changed)."""
    history = dict(state["history"])
    before = state.get("train_config", {})
    now = resolved.train_config.to_dict()
    changed = {
        name: [before[name], now[name]]
        for name in MID_RUN
        if name in before and before[name] != now[name]
    }
    if changed:
        meta = dict(history.get("meta", {}))
        meta["changes"] = [
            *meta.get("changes", []),
            {"step": int(state["step"]), **changed},
        ]
        history["meta"] = meta
    return history
