"""The lab: an experiment is a config; a run is a dated folder; a sweep is a folder of runs.

An :class:`ExperimentConfig` (a dataclass, or the same fields in YAML / JSON) names a task,
the training length (or ``[low, high]``), the evaluation lengths, the model (any
:class:`~annotated.models.ModelConfig` field but ``vocab_size``, which the task gives), the
training (any :class:`~annotated.train.TrainConfig` field but ``seed``) and one ``seed`` that
seeds both the model's initialisation and training. ``plugins`` lists Python files or modules
imported first, so a task a user registers with :func:`~annotated.tasks.register_task` runs
like a built-in one. ``model.max_len`` defaults to the training sequence length.

:func:`run` writes ``<out_dir>/<YYYYmmdd-HHMMSS>_<name>/``::

    config.yaml     the resolved config + environment (library, torch, python, device, git commit)
    metrics.csv     one row per logged step          eval.csv     one row per evaluation and length
    model.pt        weights + config (annotated.models.load_model reads it) + optimizer/RNG state
    *.png           loss, accuracy, gradient norms, accuracy vs length, attention maps
    report.json     status, in-distribution and per-length accuracy, generalisation gap, time, size
    report.md       the same for people

The whole config is checked before any folder exists, so a bad config leaves nothing behind.
Folders are never overwritten (a taken name gets ``-2``, ``-3``…) and every file is written
to a temporary name and moved into place (``os.replace``), so no file is ever half-written.
report.json says ``"running"`` while training; a run that fails keeps its folder, marked
``"failed"`` (or ``"interrupted"``) with the error, metrics so far and its last checkpoint, from
which :func:`resume` continues. The generalisation gap is the in-distribution accuracy minus
the mean accuracy over the evaluation lengths longer than training (None if there are none).

:func:`sweep` runs the cross product of a ``grid`` (``{"model.positional": [...], "seed": [...]}``)
inside one folder and writes summary.csv (``kind=run`` rows, then ``kind=group`` rows: mean and
``*_std`` over the seeds of each group) and a comparative report.md. :func:`report` re-renders
reports, plots and summaries from the files of a run or sweep folder.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import itertools
import json
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch
import yaml

import annotated
from annotated.models import ModelConfig, build_model, count_parameters, load_model, read_checkpoint, write_checkpoint
from annotated.reports import (
    group_statistics,
    read_csv,
    run_row,
    sweep_markdown,
    write_atomic,
    write_csv,
    write_report,
)
from annotated.tasks import Task, get_task
from annotated.train import History, TrainConfig, check_lengths, length_range, resolve_device, train

NAME_PATTERN = r"[A-Za-z0-9_.\-=]+"
GRID_KEYS = ("task", "task_kwargs", "train_length", "eval_lengths", "seed", "model", "train")


@dataclass
class ExperimentConfig:
    """One experiment (or, with ``grid``, a sweep of them)."""

    name: str = "experiment"
    task: str = "sort"
    task_kwargs: dict = field(default_factory=dict)  # arguments for a fresh instance of the task's class
    train_length: int | list[int] = 8  # problem length, or [low, high] drawn per step
    eval_lengths: list[int] = field(default_factory=list)  # besides the training length
    model: dict = field(default_factory=dict)  # ModelConfig fields (vocab_size comes from the task)
    train: dict = field(default_factory=dict)  # TrainConfig fields (the seed is the one below)
    seed: int = 0
    plugins: list[str] = field(default_factory=list)  # .py files or module names to import first
    grid: dict = field(default_factory=dict)  # sweeps only: {"model.positional": [...], "seed": [...]}
    base_dir: str | None = field(default=None, repr=False, compare=False)  # where relative plugin paths start

    @classmethod
    def from_dict(cls, values: dict, *, base_dir=None) -> ExperimentConfig:
        values = {k: v for k, v in dict(values).items() if k != "environment"}  # a run's config.yaml reads back
        known = {f.name for f in dataclasses.fields(cls)} - {"base_dir"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown experiment field(s) {unknown}; valid fields: {sorted(known)}")
        config = cls(**values, base_dir=None if base_dir is None else str(base_dir))
        for name, kind in (("task_kwargs", dict), ("model", dict), ("train", dict), ("grid", dict), ("plugins", list)):
            if not isinstance(getattr(config, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got {getattr(config, name)!r}")
        return config

    @classmethod
    def from_file(cls, path) -> ExperimentConfig:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no config file at {path}")
        text = path.read_text(encoding="utf-8")
        try:
            values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            raise ValueError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from error
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of experiment fields, got {type(values).__name__}")
        return cls.from_dict(values, base_dir=path.parent)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "base_dir"}


@dataclass
class Resolved:
    """A checked experiment: the task instance, the model and training configs, the lengths."""

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
        values = self.config.to_dict() | {"model": self.model_config.to_dict(), "train": self.train_config.to_dict()}
        values["train"].pop("seed")
        values.pop("grid")
        values["plugins"] = self.plugins
        return values


_LOADED_PLUGINS: dict[str, object] = {}


def load_plugins(plugins, base_dir=None) -> list[str]:
    """Import each plugin once: a ``.py`` file (relative to ``base_dir``, then the working directory)
    or an importable module name. Tasks it registers become available by name. Returns the plugins
    with files as absolute paths (what a run's config.yaml records, so it resumes from anywhere)."""
    loaded = []
    for plugin in plugins:
        if not isinstance(plugin, str) or not plugin:
            raise ValueError(f"a plugin is a .py file path or a module name, got {plugin!r}")
        if plugin.endswith(".py"):
            candidates = [Path(base_dir) / plugin] if base_dir and not Path(plugin).is_absolute() else []
            path = next((p for p in [*candidates, Path(plugin)] if p.is_file()), None)
            if path is None:
                raise ValueError(
                    f"plugin file {plugin!r} not found (looked in {base_dir or '.'} and the working directory)"
                )
            key = str(path.resolve())
            loaded.append(key)
            if key in _LOADED_PLUGINS:
                continue
            spec = importlib.util.spec_from_file_location(f"annotated_plugin_{len(_LOADED_PLUGINS)}_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            _LOADED_PLUGINS[key] = module
            try:
                spec.loader.exec_module(module)
            except Exception as error:
                del _LOADED_PLUGINS[key]
                raise ValueError(f"plugin {plugin} failed to import: {type(error).__name__}: {error}") from error
        elif plugin not in _LOADED_PLUGINS:
            try:
                _LOADED_PLUGINS[plugin] = importlib.import_module(plugin)
            except ImportError as error:
                raise ValueError(f"plugin module {plugin!r} could not be imported: {error}") from error
        if not plugin.endswith(".py"):
            loaded.append(plugin)
    return loaded


def resolve(config: ExperimentConfig) -> Resolved:
    """Check everything that can be checked without training; raise ValueError saying what to change."""
    if not isinstance(config.name, str) or not re.fullmatch(NAME_PATTERN, config.name):
        raise ValueError(f"name must be letters, digits, '_', '-', '.', '=' (it names a folder), got {config.name!r}")
    plugins = load_plugins(config.plugins, config.base_dir)
    task = get_task(config.task)
    if config.task_kwargs:
        try:
            task = type(task)(**config.task_kwargs)
        except TypeError as error:
            raise ValueError(f"task_kwargs {config.task_kwargs} do not fit task {config.task!r}: {error}") from error
    low, high = length_range(config.train_length)
    if not isinstance(config.eval_lengths, list) or not all(isinstance(n, int) and n > 0 for n in config.eval_lengths):
        raise ValueError(f"eval_lengths must be a list of positive integers, got {config.eval_lengths!r}")
    if not isinstance(config.seed, int) or isinstance(config.seed, bool) or config.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {config.seed!r}")
    model = dict(config.model)
    if model.get("vocab_size", task.vocab_size) != task.vocab_size:
        raise ValueError(f"model.vocab_size comes from the task ({task.vocab_size}); leave it out")
    if model.get("arch", "decoder") != "decoder":
        raise ValueError("the lab trains decoder-only models on next-token batches; set model.arch to 'decoder'")
    model_config = ModelConfig.from_dict({"max_len": task.seq_len(high), **model, "vocab_size": task.vocab_size})
    if "seed" in config.train:
        raise ValueError("set the seed at the top level of the experiment (seed: N), not in train")
    train_config = TrainConfig.from_dict({**config.train, "seed": config.seed})
    check_lengths(model_config, task, sorted({low, high, *config.eval_lengths}))
    resolved = Resolved(
        config, task, model_config, train_config, (low, high), sorted(set(config.eval_lengths)), plugins
    )
    try:
        with torch.device("meta"):  # builds nothing real: only the constructor checks run
            build_model(model_config)
    except NotImplementedError as error:
        raise ValueError(str(error)) from error
    return resolved


def as_config(config) -> ExperimentConfig:
    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, dict):
        return ExperimentConfig.from_dict(config)
    return ExperimentConfig.from_file(config)


# --- files --------------------------------------------------------------------------------------


def new_folder(parent: Path, name: str, *, stamp: bool = True) -> Path:
    """Create ``parent/<stamp>_<name>`` (or ``parent/name``); a taken name gets ``-2``, ``-3``…"""
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{datetime.now():%Y%m%d-%H%M%S}_{name}" if stamp else name
    for i in itertools.count(1):
        folder = parent / (base if i == 1 else f"{base}-{i}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def environment(device) -> dict:
    commit = None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(annotated.__file__).parent, capture_output=True,
                             text=True, timeout=5)  # fmt: skip
        commit = out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"annotated": annotated.__version__, "torch": str(torch.__version__), "python": sys.version.split()[0],
            "device": str(device), "git_commit": commit, "created": datetime.now().isoformat(timespec="seconds")}  # fmt: skip


def save_checkpoint(path: Path, resolved: Resolved, state: dict) -> None:
    """model.pt: loadable by ``annotated.models.load_model``, plus the state :func:`resume` needs."""
    state = dict(state)
    write_checkpoint(path, resolved.model_config, state.pop("model"), training_state=state)


# --- runs ---------------------------------------------------------------------------------------


def run(config, out_dir="experiments", *, progress: bool = False, callback=None, _folder: Path | None = None) -> Path:
    """Train one experiment into a new run folder and return its path (see the module docstring).
    Errors in the config raise ValueError before any folder is made; a failure during training
    re-raises after marking the folder's report ``failed``."""
    config = as_config(config)
    if config.grid:
        raise ValueError("this config has a grid: run it with sweep(), or remove grid")
    resolved = resolve(config)
    folder = _folder or new_folder(Path(out_dir), config.name)
    return _train_into(folder, resolved, progress=progress, callback=callback)


def resume(folder, *, progress: bool = False, callback=None) -> Path:
    """Continue an interrupted or failed run from its last checkpoint (model.pt) in its own folder."""
    folder = Path(folder)
    status = (
        json.loads((folder / "report.json").read_text()).get("status") if (folder / "report.json").is_file() else None
    )
    if status == "completed":
        raise ValueError(f"{folder} is already complete; nothing to resume")
    if not (folder / "model.pt").is_file():
        raise ValueError(f"{folder} has no checkpoint (model.pt); it cannot be resumed — start it again with run()")
    resolved = resolve(ExperimentConfig.from_file(folder / "config.yaml"))
    checkpoint = read_checkpoint(folder / "model.pt")
    state = {**checkpoint["training_state"], "model": checkpoint["state_dict"]}
    return _train_into(folder, resolved, progress=progress, callback=callback, resume_state=state)


def _train_into(folder: Path, resolved: Resolved, *, progress, callback, resume_state=None) -> Path:
    device = resolve_device(resolved.train_config.device)
    write_atomic(folder / "config.yaml", yaml.safe_dump(resolved.to_dict() | {"environment": environment(device)},
                                                        sort_keys=False, allow_unicode=True))  # fmt: skip
    model = resolved.build_model()
    info = {"name": resolved.config.name, "task": resolved.config.task, "parameters": count_parameters(model)}
    info |= {"train_length": list(resolved.lengths), "eval_lengths": resolved.eval_lengths, "device": str(device)}
    write_report(folder, info | {"status": "running"}, None)
    began = time.perf_counter()
    live = History.from_dict(resume_state["history"]) if resume_state else History()  # what a failure keeps

    def record(kind, row):
        (live.steps if kind == "step" else live.evals).append(row)
        if callback:
            callback(kind, row)

    try:
        history = train(model, resolved.task, train_length=list(resolved.lengths), eval_lengths=resolved.eval_lengths,
                        config=resolved.train_config, progress=progress, callback=record, resume_state=resume_state,
                        checkpoint=lambda state: save_checkpoint(folder / "model.pt", resolved, state))  # fmt: skip
    except BaseException as error:
        history = getattr(error, "history", None) or live
        history.meta["steps_done"] = history.steps[-1]["step"] if history.steps else 0
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        info |= {"status": status, "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
        info["wall_time_s"] = time.perf_counter() - began
        write_report(folder, info, history)
        raise
    info |= {"status": "completed", "error": None, "wall_time_s": time.perf_counter() - began}
    write_report(folder, info, history, model=model.cpu(), task=resolved.task, length=resolved.lengths[1])
    return folder


# --- sweeps -------------------------------------------------------------------------------------


def expand_grid(config: ExperimentConfig) -> list[ExperimentConfig]:
    """One config per point of the grid's cross product, named ``<name>-<key>=<value>-…``."""
    if not config.grid:
        raise ValueError("a sweep needs a grid, e.g. grid: {model.positional: [rope, alibi], seed: [0, 1]}")
    for key, values in config.grid.items():
        if key.split(".")[0] not in GRID_KEYS or (key.split(".")[0] in ("model", "train")) != ("." in key):
            raise ValueError(f"grid key {key!r} is not sweepable; use one of {list(GRID_KEYS)} or model.X / train.X")
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid[{key!r}] must be a non-empty list of values, got {values!r}")
    configs = []
    for point in itertools.product(*config.grid.values()):
        values = config.to_dict() | {"grid": {}}
        values["model"], values["train"] = dict(values["model"]), dict(values["train"])
        parts = []
        for key, value in zip(config.grid, point):
            head, _, rest = key.partition(".")
            (values[head].__setitem__(rest, value) if rest else values.__setitem__(head, value))
            parts.append(f"{rest or head}={re.sub(r'[^A-Za-z0-9_.]+', '_', str(value))}")
        values["name"] = "-".join([config.name, *parts])
        configs.append(ExperimentConfig.from_dict(values, base_dir=config.base_dir))
    return configs


def sweep(config, out_dir="experiments", *, progress: bool = False) -> Path:
    """Run every point of ``config.grid`` inside one new folder, then write summary.csv and report.md.
    Every config is checked first; a run that fails is marked and the sweep goes on."""
    config = as_config(config)
    runs = expand_grid(config)
    for point in runs:
        resolve(point)
    folder = new_folder(Path(out_dir), config.name)
    write_atomic(folder / "sweep.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
    for point in runs:
        try:
            run(point, progress=progress, _folder=new_folder(folder, point.name, stamp=False))
        except KeyboardInterrupt:
            raise
        except Exception:  # marked "failed" in its report.json; the summary shows it
            continue
    write_summary(folder)
    return folder


def report(path) -> Path:
    """Re-render report.json / report.md / plots of a run folder, or of every run of a sweep and its summary."""
    path = Path(path)
    if (path / "sweep.yaml").is_file():
        for child in sorted(p for p in path.iterdir() if (p / "config.yaml").is_file()):
            rerender_run(child)
        write_summary(path)
    elif (path / "config.yaml").is_file():
        rerender_run(path)
    else:
        raise ValueError(f"{path} is neither a run folder (config.yaml) nor a sweep folder (sweep.yaml)")
    return path


# --- reports (rendering lives in annotated.reports) ---------------------------------------------


def rerender_run(folder: Path) -> dict:
    """Rebuild a run's plots and reports from its CSVs (and its model.pt for the attention maps)."""
    info = json.loads((folder / "report.json").read_text()) if (folder / "report.json").is_file() else {}
    config = yaml.safe_load((folder / "config.yaml").read_text())
    info = {k: v for k, v in info.items() if k not in ("per_length", "in_distribution", "generalisation_gap")}
    low, high = length_range(config["train_length"])
    info = {"name": config["name"], "task": config["task"], "train_length": [low, high],
            "eval_lengths": config["eval_lengths"], "parameters": None, "device": None, "status": "unknown"} | info  # fmt: skip
    history = History(read_csv(folder / "metrics.csv"), read_csv(folder / "eval.csv"))
    history.meta = {"steps_done": info.get("steps_done"), "train_time_s": info.get("train_time_s")}
    model = task = None
    if (folder / "model.pt").is_file():
        try:
            model = load_model(folder / "model.pt")
            task = resolve(ExperimentConfig.from_file(folder / "config.yaml")).task
            info["parameters"] = count_parameters(model)
        except (ValueError, OSError):
            model = None
    return write_report(folder, info, history, model=model, task=task, length=high)


def write_summary(folder: Path) -> list[dict]:
    """summary.csv (a row per run, then mean and std over seeds per group) and a comparative report.md."""
    sweep_config = ExperimentConfig.from_file(folder / "sweep.yaml")
    keys = list(sweep_config.grid)
    rows = []
    for point in expand_grid(sweep_config):
        run_dir = folder / point.name
        summary = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").is_file() else {}
        values = point.to_dict()
        row = {"kind": "run", "run": point.name, "status": summary.get("status", "missing")}
        for key in keys:
            head, _, rest = key.partition(".")
            row[key] = values[head][rest] if rest else values[head]
        rows.append(row | run_row(summary))
    group_rows = group_statistics(rows, keys)
    write_csv(folder / "summary.csv", rows + group_rows)
    write_atomic(folder / "report.md", sweep_markdown(folder, sweep_config.name, sweep_config.grid, rows, group_rows))
    return rows + group_rows
