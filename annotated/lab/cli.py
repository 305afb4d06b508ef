"""The command line:
``python -m annotated {train,sweep,report,resume,list,bench}``.

    python -m annotated train --task sort --pe rope --layers 2 --d-model 64 --steps 500 --eval-lengths 12 16
    python -m annotated train --config sort_rope            # a config shipped in annotated/lab/configs/
    python -m annotated sweep sweep_small                   # or a path to your own YAML / JSON
    python -m annotated sweep sweep_small --jobs 2          # two runs at once, one torch thread each
    python -m annotated sweep --resume experiments/20250101-120000_sweep_small   # finish a stopped sweep
    python -m annotated report experiments/20250101-120000_sort_rope
    python -m annotated list

``train`` has one flag per field of :class:`~annotated.lab.ExperimentConfig`,
:class:`~annotated.models.config.ModelConfig` and
:class:`~annotated.training.config.TrainConfig`, generated from the
dataclasses by :mod:`annotated.lab.flags` (help from each field's comment,
choices from the registries), so ``--help`` says what the configs say. Older
spellings (``--pe``, ``--layers``, ``--heads``, ``--warmup``…) stay as
aliases. Left out: ``model.vocab_size`` (the task gives it), ``train.seed``
(``--seed`` seeds both) and ``grid`` (a sweep's; run it with
``sweep CONFIG``).

``--plugin my_tasks.py`` (or a module name) is imported before anything else,
so tasks it registers with ``annotated.tasks.register_task`` can be named with
``--task``; sweep configs list theirs under ``plugins:``. Exit status: 0
success; 2 a usage or config error, one line on stderr and nothing written (a
wrong type or range, a missing corpus, a device this machine lacks, a run that
cannot be resumed, a damaged file ``report`` reads); 1 a failure while running
(the run folder is marked ``failed``, or ``diverged`` with its last good state
in model.pt); 130 interrupted by Ctrl-C or SIGTERM (model.pt holds the last
good state: ``resume`` continues it).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from annotated import bench, lab
from annotated.kernels import ATTENTION_KERNELS
from annotated.lab import ExperimentConfig, find_config, shipped_configs
from annotated.lab.flags import OneMetavarFormatter, add_flags, apply_flags
from annotated.lab.runs import check_resumable
from annotated.models.blocks import ACTIVATIONS, NORM_PLACEMENTS
from annotated.models.config import ARCHITECTURES, ModelConfig
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.tasks import TASKS
from annotated.tasks.text import ChecksumMismatchError, CorpusUnavailableError
from annotated.training.config import TrainConfig

__all__ = ["build_parser", "experiment_from_args", "main"]

# where a train flag's value goes: the experiment, or its model / train
SECTIONS = ("experiment", "model", "train")
NOT_FLAGS = {
    # sections (flags per field); sweeps; internal
    "experiment": ("model", "train", "grid", "overrides", "base_dir"),
    "model": ("vocab_size",),  # the task gives it
    "train": ("seed",),  # the experiment's --seed seeds training too
}
# the flags' older names, kept so that commands written for them still run
ALIASES = {
    "experiment": {"task_kwargs": ("--task-arg",), "plugins": ("--plugin",)},
    "model": {
        "positional": ("--pe",),
        "n_layers": ("--layers",),
        "n_heads": ("--heads",),
        "n_kv_heads": ("--kv-heads",),
        "attention_params": ("--attention-param",),
    },
    "train": {"warmup_steps": ("--warmup",)},
}
# exit 2 (ConfigError is a ValueError)
USER_ERRORS = (ValueError, CorpusUnavailableError, ChecksumMismatchError)
# a run's name when neither --name nor --config gives one
DEFAULT_NAME = "<task>_<positional>"


def registry_choices() -> dict[str, dict]:
    """The values a field may take, per section, from the registries (read
    when the parser is built)."""
    return {
        "model": {
            "positional": sorted(POSITIONAL_ENCODINGS),
            "attention": list(ATTENTION_KERNELS),
            "arch": ARCHITECTURES,
            "norm": NORM_PLACEMENTS,
            "activation": ACTIVATIONS,
        }
    }


def add_plugin_flag(parser) -> None:
    """The ``plugins`` field of an experiment, as ``--plugins`` /
    ``--plugin``."""
    add_flags(
        parser,
        ExperimentConfig,
        "experiment",
        only=("plugins",),
        aliases=ALIASES["experiment"],
    )


def add_experiment_flags(parser) -> list:
    """Every field of an experiment, its model and its training, as
    ``train``'s flags."""
    choices = registry_choices()
    groups = {
        "experiment": (
            ExperimentConfig,
            parser.add_argument_group("experiment (ExperimentConfig)"),
        ),
        "model": (
            ModelConfig,
            parser.add_argument_group("model (ModelConfig)"),
        ),
        "train": (
            TrainConfig,
            parser.add_argument_group("training (TrainConfig)"),
        ),
    }
    notes = {"experiment": {"task": f"; one of: {', '.join(sorted(TASKS))}"}}
    defaults = {"experiment": {"name": DEFAULT_NAME}} | lab.LAB_DEFAULTS
    flags = []
    for section, (cls, group) in groups.items():
        flags += add_flags(
            group,
            cls,
            section,
            skip=NOT_FLAGS[section],
            aliases=ALIASES.get(section),
            choices=choices.get(section),
            notes=notes.get(section),
            defaults=defaults.get(section),
        )
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m annotated",
        description="Annotated Attention lab: train transformers on algorithmic tasks and compare them.",
        epilog="Exit status: 0 ok, 2 usage/config error, 1 failure while running, 130 interrupted.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    command = functools.partial(
        commands.add_parser, formatter_class=OneMetavarFormatter
    )

    def output_options(p):
        p.add_argument(
            "--out",
            default="experiments",
            help="folder that receives the run/sweep folder (default: %(default)s)",
        )
        p.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=sys.stderr.isatty(),
            help="show a progress bar (default: on in a terminal)",
        )

    t = command(
        "train",
        help="train one model into a new run folder",
        description="Every flag sets one config field; flags not given keep the config's value.",
    )
    t.add_argument(
        "--config",
        help=f"YAML/JSON experiment file or shipped name ({', '.join(shipped_configs())}); "
        "flags given as well override it",
    )
    t.set_defaults(config_flags=add_experiment_flags(t))
    output_options(t)

    s = command(
        "sweep",
        help="run the grid of a config (cross product) into a sweep folder",
        description="Run every grid point into a new sweep folder, or finish one with --resume FOLDER: "
        "completed runs are skipped, stopped runs resume from their checkpoints, missing runs start. "
        "On a Ray cluster (pip install 'annotated[cluster]'): ray start --head on one machine, "
        "then --executor ray --address HEAD_IP:6379 (or auto).",
    )
    s.add_argument(
        "config",
        nargs="?",
        help=f"YAML/JSON file with a grid, or a shipped name ({', '.join(shipped_configs())})",
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
        choices=lab.EXECUTORS,
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
    output_options(s)
    r = command(
        "report",
        help="re-render reports, plots and summary of a run or sweep folder",
    )
    r.add_argument(
        "path",
        help="a run folder (config.yaml) or a sweep folder (sweep.yaml)",
    )
    add_plugin_flag(r)
    u = command(
        "resume", help="continue an interrupted run from its last checkpoint"
    )
    u.add_argument("path", help="the run folder")
    u.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=sys.stderr.isatty(),
        help="progress bar",
    )
    lst = command(
        "list",
        help="list tasks, positional encodings, attention kernels and shipped configs",
    )
    add_plugin_flag(lst)
    commands.add_parser(
        "bench",
        help="attention benchmarks: python -m annotated bench --help",
        add_help=False,
    )
    return parser


def experiment_from_args(args) -> ExperimentConfig:
    """An ExperimentConfig from ``--config`` (if any) with every flag that was
    given on top: a value replaces the file's, a mapping (``--task-kwargs``,
    ``--attention-params``) is merged into it, ``--plugin`` adds to its
    plugins."""
    path = find_config(args.config) if args.config else None
    config = ExperimentConfig.from_file(path).to_dict() if path else {}
    config["model"], config["train"] = (
        dict(config.get("model", {})),
        dict(config.get("train", {})),
    )
    apply_flags(
        args,
        args.config_flags,
        {
            "experiment": config,
            "model": config["model"],
            "train": config["train"],
        },
    )
    if path is None and "name" not in config:
        task = config.get("task", ExperimentConfig.task)
        config["name"] = (
            f"{task}_{config['model'].get('positional', ModelConfig.positional)}"
        )
    return ExperimentConfig.from_dict(
        config, base_dir=path.parent if path else None
    )


def sweep_from_args(args, plugins) -> ExperimentConfig | None:
    """The sweep's config (None with ``--resume``), every point and the
    executor checked: ValueError if not."""
    if (args.config is None) == (args.resume is None):
        raise ValueError(
            "give a sweep config or --resume FOLDER (one of them)"
        )
    lab.check_executor(args.executor, args.jobs, args.address)
    if args.resume:
        points = [point for point, _ in lab.sweep_runs(args.resume)]
        config = None
    else:
        config = ExperimentConfig.from_file(find_config(args.config))
        config.plugins = list(config.plugins) + list(plugins)
        points = lab.expand_grid(config)
    for point in points:
        point.plugins = list(point.plugins) + (
            [] if config else list(plugins)
        )
        lab.resolve(point)
    return config


def _print_run(folder) -> None:
    summary = json.loads((Path(folder) / "report.json").read_text())
    results = ", ".join(
        f"n={n}: {r['exact_match']:.3f}"
        for n, r in summary["per_length"].items()
    )
    print(f"{folder}: {summary['status']}; exact match {results}")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        bench.main(argv[1:])
        return 0
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument(
        "--plugin", "--plugins", action="append", default=[], dest="plugins"
    )
    try:
        # before the parser lists the tasks
        lab.load_plugins(pre.parse_known_args(argv)[0].plugins)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    plugins = vars(args).get("experiment.plugins", [])
    try:
        if args.command == "list":
            return list_everything()
        if args.command == "train":
            config = experiment_from_args(args)
            if config.grid:
                raise ValueError(
                    "this config has a grid; run it with: python -m annotated sweep CONFIG"
                )
            lab.resolve(config)
        elif args.command == "sweep":
            config = sweep_from_args(args, plugins)
        elif not Path(args.path).is_dir():
            raise ValueError(f"{args.path} is not a folder")
        elif args.command == "resume":
            # complete, still training, no checkpoint, a damaged file: said
            # before training
            check_resumable(args.path)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    try:
        if args.command == "train":
            _print_run(lab.run(config, args.out, progress=args.progress))
        elif args.command == "sweep":
            where = {
                "jobs": args.jobs,
                "executor": args.executor,
                "address": args.address,
                "progress": args.progress,
            }
            if args.resume:
                folder = lab.resume_sweep(
                    args.resume, plugins=plugins, **where
                )
            else:
                folder = lab.sweep(config, args.out, **where)
            print(f"{folder}: summary.csv and report.md written")
            failed = [
                r["run"]
                for r in lab.read_csv(folder / "summary.csv")
                if r["kind"] == "run" and r["status"] != "completed"
            ]
            if failed:
                print(
                    f"error: {len(failed)} run(s) failed: {', '.join(failed)} (see their report.md)",
                    file=sys.stderr,
                )
                return 1
        elif args.command == "resume":
            _print_run(lab.resume(args.path, progress=args.progress))
        else:
            print(f"re-rendered {lab.report(args.path)}")
    # Ctrl-C, or SIGTERM while a run trains
    except KeyboardInterrupt as error:
        print(f"interrupted{_resume_hint(error)}", file=sys.stderr)
        return 130
    # the run folder says "failed" (or "diverged") with the traceback
    except Exception as error:
        # report only reads: a damaged file
        if args.command == "report" and isinstance(error, USER_ERRORS):
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(
            f"error: {type(error).__name__}: {error}{_resume_hint(error)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _resume_hint(error: BaseException) -> str:
    """Where a stopped run keeps its last good state, and the command that
    continues it."""
    folder = getattr(error, "run_folder", None)
    if folder is None or not (Path(folder) / "model.pt").is_file():
        return ""
    return f"; {folder}/model.pt holds its last good state — continue with: python -m annotated resume {folder}"


def list_everything() -> int:
    def first_line(obj) -> str:
        return (obj.__doc__ or "").strip().split("\n")[0]

    print("tasks (--task):")
    for name, task in sorted(TASKS.items()):
        print(f"  {name:20s} {first_line(type(task))}")
    print("positional encodings (--pe):")
    for name, cls in POSITIONAL_ENCODINGS.items():
        print(f"  {name:20s} {first_line(cls)}")
    print("attention kernels (--attention):")
    for name, kernel in ATTENTION_KERNELS.items():
        print(
            f"  {name:20s} {kernel.summary} ({'exact' if kernel.exact else 'approximate'}, memory {kernel.memory})"
        )
    print(
        f"shipped configs (--config NAME, sweep NAME): {', '.join(shipped_configs())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
