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
trains decoders, and encoder-decoders on a task of source → answer pairs
(:mod:`annotated.training.seq2seq` lays them out for the loop); the device
must exist on this machine; every length must fit the task and the model;
left out, the evaluation lengths are every length from 1 to twice the
longest training length that the task and the model can run; and the run's
estimated peak memory (:mod:`annotated.training.memory`) must fit in what
the device has free.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from annotated.lab.config import ExperimentConfig
from annotated.lab.plugins import load_plugins
from annotated.lab.trackers import check_tracker
from annotated.models.config import ModelConfig
from annotated.models.summary import count_parameters
from annotated.models.transformer import build_model
from annotated.tasks import Task, get_task
from annotated.training.config import TrainConfig
from annotated.training.evaluation import (
    check_lengths,
    default_eval_lengths,
    length_range,
)
from annotated.training.loop import resolve_device
from annotated.training.memory import (
    available_memory,
    estimate_memory,
    human_bytes,
)
from annotated.training.seq2seq import PairedBatches, PairedEncoderDecoder

# the defaults resolve() sets in place of the dataclasses' own (the command
# line's --help shows them)
LAB_DEFAULTS = {
    "model": {
        "max_len": "the sequence length of the longest training problem",
        "pad_id": "the task's PAD for an encoder-decoder, else none",
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
            if isinstance(self.task, PairedBatches):
                answer_len = self.task.answer_len(self.lengths[1])
                return PairedEncoderDecoder(self.model_config, answer_len)
            return build_model(self.model_config)

    def to_dict(self) -> dict:
        values = self.config.to_dict() | {
            "model": self.model_config.to_dict(),
            "train": self.train_config.to_dict(),
        }
        values["train"].pop("seed")
        values["eval_lengths"] = self.eval_lengths
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
    if model.get("arch") == "encoder":
        raise ValueError(
            "the lab trains models that write an answer: set model.arch to "
            "'decoder', or 'encoder-decoder' for a task of source → answer "
            "pairs (dates)"
        )
    if model.get("arch") == "encoder-decoder":  # source and answer, one row
        task = PairedBatches(task)
        model.setdefault("pad_id", task.pad_id)  # sources are padded
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
    eval_lengths = sorted(set(config.eval_lengths)) or default_eval_lengths(
        model_config, task, high
    )
    check_lengths(model_config, task, sorted({low, high, *eval_lengths}))
    try:
        # builds nothing real: only the constructors' own checks run
        with torch.device("meta"):
            shapes = build_model(model_config)
    except NotImplementedError as error:
        raise ValueError(str(error)) from error
    longest = max(high, *eval_lengths)
    parameters = count_parameters(shapes)
    check_memory(
        model_config, train_config, task, parameters, (high, longest)
    )
    return Resolved(
        config,
        task,
        model_config,
        train_config,
        (low, high),
        eval_lengths,
        plugins,
    )


def check_memory(
    model_config: ModelConfig,
    train_config: TrainConfig,
    task: Task,
    parameters: int,
    lengths: tuple[int, int],
) -> None:
    """Refuse, before any folder exists, a run whose estimated peak memory
    exceeds what its device has free (RAM, or the GPU's free memory), naming
    the fields that make it large. ``lengths``: the longest training and
    evaluation lengths."""
    high, longest = lengths
    estimate = estimate_memory(
        model_config,
        train_config,
        parameters,
        train_tokens=task.seq_len(high),
        eval_tokens=task.seq_len(longest),
        train_length=high,
        eval_length=longest,
    )
    device = resolve_device(train_config.device)
    free = available_memory(device)
    if free is None or estimate.total_bytes <= free:
        return
    m, t = model_config, train_config
    lower = f"model.d_model ({m.d_model}) or model.n_layers ({m.n_layers})"
    if estimate.activation_bytes > estimate.state_bytes:
        if estimate.largest.startswith("a training step"):
            lower = (
                f"train.batch_size ({t.batch_size}), the training length "
                f"({high}) or model.d_model ({m.d_model})"
            )
        elif estimate.largest.startswith("the evaluation"):
            lower = (
                "train.eval_batch_size "
                f"({t.eval_batch_size or t.batch_size}) or the longest "
                f"evaluation length ({longest})"
            )
    raise ValueError(
        f"this run needs about {human_bytes(estimate.total_bytes)} of "
        f"memory, more than the {human_bytes(free)} free on {device}: "
        f"{estimate.parameters:,} parameters take "
        f"{human_bytes(estimate.state_bytes)} (28 bytes each: weights, "
        "gradients, AdamW moments and a snapshot) and "
        f"{estimate.largest} needs {human_bytes(estimate.activation_bytes)}"
        f" more; lower {lower}"
    )
