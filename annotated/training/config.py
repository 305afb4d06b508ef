"""How to train: one small dataclass, :class:`TrainConfig`, read by the
optimiser, the evaluation and the loop (:mod:`annotated.training.optim`,
:mod:`annotated.training.evaluation`, :mod:`annotated.training.loop`).

A bad value fails here, before any model or folder exists, with a sentence
naming the field, the value, its type and what to write instead
(:func:`annotated.core.fields.check_fields`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from annotated.core.fields import check_fields

# TrainConfig's numbers (types come from the annotations; see
# annotated.core.fields)
RANGES = {
    "steps": "[1, inf)",
    "batch_size": "[1, inf)",
    "lr": "positive",
    "weight_decay": "non-negative",
    "betas": "[0, 1)",
    "warmup_steps": "[0, inf)",
    "min_lr_ratio": "[0, 1]",
    "grad_clip": "positive",
    "eval_every": "[0, inf)",
    "eval_batches": "[1, inf)",
    "eval_batch_size": "[1, inf)",
    "log_every": "[1, inf)",
    "checkpoint_every": "[0, inf)",
    "seed": "non-negative",
    "stop_accuracy": "(0, 1]",
    "stop_patience": "[1, inf)",
    "min_steps": "[0, inf)",
    "snapshot_every": "[1, inf)",
}


@dataclass
class TrainConfig:
    """How to train. ``eval_every=0`` evaluates only at the end;
    ``checkpoint_every=0`` never calls the checkpoint function (the lab saves
    one at the end anyway)."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    # AdamW's decoupled decay, on Linear weights only (see
    # annotated.training.optim)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    # max total gradient norm; None = no clipping
    grad_clip: float | None = 1.0
    eval_every: int = 0
    eval_batches: int = 4
    eval_batch_size: int | None = None  # None = batch_size
    log_every: int = 1
    checkpoint_every: int = 0
    seed: int = 0
    device: str | None = None  # None = "cuda" when available, else "cpu"
    # stop once held-out exact match at the training lengths reaches this…
    stop_accuracy: float | None = None
    # …in this many evaluations in a row (needs eval_every > 0); steps is then
    # the cap
    stop_patience: int = 2
    # the stop rule ends no run before this step (steps_to_learn still records
    # when it learned)
    min_steps: int = 0
    # keep the state every N steps, to fall back to after a divergence or a
    # stop
    snapshot_every: int = 50
    # torch.compile the model for the training steps (needs a C++ compiler on
    # the CPU)
    compile: bool = False

    def __post_init__(self):
        # every field's type and range first: nothing below meets a wrong type
        check_fields(self, RANGES)
        self.betas = tuple(self.betas)
        if self.warmup_steps > self.steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} exceeds steps={self.steps}; lower warmup_steps"
            )
        if self.min_steps > self.steps:
            raise ValueError(
                f"min_steps={self.min_steps} exceeds steps={self.steps}; lower min_steps or raise steps"
            )
        if self.device is not None and not re.fullmatch(
            r"cpu|cuda(:\d+)?|mps", str(self.device)
        ):
            raise ValueError(
                f"TrainConfig.device must be 'cpu', 'cuda', 'cuda:N', 'mps' or None, got {self.device!r}"
            )

        self._check_stop_rule()

    def _check_stop_rule(self) -> None:
        if self.stop_accuracy is not None:
            acc = self.stop_accuracy
            if (
                isinstance(acc, bool)
                or not isinstance(acc, int | float)
                or not 0 < acc <= 1
            ):
                raise ValueError(
                    f"TrainConfig.stop_accuracy must be a number in (0, 1] or None, got {acc!r}"
                )
            if not self.eval_every:
                raise ValueError(
                    "the stop rule reads held-out accuracy every eval_every steps; set eval_every > 0"
                )
        for name in ("stop_patience", "snapshot_every"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < 1
            ):
                raise ValueError(
                    f"TrainConfig.{name} must be an integer ≥ 1, got {value!r}"
                )
        if not isinstance(self.compile, bool):
            raise ValueError(
                f"TrainConfig.compile must be true or false, got {self.compile!r}"
            )

    def to_dict(self) -> dict:
        return {**asdict(self), "betas": list(self.betas)}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown TrainConfig fields {unknown}; valid: {sorted(f.name for f in fields(cls))}"
            )
        return cls(**values)
