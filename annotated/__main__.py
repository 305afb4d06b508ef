"""The command line: ``python -m annotated {train,sweep,report,resume,list,bench}``.

    python -m annotated train --task sort --pe rope --layers 2 --d-model 64 --steps 500 --eval-lengths 12 16
    python -m annotated train --config sort_rope            # a config shipped in annotated/configs/
    python -m annotated sweep sweep_small                   # or a path to your own YAML / JSON
    python -m annotated report experiments/20250101-120000_sort_rope
    python -m annotated list

``--plugin my_tasks.py`` (or a module name) is imported before anything else, so tasks it
registers with ``annotated.tasks.register_task`` can be named with ``--task``; sweep configs
list theirs under ``plugins:``. Exit status: 0 success, 2 a usage or config error (nothing
is written), 1 a failure while running (the run folder is marked ``failed``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "configs"


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_config(name: str) -> Path:
    """A path, or the name of a config shipped in annotated/configs/ (with or without .yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if shipped.is_file():
        return shipped
    raise ValueError(
        f"no config file {name!r}; give a path or one of the shipped configs: {', '.join(shipped_configs())}"
    )


def _defaults(cls) -> dict:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def build_parser() -> argparse.ArgumentParser:
    from annotated.efficient import ATTENTION_KERNELS
    from annotated.models import ModelConfig
    from annotated.positional import POSITIONAL_ENCODINGS
    from annotated.tasks import TASKS
    from annotated.train import TrainConfig

    model, train = _defaults(ModelConfig), _defaults(TrainConfig)
    parser = argparse.ArgumentParser(
        prog="python -m annotated",
        description="Annotated Attention lab: train transformers on algorithmic tasks and compare them.",
        epilog="Exit status: 0 ok, 2 usage/config error, 1 failure while running, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p):
        p.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="FILE_OR_MODULE",
            help="Python file or module imported first (e.g. one that calls register_task); repeatable",
        )
        p.add_argument(
            "--out", default="experiments", help="folder that receives the run/sweep folder (default: %(default)s)"
        )
        p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(),
                       help="show a progress bar (default: on in a terminal)")  # fmt: skip

    t = commands.add_parser("train", help="train one model into a new run folder")
    t.add_argument("--config", help=f"YAML/JSON experiment file or shipped name ({', '.join(shipped_configs())}); "
                   "flags given as well override it")  # fmt: skip
    t.add_argument("--name", help="run name, the folder's suffix (default: <task>_<pe>)")
    t.add_argument("--task", help=f"task name: {', '.join(sorted(TASKS))} (default: sort)")
    t.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="argument of the task's constructor, e.g. n_symbols=5; repeatable")  # fmt: skip
    t.add_argument("--train-length", help="problem length, or LOW:HIGH to draw one per step (default: 8)")
    t.add_argument("--eval-lengths", type=int, nargs="+", help="extra evaluation lengths, e.g. 12 16 (default: none)")
    t.add_argument("--seed", type=int, help="seeds the model's initialisation and training (default: 0)")
    g = t.add_argument_group("model")
    g.add_argument(
        "--pe", choices=sorted(POSITIONAL_ENCODINGS), help=f"positional encoding (default: {model['positional']})"
    )
    g.add_argument("--attention", choices=list(ATTENTION_KERNELS),
                   help=f"attention kernel (default: {model['attention']}; only 'full' is wired into the models)")  # fmt: skip
    g.add_argument(
        "--attention-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="kernel setting, e.g. window=4 (local), top_k=8 (topk), block_size=64 (blockwise); repeatable",
    )
    g.add_argument("--layers", type=int, help=f"number of blocks (default: {model['n_layers']})")
    g.add_argument("--d-model", type=int, help=f"model width C (default: {model['d_model']})")
    g.add_argument("--heads", type=int, help=f"attention heads (default: {model['n_heads']})")
    g.add_argument("--kv-heads", type=int, help="key/value heads for grouped-query attention (default: = heads)")
    g.add_argument("--d-ff", type=int, help="feed-forward width (default: 4 × d-model)")
    g.add_argument(
        "--max-len",
        type=int,
        help="learned table size / randomized PE training length (default: training sequence length)",
    )
    g.add_argument("--dropout", type=float, help=f"dropout rate (default: {model['dropout']})")
    g.add_argument("--norm", choices=["pre", "post"], help=f"LayerNorm placement (default: {model['norm']})")
    g.add_argument(
        "--activation", choices=["gelu", "relu"], help=f"feed-forward activation (default: {model['activation']})"
    )
    g = t.add_argument_group("training")
    g.add_argument("--steps", type=int, help=f"optimizer steps (default: {train['steps']})")
    g.add_argument("--batch-size", type=int, help=f"sequences per step (default: {train['batch_size']})")
    g.add_argument("--lr", type=float, help=f"peak learning rate (default: {train['lr']})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default: {train['weight_decay']})")
    g.add_argument("--warmup", type=int, help=f"linear warm-up steps (default: {train['warmup_steps']})")
    g.add_argument(
        "--min-lr-ratio", type=float, help=f"cosine floor as a fraction of lr (default: {train['min_lr_ratio']})"
    )
    g.add_argument("--grad-clip", type=float, help=f"max gradient norm, 0 = off (default: {train['grad_clip']})")
    g.add_argument("--eval-every", type=int, help="evaluate every N steps, 0 = only at the end (default: 0)")
    g.add_argument("--eval-batches", type=int, help=f"held-out batches per length (default: {train['eval_batches']})")
    g.add_argument(
        "--checkpoint-every", type=int, help="save model.pt every N steps for resume (default: 0 = at the end)"
    )
    g.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available)")
    common(t)

    s = commands.add_parser("sweep", help="run the grid of a config (cross product) into a sweep folder")
    s.add_argument("config", help=f"YAML/JSON file with a grid, or a shipped name ({', '.join(shipped_configs())})")
    common(s)
    r = commands.add_parser("report", help="re-render reports, plots and summary of a run or sweep folder")
    r.add_argument("path", help="a run folder (config.yaml) or a sweep folder (sweep.yaml)")
    r.add_argument("--plugin", action="append", default=[], help="plugin the runs need (their tasks)")
    u = commands.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    u.add_argument("path", help="the run folder")
    u.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(), help="progress bar"
    )
    lst = commands.add_parser("list", help="list tasks, positional encodings, attention kernels and shipped configs")
    lst.add_argument("--plugin", action="append", default=[], help="also list the tasks this plugin registers")
    commands.add_parser("bench", help="attention benchmarks: python -m annotated bench --help", add_help=False)
    return parser


def key_values(items: list[str], flag: str) -> dict:
    """``["n=5", "name=x"]`` → ``{"n": 5, "name": "x"}`` (values read as YAML scalars)."""
    import yaml

    pairs = [item.partition("=") for item in items]
    if any(not sep or not key for key, sep, _ in pairs):
        raise ValueError(f"{flag} takes KEY=VALUE, got {items}")
    return {key: yaml.safe_load(value) for key, _, value in pairs}


def experiment_from_args(args):
    """An ExperimentConfig from ``--config`` (if any) with every flag that was given on top."""
    from annotated.lab import ExperimentConfig
    from annotated.train import TrainConfig

    config = ExperimentConfig.from_file(find_config(args.config)).to_dict() if args.config else {}
    config.setdefault("model", {})
    config.setdefault("train", {})
    base_dir = str(find_config(args.config).parent) if args.config else None
    for flag, key in (("task", "task"), ("seed", "seed"), ("name", "name")):
        if getattr(args, flag) is not None:
            config[key] = getattr(args, flag)
    if args.train_length is not None:
        low, _, high = args.train_length.partition(":")
        try:
            config["train_length"] = [int(low), int(high)] if high else int(low)
        except ValueError:
            raise ValueError(f"--train-length takes N or LOW:HIGH, got {args.train_length!r}") from None
    if args.eval_lengths is not None:
        config["eval_lengths"] = args.eval_lengths
    if args.task_arg:
        config["task_kwargs"] = config.get("task_kwargs", {}) | key_values(args.task_arg, "--task-arg")
    if args.attention_param:
        params = config["model"].get("attention_params", {}) | key_values(args.attention_param, "--attention-param")
        config["model"]["attention_params"] = params
    model_flags = {"pe": "positional", "attention": "attention", "layers": "n_layers", "d_model": "d_model",
                   "heads": "n_heads", "kv_heads": "n_kv_heads", "d_ff": "d_ff", "max_len": "max_len",
                   "dropout": "dropout", "norm": "norm", "activation": "activation"}  # fmt: skip
    train_flags = {"steps": "steps", "batch_size": "batch_size", "lr": "lr", "weight_decay": "weight_decay",
                   "warmup": "warmup_steps", "min_lr_ratio": "min_lr_ratio", "grad_clip": "grad_clip",
                   "eval_every": "eval_every", "eval_batches": "eval_batches", "checkpoint_every": "checkpoint_every",
                   "device": "device"}  # fmt: skip
    for flags, section in ((model_flags, "model"), (train_flags, "train")):
        for flag, key in flags.items():
            if getattr(args, flag) is not None:
                config[section][key] = getattr(args, flag)
    if "warmup_steps" not in config["train"] and "steps" in config["train"]:  # keep the default warm-up ≤ steps
        config["train"]["warmup_steps"] = min(_defaults(TrainConfig)["warmup_steps"], config["train"]["steps"] // 10)
    if config["train"].get("grad_clip") == 0:
        config["train"]["grad_clip"] = None
    if not args.config and args.name is None:
        config["name"] = f"{config.get('task', 'sort')}_{config['model'].get('positional', 'rope')}"
    config["plugins"] = list(config.get("plugins", [])) + list(args.plugin)
    return ExperimentConfig.from_dict(config, base_dir=base_dir)


def _print_run(folder) -> None:
    import json

    summary = json.loads((Path(folder) / "report.json").read_text())
    results = ", ".join(f"n={n}: {r['exact_match']:.3f}" for n, r in summary["per_length"].items())
    print(f"{folder}: {summary['status']}; exact match {results}")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from annotated import bench

        bench.main(argv[1:])
        return 0
    from annotated import lab

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    try:
        lab.load_plugins(pre.parse_known_args(argv)[0].plugin)  # before the parser lists the tasks
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return list_everything()
        if args.command == "train":
            config = experiment_from_args(args)
            if config.grid:
                raise ValueError("this config has a grid; run it with: python -m annotated sweep CONFIG")
            lab.resolve(config)
        elif args.command == "sweep":
            config = lab.ExperimentConfig.from_file(find_config(args.config))
            config.plugins = list(config.plugins) + list(args.plugin)
            for point in lab.expand_grid(config):
                lab.resolve(point)
        elif not Path(args.path).is_dir():
            raise ValueError(f"{args.path} is not a folder")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "train":
            _print_run(lab.run(config, args.out, progress=args.progress))
        elif args.command == "sweep":
            folder = lab.sweep(config, args.out, progress=args.progress)
            print(f"{folder}: summary.csv and report.md written")
            failed = [
                r["run"]
                for r in lab.read_csv(folder / "summary.csv")
                if r["kind"] == "run" and r["status"] != "completed"
            ]
            if failed:
                print(f"error: {len(failed)} run(s) failed: {', '.join(failed)} (see their report.md)", file=sys.stderr)
                return 1
        elif args.command == "resume":
            _print_run(lab.resume(args.path, progress=args.progress))
        else:
            print(f"re-rendered {lab.report(args.path)}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the run folder says "failed" with the traceback
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


def list_everything() -> int:
    from annotated.efficient import ATTENTION_KERNELS
    from annotated.positional import POSITIONAL_ENCODINGS
    from annotated.tasks import TASKS

    def first_line(obj) -> str:
        return (obj.__doc__ or "").strip().split("\n")[0]

    print("tasks:")
    for name, task in sorted(TASKS.items()):
        print(f"  {name:20s} {first_line(type(task))}")
    print("positional encodings (--pe):")
    for name, cls in POSITIONAL_ENCODINGS.items():
        print(f"  {name:20s} {first_line(cls)}")
    print("attention kernels (--attention):")
    for name, kernel in ATTENTION_KERNELS.items():
        print(f"  {name:20s} {kernel.summary} ({'exact' if kernel.exact else 'approximate'}, memory {kernel.memory})")
    print(f"shipped configs (--config NAME, sweep NAME): {', '.join(shipped_configs())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
