"""The command line:
``python -m annotated {train,sweep,report,resume,list,bench}``.

::

    python -m annotated train --task sort --positional rope --steps 500
    python -m annotated train --config sort_rope   # a shipped config
    python -m annotated sweep sweep_small --jobs 2 # or your own YAML / JSON
    python -m annotated sweep --resume experiments/<date>_sweep_small
    python -m annotated report experiments/<date>_sort_rope

``train`` has one flag per field of :class:`~annotated.lab.ExperimentConfig`,
:class:`~annotated.models.config.ModelConfig` and
:class:`~annotated.training.config.TrainConfig`, generated from the
dataclasses by :mod:`annotated.lab.flags` (help from each field's comment,
choices from the registries or a field's ``metadata``), so ``--help`` says
what the configs say, and ``resume RUN`` one per field a run may change
mid-run (``--lr 1e-4``). Left out: ``model.vocab_size`` (the task's),
``train.seed`` (``--seed`` seeds both), ``grid`` (a sweep's). Flags are
written in full; ``--plugins`` are imported first, so ``--task`` can name the
tasks they register.

Exit status: 0 success; 2 a usage or config error, one line on stderr and
nothing written (a wrong type or range, a missing corpus, a device this
machine lacks, too little memory, a run that cannot be resumed, a damaged
file); 1 a failure while running (the run is marked ``failed``, or
``diverged``); 130 interrupted by Ctrl-C or SIGTERM. ``resume`` continues a
stopped run from model.pt; the subcommands are :mod:`annotated.lab.commands`.
"""

from __future__ import annotations

import argparse
import functools
import sys

from annotated.kernels import ATTENTION_KERNELS
from annotated.lab import commands
from annotated.lab.config import (
    ExperimentConfig,
    find_config,
    shipped_configs,
)
from annotated.lab.executors import EXECUTORS
from annotated.lab.flags import add_flags, apply_flags
from annotated.lab.plugins import load_plugins
from annotated.lab.resuming import RESUME_FLAGS
from annotated.lab.validation import LAB_DEFAULTS
from annotated.models.blocks import NORM_PLACEMENTS
from annotated.models.config import ARCHITECTURES, ModelConfig
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.tasks import TASKS
from annotated.training.config import TrainConfig

__all__ = ["build_parser", "experiment_from_args", "main"]

NOT_FLAGS = {
    # not train's flags: sections (a flag per field); sweeps'; internal
    "experiment": ("model", "train", "grid", "overrides", "base_dir"),
    "model": ("vocab_size",),  # the task gives it
    "train": ("seed",),  # the experiment's --seed seeds training too
}
# a run's name when neither --name nor --config gives one
DEFAULT_NAME = "<task>_<positional>"


def registry_choices() -> dict[str, dict]:
    """The values a field may take, per section: the registries' names."""
    return {
        "model": {
            "positional": sorted(POSITIONAL_ENCODINGS),
            "attention": list(ATTENTION_KERNELS),
            "arch": ARCHITECTURES,
            "norm": NORM_PLACEMENTS,
        }
    }


def add_plugin_flag(parser) -> None:
    """The ``plugins`` field of an experiment, as ``--plugins``."""
    add_flags(parser, ExperimentConfig, "experiment", only=("plugins",))


def add_experiment_flags(parser) -> list:
    """Every field of an experiment, its model and its training, as
    ``train``'s flags."""
    choices = registry_choices()
    groups = {
        "experiment": (ExperimentConfig, "experiment (ExperimentConfig)"),
        "model": (ModelConfig, "model (ModelConfig)"),
        "train": (TrainConfig, "training (TrainConfig)"),
    }
    notes = {"experiment": {"task": f"; one of: {', '.join(sorted(TASKS))}"}}
    defaults = {"experiment": {"name": DEFAULT_NAME}} | LAB_DEFAULTS
    flags = []
    for section, (cls, title) in groups.items():
        flags += add_flags(
            parser.add_argument_group(title),
            cls,
            section,
            skip=NOT_FLAGS[section],
            choices=choices.get(section),
            notes=notes.get(section),
            defaults=defaults.get(section),
        )
    return flags


def add_output_flags(parser, *, out: bool = True) -> None:
    if out:
        parser.add_argument(
            "--out",
            default="experiments",
            help="folder that receives the run/sweep folder "
            "(default: %(default)s)",
        )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=sys.stderr.isatty(),
        help="show a progress bar (default: on in a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m annotated",
        description="Annotated Attention lab: train transformers on "
        "algorithmic tasks and compare them.",
        epilog="Exit status: 0 ok, 2 usage/config error, 1 failure while "
        "running, 130 interrupted.",
        allow_abbrev=False,
    )
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    command = functools.partial(subparsers.add_parser, allow_abbrev=False)
    shipped = ", ".join(shipped_configs())
    t = command(
        "train",
        help="train one model into a new run folder",
        description="Every flag sets one config field; flags not given keep "
        "the config's value.",
    )
    t.add_argument(
        "--config",
        help=f"YAML/JSON experiment file or shipped name ({shipped}); "
        "flags given as well override it",
    )
    t.set_defaults(config_flags=add_experiment_flags(t))
    add_output_flags(t)
    s = command(
        "sweep",
        help="run the grid of a config (cross product) into a sweep folder",
        description="Run every grid point into a new sweep folder, or finish "
        "one with --resume FOLDER: completed runs are skipped, stopped runs "
        "resume from their checkpoints, missing runs start. On a Ray cluster "
        "(pip install 'annotated[cluster]'): ray start --head on one "
        "machine, then --executor ray --address HEAD_IP:6379 (or auto).",
    )
    s.add_argument(
        "config",
        nargs="?",
        help=f"YAML/JSON file with a grid, or a shipped name ({shipped})",
    )
    s.add_argument(
        "--resume",
        metavar="FOLDER",
        help="finish the sweep in FOLDER (a sweep folder) instead",
    )
    s.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="runs at once in local processes, one torch thread each "
        "(default: %(default)s, in this process)",
    )
    s.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where runs train (default: %(default)s)",
    )
    s.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster's address: HOST:PORT, or auto for the one "
        "ray start made on this machine (--executor ray only)",
    )
    add_plugin_flag(s)
    add_output_flags(s)
    r = command(
        "report",
        help="re-render reports, plots and summary of a run or sweep folder",
    )
    r.add_argument(
        "path",
        help="a run folder (config.yaml) or a sweep folder (sweep.yaml)",
    )
    add_plugin_flag(r)
    u = command("resume", help="continue a stopped run from its checkpoint")
    u.add_argument("path", help="the run folder")
    u.set_defaults(mid_run=add_flags(u, TrainConfig, "train", **RESUME_FLAGS))
    add_output_flags(u, out=False)
    lst = command(
        "list",
        help="list tasks, positional encodings, attention kernels and "
        "shipped configs",
    )
    add_plugin_flag(lst)
    subparsers.add_parser(
        "bench",
        help="attention benchmarks: python -m annotated bench --help",
        add_help=False,
    )
    return parser


def experiment_from_args(args) -> ExperimentConfig:
    """An ExperimentConfig from ``--config`` (if any) with every flag that
    was given on top: a value replaces the file's, a mapping
    (``--task-kwargs``, ``--attention-params``) is merged into it,
    ``--plugins`` adds to its plugins."""
    path = find_config(args.config) if args.config else None
    config = ExperimentConfig.from_file(path).to_dict() if path else {}
    config["model"] = dict(config.get("model", {}))
    config["train"] = dict(config.get("train", {}))
    sections = {"experiment": config} | {
        k: config[k] for k in ("model", "train")
    }
    apply_flags(args, args.config_flags, sections)
    if path is None and "name" not in config:
        task = config.get("task", ExperimentConfig.task)
        positional = config["model"].get("positional", ModelConfig.positional)
        config["name"] = f"{task}_{positional}"
    return ExperimentConfig.from_dict(
        config, base_dir=path.parent if path else None
    )


def plugins_given(argv: list[str]) -> list[str]:
    """The ``--plugins`` on a command line, read before the parser is built
    (so that ``train --help`` lists the tasks they register)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--plugins", action="append", default=[])
    return pre.parse_known_args(argv)[0].plugins


def run_command(args) -> int:
    """Hand the parsed command line to its subcommand."""
    plugins = vars(args).get("experiment.plugins", [])
    if args.command == "train":
        config = experiment_from_args(args)
        return commands.train(config, args.out, progress=args.progress)
    if args.command == "sweep":
        where = ("jobs", "executor", "address", "progress", "out", "resume")
        return commands.sweep(
            args.config, plugins=plugins, **{k: vars(args)[k] for k in where}
        )
    if args.command == "resume":
        mid_run = {}  # the training fields given, if any
        apply_flags(args, args.mid_run, {"train": mid_run})
        return commands.resume(args.path, mid_run, progress=args.progress)
    if args.command == "report":
        return commands.report(args.path)
    return commands.list_everything()


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # its own parser; loaded only here
        from annotated.bench import main as bench

        bench(argv[1:])
        return 0
    try:
        load_plugins(plugins_given(argv))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        return run_command(args)
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM while training
        print(f"interrupted{commands.resume_hint(error)}", file=sys.stderr)
        return 130
    except Exception as error:
        # refused before anything ran: a config, folder or file to fix
        if isinstance(error, commands.USER_ERRORS) and not commands.ran(
            error
        ):
            print(f"error: {error}", file=sys.stderr)
            return 2
        # the run folder says "failed" (or "diverged") with the traceback
        hint = commands.resume_hint(error)
        name = type(error).__name__
        print(f"error: {name}: {error}{hint}", file=sys.stderr)
        return 1
