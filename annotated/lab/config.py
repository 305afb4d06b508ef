"""An experiment's config, the configs shipped with the library, and the
files a run folder keeps its settings in.

An :class:`ExperimentConfig` (a dataclass, or the same fields in YAML / JSON)
names a task, the training length (or ``[low, high]``), the evaluation
lengths, the model (any :class:`~annotated.models.config.ModelConfig` field
but ``vocab_size``, which the task gives), the training (any
:class:`~annotated.training.config.TrainConfig` field but ``seed``) and one
``seed`` that seeds both the model's initialisation and training. Its own
fields are checked when it is made; the model and training sections are
checked by their configs when :func:`~annotated.lab.validation.resolve`
builds them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from annotated.core.fields import check_fields
from annotated.lab.trackers import TRACKERS
from annotated.training.evaluation import expand_lengths

NAME_PATTERN = r"[A-Za-z0-9_.\-=]+"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# with the types
RANGES = {
    "train_length": "[1, inf)",
    "eval_lengths": "[1, inf)",
    "seed": "non-negative",
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
    # besides the training length; "1..40" = every length 1 to 40; empty:
    # 1 to twice the longest training length, as far as task and model go
    eval_lengths: list[int] = field(default_factory=list)
    # ModelConfig fields (vocab_size comes from the task)
    model: dict = field(default_factory=dict)
    # TrainConfig fields (the seed is the one below)
    train: dict = field(default_factory=dict)
    seed: int = 0  # seeds the model's initialisation and the training batches
    # sweeps: a recipe's label; a grid over it (variant: [base, rmsnorm])
    # with overrides (when: {variant: rmsnorm}) sets each recipe's fields
    variant: str = ""
    # .py files or module names to import first
    plugins: list[str] = field(default_factory=list)
    # also log the metrics to tensorboard or wandb (annotated.lab.trackers);
    # none: nothing extra
    tracker: str = field(default="none", metadata={"choices": TRACKERS})
    # sweeps only: {"model.positional": [...], "seed": [...]}
    grid: dict = field(default_factory=dict)
    # sweeps only: [{when: {model.positional: learned}, set: {...}}]
    overrides: list = field(default_factory=list)
    # where relative plugin paths start
    base_dir: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        # every field's type first: a section that is not a mapping, a
        # length that is text…
        check_fields(self, RANGES)
        if not re.fullmatch(NAME_PATTERN, self.name):
            raise ValueError(
                "name must be letters, digits, '_', '-', '.', '=' (it names "
                f"a folder), got {self.name!r}"
            )

    @classmethod
    def from_dict(cls, values: dict, *, base_dir=None) -> ExperimentConfig:
        # a run's config.yaml reads back
        values = {k: v for k, v in dict(values).items() if k != "environment"}
        known = {f.name for f in dataclasses.fields(cls)} - {"base_dir"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown experiment field(s) {unknown}; valid fields: "
                f"{sorted(known)}"
            )
        lengths = values.get("eval_lengths")
        if isinstance(lengths, str) or (
            isinstance(lengths, list)
            and any(isinstance(v, str) for v in lengths)
        ):
            # "1..40" → [1, 2, …, 40]
            values["eval_lengths"] = expand_lengths(lengths)
        return cls(
            **values, base_dir=None if base_dir is None else str(base_dir)
        )

    @classmethod
    def from_file(cls, path) -> ExperimentConfig:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no config file at {path}")
        kind = "JSON" if path.suffix == ".json" else "YAML"
        try:
            text = path.read_text(encoding="utf-8")
            values = (
                json.loads(text) if kind == "JSON" else yaml.safe_load(text)
            )
        except (
            json.JSONDecodeError,
            yaml.YAMLError,
            UnicodeDecodeError,
        ) as error:
            raise ValueError(
                f"{path} is not valid {kind}: {error}"
            ) from error
        if not isinstance(values, dict):
            raise ValueError(
                f"{path} must hold a mapping of experiment fields, got "
                f"{type(values).__name__}"
            )
        try:
            return cls.from_dict(values, base_dir=path.parent)
        except ValueError as error:
            # name the file: a run's config.yaml, a sweep's, the user's own
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
    errors = (json.JSONDecodeError, UnicodeDecodeError)
    return _read_mapping(Path(path), json.loads, errors, "JSON")


def read_yaml_file(path) -> dict:
    """A YAML mapping from ``path`` (a run's config.yaml), with an error
    naming the file when it is damaged."""
    errors = (yaml.YAMLError, UnicodeDecodeError)
    return _read_mapping(Path(path), yaml.safe_load, errors, "YAML")


def _read_mapping(path: Path, parse, errors, kind: str) -> dict:
    try:
        values = parse(path.read_text(encoding="utf-8"))
    except errors as error:
        raise ValueError(
            f"{path} is damaged: not valid {kind} ({error}); restore it, or "
            "delete the folder"
        ) from error
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} is damaged: it holds a {type(values).__name__}, not a "
            "mapping of fields"
        )
    return values


def shipped_configs() -> list[str]:
    """The names of the configs in annotated/lab/configs/."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_config(name) -> Path:
    """A path, or the name of a config shipped in annotated/lab/configs/
    (with or without .yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (
        name if str(name).endswith(".yaml") else f"{name}.yaml"
    )
    if shipped.is_file():
        return shipped
    raise ValueError(
        f"no config file {name!r}; give a path or one of the shipped "
        f"configs: {', '.join(shipped_configs())}"
    )


def as_config(config) -> ExperimentConfig:
    """An ExperimentConfig from itself, a dict of its fields, or a YAML /
    JSON file."""
    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, dict):
        return ExperimentConfig.from_dict(config)
    return ExperimentConfig.from_file(config)
