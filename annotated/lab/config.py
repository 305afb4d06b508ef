"""An experiment's config, the configs shipped with the library, and the check
that runs before training.

An :class:`ExperimentConfig` (a dataclass, or the same fields in YAML / JSON)
names a task, the training length (or ``[low, high]``), the evaluation
lengths, the model (any :class:`~annotated.models.config.ModelConfig` field
but ``vocab_size``, which the task gives), the training (any
:class:`~annotated.training.config.TrainConfig` field but ``seed``) and one
``seed`` that seeds both the model's initialisation and training.
:func:`resolve` checks all of it without training and returns a
:class:`Resolved` experiment: ``model.max_len`` defaults to the training
sequence length, and a left-out ``train.warmup_steps`` to a tenth of the steps
(at most TrainConfig's default), so a short run needs no warm-up setting of
its own.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from annotated.core.fields import check_fields
from annotated.lab.plugins import load_plugins
from annotated.lab.trackers import check_tracker
from annotated.models.config import ModelConfig
from annotated.models.transformer import build_model
from annotated.tasks import Task, get_task
from annotated.training.config import TrainConfig
from annotated.training.evaluation import (
    check_lengths,
    expand_lengths,
    length_range,
)
from annotated.training.loop import resolve_device

NAME_PATTERN = r"[A-Za-z0-9_.\-=]+"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# with the types
RANGES = {
    "train_length": "[1, inf)",
    "eval_lengths": "[1, inf)",
    "seed": "non-negative",
}
# the defaults resolve() sets in place of the dataclasses' own (the command
# line's --help shows them)
LAB_DEFAULTS = {
    "model": {
        "max_len": "the sequence length of the longest training problem"
    },
    "train": {
        "warmup_steps": f"a tenth of the steps, at most {TrainConfig.warmup_steps}"
    },
}


@dataclass
class ExperimentConfig:
    """One experiment (or, with ``grid``, a sweep of them)."""

    # names the run folder <date>_<name>: letters, digits, _ - . =
    name: str = "experiment"
    # a name in annotated.tasks.TASKS (or one a plugin registers)
    task: str = "sort"
    # arguments for a fresh instance of the task's class
    task_kwargs: dict = field(default_factory=dict)
    # problem length, or [low, high] drawn per step
    train_length: int | list[int] = 8
    # besides the training length; "1..40" = every length 1 to 40
    eval_lengths: list[int] = field(default_factory=list)
    # ModelConfig fields (vocab_size comes from the task)
    model: dict = field(default_factory=dict)
    # TrainConfig fields (the seed is the one below)
    train: dict = field(default_factory=dict)
    seed: int = 0  # seeds the model's initialisation and the training batches
    # .py files or module names to import first
    plugins: list[str] = field(default_factory=list)
    # also log the metrics to tensorboard or wandb (annotated.lab.trackers);
    # none: nothing extra
    tracker: str = "none"
    # sweeps only: {"model.positional": [...], "seed": [...]}
    grid: dict = field(default_factory=dict)
    # sweeps only: [{when: {model.positional: learned}, set: {...}}]
    overrides: list = field(default_factory=list)
    # where relative plugin paths start
    base_dir: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, values: dict, *, base_dir=None) -> ExperimentConfig:
        # a run's config.yaml reads back
        values = {k: v for k, v in dict(values).items() if k != "environment"}
        known = {f.name for f in dataclasses.fields(cls)} - {"base_dir"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown experiment field(s) {unknown}; valid fields: {sorted(known)}"
            )
        lengths = values.get("eval_lengths")
        if isinstance(lengths, str) or (
            isinstance(lengths, list)
            and any(isinstance(v, str) for v in lengths)
        ):
            # "1..40" → [1, 2, …, 40]
            values["eval_lengths"] = expand_lengths(lengths)
        config = cls(
            **values, base_dir=None if base_dir is None else str(base_dir)
        )
        check_fields(
            config, RANGES
        )  # every field's type: a section that is not a mapping, a length that is text…
        return config

    @classmethod
    def from_file(cls, path) -> ExperimentConfig:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no config file at {path}")
        try:
            text = path.read_text(encoding="utf-8")
            values = (
                json.loads(text)
                if path.suffix == ".json"
                else yaml.safe_load(text)
            )
        except (
            json.JSONDecodeError,
            yaml.YAMLError,
            UnicodeDecodeError,
        ) as error:
            raise ValueError(
                f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}"
            ) from error
        if not isinstance(values, dict):
            raise ValueError(
                f"{path} must hold a mapping of experiment fields, got {type(values).__name__}"
            )
        try:
            return cls.from_dict(values, base_dir=path.parent)
        # name the file: a run's config.yaml, a sweep's, the user's own
        except ValueError as error:
            raise type(error)(f"{path}: {error}") from error

    def to_dict(self) -> dict:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "base_dir"
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.to_dict(), sort_keys=False, allow_unicode=True
        )


def read_json_file(path) -> dict:
    """A JSON mapping from ``path`` (a run's report.json), with an error
    naming the file when it is damaged."""
    return _read_mapping(
        Path(path),
        json.loads,
        (json.JSONDecodeError, UnicodeDecodeError),
        "JSON",
    )


def read_yaml_file(path) -> dict:
    """A YAML mapping from ``path`` (a run's config.yaml), with an error
    naming the file when it is damaged."""
    return _read_mapping(
        Path(path),
        yaml.safe_load,
        (yaml.YAMLError, UnicodeDecodeError),
        "YAML",
    )


def _read_mapping(path: Path, parse, errors, kind: str) -> dict:
    try:
        values = parse(path.read_text(encoding="utf-8"))
    except errors as error:
        raise ValueError(
            f"{path} is damaged: not valid {kind} ({error}); restore it, or delete the folder"
        ) from error
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} is damaged: it holds a {type(values).__name__}, not a mapping of fields"
        )
    return values


def shipped_configs() -> list[str]:
    """The names of the configs in annotated/lab/configs/."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_config(name) -> Path:
    """A path, or the name of a config shipped in annotated/lab/configs/ (with
    or without .yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (
        name if str(name).endswith(".yaml") else f"{name}.yaml"
    )
    if shipped.is_file():
        return shipped
    raise ValueError(
        f"no config file {name!r}; give a path or one of the shipped configs: {', '.join(shipped_configs())}"
    )


def as_config(config) -> ExperimentConfig:
    """An ExperimentConfig from itself, a dict of its fields, or a YAML / JSON
    file."""
    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, dict):
        return ExperimentConfig.from_dict(config)
    return ExperimentConfig.from_file(config)


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
    if (
        "warmup_steps" not in values
        and isinstance(steps, int)
        and not isinstance(steps, bool)
    ):
        values["warmup_steps"] = min(
            TrainConfig.warmup_steps, max(steps, 0) // 10
        )
    return values


def check_device(device: str | None) -> None:
    """Refuse a device this machine does not have, before any folder
    exists."""
    kind = resolve_device(device).type
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"train.device is {device!r} but CUDA is not available here; write device: cpu, or leave it out"
        )
    if (
        kind == "cuda"
        and resolve_device(device).index is not None
        and resolve_device(device).index >= torch.cuda.device_count()
    ):
        raise ValueError(
            f"train.device is {device!r} but this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    if kind == "mps" and not (
        getattr(torch.backends, "mps", None)
        and torch.backends.mps.is_available()
    ):
        raise ValueError(
            f"train.device is {device!r} but MPS is not available here; write device: cpu, or leave it out"
        )


def resolve(config: ExperimentConfig) -> Resolved:
    """Check everything that can be checked without training; raise ValueError
    saying what to change (a missing corpus raises the task's own error, e.g.
    CorpusUnavailableError)."""
    check_fields(config, RANGES)
    if not isinstance(config.name, str) or not re.fullmatch(
        NAME_PATTERN, config.name
    ):
        raise ValueError(
            f"name must be letters, digits, '_', '-', '.', '=' (it names a folder), got {config.name!r}"
        )
    plugins = load_plugins(config.plugins, config.base_dir)
    check_tracker(config.tracker)
    task = get_task(config.task)
    if config.task_kwargs:
        try:
            task = type(task)(**config.task_kwargs)
        except TypeError as error:
            raise ValueError(
                f"task_kwargs {config.task_kwargs} do not fit task {config.task!r}: {error}"
            ) from error
    low, high = length_range(config.train_length)
    model = dict(config.model)
    if model.get("vocab_size", task.vocab_size) != task.vocab_size:
        raise ValueError(
            f"model.vocab_size comes from the task ({task.vocab_size}); leave it out"
        )
    if model.get("arch", "decoder") != "decoder":
        raise ValueError(
            "the lab trains decoder-only models on next-token batches; set model.arch to 'decoder'"
        )
    model_config = ModelConfig.from_dict(
        {
            "max_len": task.seq_len(high),
            **model,
            "vocab_size": task.vocab_size,
        }
    )
    if "seed" in config.train:
        raise ValueError(
            "set the seed at the top level of the experiment (seed: N), not in train"
        )
    train_config = TrainConfig.from_dict(
        train_values(config.train, config.seed)
    )
    check_device(train_config.device)
    check_lengths(
        model_config, task, sorted({low, high, *config.eval_lengths})
    )
    resolved = Resolved(
        config,
        task,
        model_config,
        train_config,
        (low, high),
        sorted(set(config.eval_lengths)),
        plugins,
    )
    try:
        # builds nothing real: only the constructor checks run
        with torch.device("meta"):
            build_model(model_config)
    except NotImplementedError as error:
        raise ValueError(str(error)) from error
    return resolved
