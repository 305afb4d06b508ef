"""How to train: one small dataclass, :class:`TrainConfig`, read by the
optimiser, the evaluation and the loop (:mod:`annotated.training.optim`,
:mod:`annotated.training.evaluation`, :mod:`annotated.training.loop`).

A bad value fails here, before any model or folder exists, with a sentence
naming the field, the value, its type and what to write instead
(:func:`annotated.core.fields.check_fields`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

from annotated.core.fields import check_choice, check_fields

# TrainConfig's ranges; the types come from the annotations (both checked by
# annotated.core.fields.check_fields)
RANGES = {
    "steps": "[1, inf)",
    "batch_size": "[1, inf)",
    "grad_accum": "[1, inf)",
    "lr": "positive",
    "weight_decay": "non-negative",
    "betas": "[0, 1)",
    "muon_lr": "positive",
    "muon_momentum": "[0, 1)",
    "muon_weight_decay": "non-negative",
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
    "stop_after": "[1, inf)",
    "snapshot_every": "[1, inf)",
}
# the fields a stopped run may change when it resumes: the loop reads them
# afresh at every step (the schedule, the clipping, where it ends)
MID_RUN = (
    "steps",
    "stop_after",
    "lr",
    "muon_lr",
    "warmup_steps",
    "grad_clip",
)
# the names TrainConfig.optimizer takes (annotated.training.optim)
OPTIMIZERS = ("adamw", "muon")
# the device names TrainConfig.device takes (None: the GPU when present)
DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


@dataclass
class TrainConfig:
    """How to train. ``eval_every=0`` evaluates only at the end;
    ``checkpoint_every=0`` never calls the checkpoint function (the lab saves
    one at the end anyway)."""

    steps: int = 1000  # optimizer steps in all
    batch_size: int = 32
    # micro-batches of batch_size per step, their gradients summed: a step
    # trains on batch_size × grad_accum (× ranks under torchrun) examples
    grad_accum: int = 1
    lr: float = 1e-3  # the peak learning rate, after the warm-up
    # AdamW's decoupled decay, on Linear weights only (training.optim)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    # "adamw", or "muon": Muon for the blocks' matrices and AdamW (lr,
    # weight_decay, betas) for the rest (training.optim)
    optimizer: str = field(default="adamw", metadata={"choices": OPTIMIZERS})
    muon_lr: float = 0.02  # Muon's peak learning rate, on the same schedule
    muon_momentum: float = 0.95  # Muon's (Nesterov) momentum
    muon_weight_decay: float = 0.0  # Muon's decoupled weight decay
    warmup_steps: int = 100  # steps of the linear warm-up from 0 to lr
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0  # max total gradient norm; None: no clip
    eval_every: int = 0
    eval_batches: int = 4
    eval_batch_size: int | None = None  # None = batch_size
    log_every: int = 1
    checkpoint_every: int = 0
    seed: int = 0
    device: str | None = None  # None = "cuda" when available, else "cpu"
    # stop once held-out exact match at the training lengths reaches this…
    stop_accuracy: float | None = None
    # …in this many evaluations in a row (needs eval_every > 0); steps caps it
    stop_patience: int = 2
    # no run stops before this step (steps_to_learn says when it learned)
    min_steps: int = 0
    # end after this step, the schedule still that of steps: a slice of a
    # longer run, which resume can finish; None: run all steps
    stop_after: int | None = None
    # keep the state to fall back to after a divergence every N steps
    snapshot_every: int = 50
    # torch.compile the model for training (on the CPU: needs a C++ compiler)
    compile: bool = False

    def __post_init__(self):
        # every field's type and range first: nothing below meets a wrong type
        check_fields(self, RANGES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        self.betas = tuple(self.betas)
        if self.warmup_steps > self.steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} exceeds "
                f"steps={self.steps}; lower warmup_steps"
            )
        if self.stop_after is not None and self.stop_after > self.steps:
            raise ValueError(
                f"stop_after={self.stop_after} exceeds steps={self.steps}; "
                "lower stop_after or raise steps"
            )
        if self.min_steps > self.steps:
            raise ValueError(
                f"min_steps={self.min_steps} exceeds steps={self.steps}; "
                "lower min_steps or raise steps"
            )
        if self.device is not None and not DEVICE.fullmatch(self.device):
            raise ValueError(
                "TrainConfig.device must be 'cpu', 'cuda', 'cuda:N', 'mps' "
                f"or None, got {self.device!r}"
            )
        if self.stop_accuracy is not None and not self.eval_every:
            raise ValueError(
                "the stop rule reads held-out accuracy every eval_every "
                "steps; set eval_every > 0"
            )

    @property
    def end_step(self) -> int:
        """The step training ends at: ``stop_after``, or else ``steps``."""
        return self.stop_after or self.steps

    def to_dict(self) -> dict:
        return {**asdict(self), "betas": list(self.betas)}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            valid = sorted(f.name for f in fields(cls))
            raise ValueError(
                f"unknown TrainConfig fields {unknown}; valid: {valid}"
            )
        return cls(**values)
