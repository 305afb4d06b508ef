"""Experiment trackers: the metrics of a run, also in TensorBoard or Weights &
Biases.

A tracker is a callback of the training loop's shape, ``tracker(kind, row)``
with ``kind`` "step" or "eval" (:func:`annotated.training.loop.train`'s
``callback``), so the loop knows nothing of it. It writes the rows metrics.csv
and eval.csv hold, one scalar per number:

* a step row as ``train/<key>`` at its step (``train/loss``,
  ``train/grad_norm/...``, ``train/lr``);
* an evaluation row as ``eval/length=<n>/<key>`` at its step
  (``eval/length=16/loss``, ...).

``"tensorboard"`` writes event files through ``torch.utils.tensorboard`` into
``<run folder>/tensorboard`` (``tensorboard --logdir experiments``);
``"wandb"`` logs a W&B run into ``<run folder>/wandb``, offline unless you
have logged in (``wandb login``) or set ``WANDB_MODE``; ``wandb sync`` uploads
an offline run later. ``"none"`` (the default) writes nothing extra. Both
packages are optional extras: ``pip install "annotated[tensorboard]"``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

TRACKERS = ("none", "tensorboard", "wandb")
# the module each tracker imports
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_tracker(name: str) -> None:
    """Refuse an unknown tracker, or one whose package is not installed,
    saying what to do."""
    if name not in TRACKERS:
        raise ValueError(
            f"tracker must be one of {', '.join(TRACKERS)}, got {name!r}"
        )
    package = PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise ValueError(
            f"tracker {name!r} needs the {package} package: "
            f'pip install "annotated[{name}]" (or tracker: none)'
        )


def scalars(kind: str, row: dict) -> tuple[int, dict[str, float]]:
    """A logged row as ``(step, {tag: value})``; only finite numbers become
    scalars."""
    if kind not in ("step", "eval"):
        raise ValueError(f"kind must be 'step' or 'eval', got {kind!r}")
    prefix = "train/" if kind == "step" else f"eval/length={row['length']}/"
    skip = {"step"} if kind == "step" else {"step", "length"}
    values = {}
    for key, value in row.items():
        if (
            key in skip
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            continue
        values[prefix + key] = float(value)
    return int(row["step"]), values


class TensorBoardTracker:
    """Scalars into TensorBoard event files under ``log_dir``
    (``torch.utils.tensorboard.SummaryWriter``)."""

    def __init__(self, log_dir):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def __call__(self, kind: str, row: dict) -> None:
        step, values = scalars(kind, row)
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    """A Weights & Biases run in ``folder/wandb``: offline unless logged in or
    ``WANDB_MODE`` says otherwise."""

    def __init__(
        self,
        folder,
        *,
        name: str | None = None,
        config: dict | None = None,
        project: str = "annotated",
    ):
        import wandb

        self.mode = wandb_mode(wandb)
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project,
            name=name,
            dir=str(folder),
            config=config or {},
            mode=self.mode,
            reinit="finish_previous",
        )

    def __call__(self, kind: str, row: dict) -> None:
        step, values = scalars(kind, row)
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


def wandb_mode(wandb) -> str:
    """``$WANDB_MODE`` if set, else "online" with an API key
    (``wandb login``), else "offline"."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    try:
        logged_in = bool(os.environ.get("WANDB_API_KEY") or wandb.api.api_key)
    except Exception:  # no settings, no key: nothing to log in with
        logged_in = False
    return "online" if logged_in else "offline"


def open_tracker(
    name: str,
    folder,
    *,
    run_name: str | None = None,
    config: dict | None = None,
):
    """The tracker ``name`` writing into the run ``folder``, or None for
    "none"; close it when done."""
    check_tracker(name)
    if name == "tensorboard":
        return TensorBoardTracker(Path(folder) / "tensorboard")
    if name == "wandb":
        return WandbTracker(folder, name=run_name, config=config)
    return None
