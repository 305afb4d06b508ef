"""The check that runs before training: :func:`resolve` turns an
:class:`~annotated.lab.config.ExperimentConfig` into a :class:`Resolved`
experiment, or raises ValueError saying what to change, before any folder
exists.

It imports the plugins, finds the task, and builds the
:class:`~annotated.models.config.ModelConfig` and
:class:`~annotated.training.config.TrainConfig`, which check their own
fields. What it adds is what only the lab knows: ``model.max_len`` defaults
to the training sequence length, and a left-out ``train.warmup_steps`` to a
tenth of the steps (at most TrainConfig's default), so a short run needs no
warm-up setting of its own; the vocabulary comes from the task; the lab
trains decoders; the device must exist on this machine; every length must fit
the task and the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from annotated.lab.config import ExperimentConfig
from annotated.lab.plugins import load_plugins
from annotated.lab.trackers import check_tracker
from annotated.models.config import ModelConfig
from annotated.models.transformer import build_model
from annotated.tasks import Task, get_task
from annotated.training.config import TrainConfig
from annotated.training.evaluation import check_lengths, length_range
from annotated.training.loop import resolve_device

# the defaults resolve() sets in place of the dataclasses' own (the command
# line's --help shows them)
LAB_DEFAULTS = {
    "model": {
        "max_len": "the sequence length of the longest training problem"
    },
    "train": {
        "warmup_steps": "a tenth of the steps, at most "
        f"{TrainConfig.warmup_steps}"
    },
}


@dataclass
class Resolved:
    """A checked experiment: the task instance, the model and training
    configs, the lengths."""

    config: ExperimentConfig
    task: Task
    model_config: ModelConfig
    train_config: TrainConfig
    lengths: tuple[int, int]
    eval_lengths: list[int]
    plugins: list[str]

    def build_model(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            return build_model(self.model_config)

    def to_dict(self) -> dict:
        values = self.config.to_dict() | {
            "model": self.model_config.to_dict(),
            "train": self.train_config.to_dict(),
        }
        values["train"].pop("seed")
        values.pop("grid")
        values["plugins"] = self.plugins
        return values


def train_values(train: dict, seed) -> dict:
    """TrainConfig's fields for an experiment: its ``train`` section, its
    seed, and (when left out) a warm-up of a tenth of the steps, at most
    TrainConfig's default."""
    values = {**train, "seed": seed}
    steps = values.get("steps", TrainConfig.steps)
    # a wrong steps is TrainConfig's to refuse
    if "warmup_steps" not in values and type(steps) is int:
        values["warmup_steps"] = min(TrainConfig.warmup_steps, steps // 10)
    return values


def check_device(device: str | None) -> None:
    """Refuse a device this machine does not have, before any folder
    exists."""
    where = resolve_device(device)
    instead = "write device: cpu, or leave it out"
    if where.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"train.device is {device!r} but CUDA is not available here; "
            + instead
        )
    if where.type == "cuda" and (where.index or 0) >= (
        count := torch.cuda.device_count()
    ):
        raise ValueError(
            f"train.device is {device!r} but this machine has {count} CUDA "
            "device(s)"
        )
    mps = getattr(torch.backends, "mps", None)
    if where.type == "mps" and not (mps and mps.is_available()):
        raise ValueError(
            f"train.device is {device!r} but MPS is not available here; "
            + instead
        )


def resolve(config: ExperimentConfig) -> Resolved:
    """Check everything that can be checked without training; raise
    ValueError saying what to change (a missing corpus raises the task's own
    error, e.g. CorpusUnavailableError)."""
    plugins = load_plugins(config.plugins, config.base_dir)
    check_tracker(config.tracker)
    task = get_task(config.task)
    if config.task_kwargs:
        try:
            task = type(task)(**config.task_kwargs)
        except TypeError as error:
            raise ValueError(
                f"task_kwargs {config.task_kwargs} do not fit task "
                f"{config.task!r}: {error}"
            ) from error
    low, high = length_range(config.train_length)
    model = dict(config.model)
    if model.get("vocab_size", task.vocab_size) != task.vocab_size:
        raise ValueError(
            f"model.vocab_size comes from the task ({task.vocab_size}); "
            "leave it out"
        )
    if model.get("arch", "decoder") != "decoder":
        raise ValueError(
            "the lab trains decoder-only models on next-token batches; set "
            "model.arch to 'decoder'"
        )
    model |= {"vocab_size": task.vocab_size}
    model_config = ModelConfig.from_dict(
        {"max_len": task.seq_len(high)} | model
    )
    if "seed" in config.train:
        raise ValueError(
            "set the seed at the top level of the experiment (seed: N), not "
            "in train"
        )
    train_config = TrainConfig.from_dict(
        train_values(config.train, config.seed)
    )
    check_device(train_config.device)
    check_lengths(
        model_config, task, sorted({low, high, *config.eval_lengths})
    )
    try:
        # builds nothing real: only the constructors' own checks run
        with torch.device("meta"):
            build_model(model_config)
    except NotImplementedError as error:
        raise ValueError(str(error)) from error
    return Resolved(
        config,
        task,
        model_config,
        train_config,
        (low, high),
        sorted(set(config.eval_lengths)),
        plugins,
    )
