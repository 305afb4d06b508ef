"""The command line: help, exit codes, plugins (user tasks), train/sweep/report/list, shipped configs."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest
import yaml

from annotated.kernels import ATTENTION_KERNELS
from annotated.lab import ExperimentConfig, expand_grid, read_csv, resolve
from annotated.lab.cli import (
    NOT_FLAGS,
    build_parser,
    experiment_from_args,
    main,
)
from annotated.lab.config import CONFIG_DIR
from annotated.lab.flags import field_docs
from annotated.models.config import (
    ARCHITECTURES,
    NORM_PLACEMENTS,
    ModelConfig,
)
from annotated.models.feedforward import ACTIVATION_NAMES
from annotated.models.norms import NORM_TYPES
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.tasks import TASKS
from annotated.training.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
SMALL = [
    "--d-model",
    "16",
    "--n-layers",
    "1",
    "--n-heads",
    "2",
    "--steps",
    "8",
    "--batch-size",
    "8",
    "--eval-batches",
    "1",
]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def write_plugin(folder, task_name, *, fail_after=None):
    """A user's file registering a task: 'increment' (answer = prompt + 1 mod 10), optionally
    raising on its ``fail_after``-th batch to simulate a crash mid-training."""
    (folder / f"{task_name}.py").write_text(
        textwrap.dedent(f"""
        from annotated.tasks import CopyTask, register_task

        FAIL_AFTER = {fail_after!r}

        class IncrementTask(CopyTask):
            calls = 0

            def solve(self, prompt):
                IncrementTask.calls += 1
                if FAIL_AFTER is not None and IncrementTask.calls > FAIL_AFTER:
                    raise RuntimeError("the user's task broke")
                return (prompt + 1) % self.n_symbols

        register_task({task_name!r}, IncrementTask())
    """)
    )
    return folder / f"{task_name}.py"


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(
        word in out
        for word in (
            "train",
            "sweep",
            "report",
            "resume",
            "list",
            "bench",
            "Exit status",
        )
    )
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        assert action.help, f"{action.option_strings} has no help"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    from annotated.positional import POSITIONAL_ENCODINGS

    assert (
        "--positional {" + ",".join(sorted(POSITIONAL_ENCODINGS)) + "}" in out
    )  # every registered encoding, by name
    assert "(default: rope)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--task", "sorting"],
            "unknown task 'sorting'; valid names: .*sort",
        ),
        (
            ["train", "--positional", "rotary"],
            "invalid choice: 'rotary' \\(choose from .*'rope'",
        ),
        (["train", "--attention", "sparse"], "invalid choice: 'sparse'"),
        (["train", "--steps", "-3"], "steps must be an integer ≥ 1"),
        (["train", "--batch-size", "0"], "batch_size must be an integer ≥ 1"),
        (
            ["train", "--positional", "learned", "--eval-lengths", "20"],
            "length 20 needs 40 positions",
        ),
        (["train", "--train-length", "4-8"], "LOW:HIGH"),
        (
            ["train", "--config", "no_such_config"],
            "shipped configs: .*sort_rope",
        ),
        (["sweep", "sort_rope"], "a sweep needs a grid"),
        (["report", "/no/such/folder"], "is not a folder"),
        (
            ["train", "--plugins", "missing_plugin.py"],
            "plugin file 'missing_plugin.py' not found",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_and_config_errors_exit_2_and_write_nothing(
    tmp_path, capsys, argv, message
):
    out = tmp_path / "out"
    try:
        code = main(
            [*argv, "--out", str(out)]
            if argv[0] in ("train", "sweep")
            else argv
        )
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.slow
def test_train_then_report_with_a_user_task_in_a_subprocess(tmp_path):
    write_plugin(tmp_path, "increment_cli")
    command = [sys.executable, "-m", "annotated", "train", "--plugins", "increment_cli.py", "--task", "increment_cli",
               "--train-length", "3", "--eval-lengths", "5", "--out", "runs", "--no-progress", *SMALL]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert done.stdout.startswith(
        f"runs/{folder.name}: completed; exact match n=3:"
    )
    summary = json.loads((folder / "report.json").read_text())
    assert summary["task"] == "increment_cli" and set(
        summary["per_length"]
    ) == {"3", "5"}
    assert yaml.safe_load((folder / "config.yaml").read_text())[
        "plugins"
    ] == [str(tmp_path / "increment_cli.py")]


def test_runtime_failure_exits_1_and_marks_the_run(tmp_path, capsys):
    plugin = write_plugin(tmp_path, "increment_broken", fail_after=3)
    code = main(
        [
            "train",
            "--plugins",
            str(plugin),
            "--task",
            "increment_broken",
            "--out",
            str(tmp_path / "out"),
            *SMALL,
        ]
    )
    assert code == 1
    assert "RuntimeError: the user's task broke" in capsys.readouterr().err
    (folder,) = (tmp_path / "out").iterdir()
    assert (
        json.loads((folder / "report.json").read_text())["status"] == "failed"
    )


@pytest.mark.slow
def test_sweep_and_report_commands(tmp_path, capsys):
    config = {"name": "mini", "task": "copy", "train_length": 3, "eval_lengths": [4],
              "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "train": {"steps": 6, "warmup_steps": 1, "batch_size": 8, "eval_batches": 1},
              "grid": {"seed": [0, 1]}}  # fmt: skip
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(config))
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "mini.yaml"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    (folder,) = (tmp_path / "out").iterdir()
    assert (
        capsys.readouterr().out.strip()
        == f"{folder}: summary.csv and report.md written"
    )
    rows = read_csv(folder / "summary.csv")
    assert [(r["kind"], r["seed"]) for r in rows] == [
        ("run", 0),
        ("run", 1),
        ("group", "*"),
    ]
    (folder / "summary.csv").unlink()
    (folder / "mini-seed=0" / "report.md").unlink()
    assert main(["report", str(folder)]) == 0
    assert (
        read_csv(folder / "summary.csv") == rows
        and (folder / "mini-seed=0" / "report.md").is_file()
    )


def test_list_shows_tasks_encodings_kernels_and_plugin_tasks(
    tmp_path, capsys
):
    plugin = write_plugin(tmp_path, "increment_listed")
    assert main(["list", "--plugins", str(plugin)]) == 0
    out = capsys.readouterr().out
    for word in (
        "sort",
        "increment_listed",
        "rope",
        "alibi",
        "full",
        "blockwise",
        "sweep_small",
    ):
        assert f"  {word} " in out or word in out.splitlines()[-1]


def test_bench_is_delegated(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0 and "--quick" in capsys.readouterr().out


def test_shipped_configs_are_valid():
    names = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))
    length_tasks = [
        "addition_reversed",
        "contains_pattern",
        "k_back",
        "long_range_match",
        "reverse",
        "running_sum",
        "sort",
    ]
    protocol = [
        "length_addition_baselines.yaml",
        "length_addition_coupled.yaml",
        "length_addition_logn.yaml",
        "length_counting_copy.yaml",
        "length_copy_eos.yaml",
        "length_parity.yaml",
        "randomized_sort.yaml",
    ]
    assert names == sorted(
        [
            *(f"length_{t}.yaml" for t in length_tasks),
            "sort_rope.yaml",
            "sweep_small.yaml",
            "modern_recipe.yaml",
            "modern_ablation.yaml",
            *protocol,
        ]
    )
    resolve(ExperimentConfig.from_file(CONFIG_DIR / "sort_rope.yaml"))
    points = expand_grid(
        ExperimentConfig.from_file(CONFIG_DIR / "sweep_small.yaml")
    )
    assert len(points) == 8  # 2 encodings × 2 tasks × 2 seeds
    assert {(p.model["positional"], p.task) for p in points} == {
        (pe, t) for pe in ("rope", "alibi") for t in ("sort", "reverse")
    }
    for point in points:
        resolve(point)
    for task in length_tasks:  # 7 encodings x 3 seeds, every evaluated length within each model's reach
        config = ExperimentConfig.from_file(
            CONFIG_DIR / f"length_{task}.yaml"
        )
        points = expand_grid(config)
        assert config.task == task and len(points) == 21
        assert {p.model["positional"] for p in points} == {"nope", "sinusoidal", "learned", "rope", "alibi", "t5",
                                                           "randomized"}  # fmt: skip
        assert config.eval_lengths == [
            config.train_length * 3 // 2,
            2 * config.train_length,
            4 * config.train_length,
        ]
        for point in points:
            resolved = resolve(
                point
            )  # refuses a learned table too short for 4x the training length
            assert resolved.model_config.max_len == resolved.task.seq_len(
                4 * config.train_length
            )
    for name in protocol:  # lengths drawn from a range, every length up to 2L evaluated, the stop rule
        config = ExperimentConfig.from_file(CONFIG_DIR / name)
        low, high = config.train_length
        assert low == 1 and set(range(1, 2 * high + 1)) <= set(
            config.eval_lengths
        )  # every length up to 2L
        for point in expand_grid(config):
            resolved = resolve(
                point
            )  # the override gives the learned table a row for every evaluated position
            assert resolved.train_config.stop_accuracy >= 0.95


def test_sweep_with_a_failing_run_still_summarizes_and_exits_1(
    tmp_path, capsys
):
    write_plugin(tmp_path, "increment_sweep_broken", fail_after=2)
    config = {"name": "broken", "task": "copy", "train_length": 3, "plugins": ["increment_sweep_broken.py"],
              "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "train": {"steps": 4, "warmup_steps": 1, "batch_size": 8, "eval_batches": 1},
              "grid": {"task": ["copy", "increment_sweep_broken"]}}  # fmt: skip
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(config))
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "broken.yaml"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 1
    )
    assert (
        "1 run(s) failed: broken-task=increment_sweep_broken"
        in capsys.readouterr().err
    )
    (folder,) = (tmp_path / "out").iterdir()
    rows = read_csv(folder / "summary.csv")
    assert [(r["task"], r["status"]) for r in rows if r["kind"] == "run"] == [
        ("copy", "completed"),
        ("increment_sweep_broken", "failed"),
    ]


# --- flags generated from the config dataclasses -------------------------------------------------

CONFIGS = {
    "experiment": ExperimentConfig,
    "model": ModelConfig,
    "train": TrainConfig,
}


def train_parser():
    return build_parser()._subparsers._group_actions[0].choices["train"]


def flag_of(section: str, name: str):
    (action,) = [
        a for a in train_parser()._actions if a.dest == f"{section}.{name}"
    ]
    return action


def test_every_config_field_has_a_flag_with_help():
    assert NOT_FLAGS == {"experiment": ("model", "train", "grid", "overrides", "base_dir"), "model": ("vocab_size",),
                         "train": ("seed",)}  # fmt: skip
    for section, cls in CONFIGS.items():
        for field in dataclasses.fields(cls):
            if field.name in NOT_FLAGS[section]:
                continue
            action = flag_of(section, field.name)
            assert action.option_strings[0] == "--" + field.name.replace(
                "_", "-"
            )
            assert action.help and "(default: " in action.help
    (line,) = [
        line
        for line in inspect.getsource(ModelConfig).splitlines()
        if line.strip().startswith("n_kv_heads:")
    ]
    assert flag_of("model", "n_kv_heads").help.startswith(
        line.partition("#")[2].strip()
    )  # the field's comment
    assert (
        "a tenth of the steps" in flag_of("train", "warmup_steps").help
    )  # the lab's own default


# the spellings the command line took before the flags were generated from the configs
OLD_SPELLINGS = {"--pe": "--positional", "--layers": "--n-layers", "--heads": "--n-heads",
                 "--kv-heads": "--n-kv-heads", "--attention-param": "--attention-params",
                 "--warmup": "--warmup-steps", "--task-arg": "--task-kwargs", "--plugin": "--plugins"}  # fmt: skip


def test_every_flag_the_docs_show_parses_and_old_spellings_are_refused(
    capsys,
):
    used = {"--config", "--name", "--task", "--task-kwargs", "--train-length", "--eval-lengths", "--seed",
            "--positional", "--attention", "--attention-params", "--n-layers", "--d-model", "--n-heads",
            "--n-kv-heads", "--d-ff", "--max-len", "--dropout", "--norm", "--activation", "--steps", "--batch-size",
            "--lr", "--weight-decay", "--warmup-steps", "--min-lr-ratio", "--grad-clip", "--eval-every",
            "--eval-batches", "--checkpoint-every", "--device", "--plugins", "--out", "--progress",
            "--no-progress"}  # fmt: skip
    for text in [
        ROOT / "README.md",
        *sorted((ROOT / "notebooks").glob("*.py")),
    ]:  # and those the docs show
        for command in re.findall(
            r"python -m annotated train((?:[^\n]*\\\n)*[^\n]*)",
            text.read_text(),
        ):
            used |= set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", command))
    options = {
        option
        for action in train_parser()._actions
        for option in action.option_strings
    }
    assert used <= options, sorted(used - options)
    args = build_parser().parse_args(["train", "--positional", "alibi", "--n-layers", "3", "--n-heads", "2",
                                      "--n-kv-heads", "1", "--warmup-steps", "5", "--task-kwargs", "n_symbols=5",
                                      "--attention-params", "window=4", "--plugins", "a_module"])  # fmt: skip
    config = experiment_from_args(args)
    assert config.model == {"positional": "alibi", "n_layers": 3, "n_heads": 2, "n_kv_heads": 1,
                            "attention_params": {"window": 4}}  # fmt: skip
    assert (config.train, config.task_kwargs, config.plugins) == (
        {"warmup_steps": 5},
        {"n_symbols": 5},
        ["a_module"],
    )
    assert (
        not set(OLD_SPELLINGS) & options
        and set(OLD_SPELLINGS.values()) <= options
    )
    for old in (
        OLD_SPELLINGS
    ):  # neither as a flag nor as an abbreviation of the new one
        with pytest.raises(SystemExit) as exit_:
            main(["train", old, "1", "--out", "unused"])
        assert exit_.value.code == 2
        assert f"unrecognized arguments: {old}" in capsys.readouterr().err


def test_every_registry_name_is_a_choice():
    registries = {("model", "positional"): POSITIONAL_ENCODINGS, ("model", "attention"): ATTENTION_KERNELS,
                  ("model", "arch"): ARCHITECTURES, ("model", "norm"): NORM_PLACEMENTS,
                  ("model", "activation"): ACTIVATION_NAMES, ("model", "norm_type"): NORM_TYPES}  # fmt: skip
    parser = build_parser()
    for (section, name), registry in registries.items():
        assert sorted(flag_of(section, name).choices) == sorted(registry)
        for value in registry:
            config = experiment_from_args(
                parser.parse_args(["train", "--" + name.replace("_", "-"), value])
            )
            assert config.model[name] == value
    for task in TASKS:  # open: a plugin named in a config file may add one, so the lab checks the name
        assert (
            experiment_from_args(
                parser.parse_args(["train", "--task", task])
            ).task
            == task
        )
        assert task in flag_of("experiment", "task").help


def sample(annotation, default, choices) -> tuple[object, list[list[str]]]:
    """A value of a field's type unlike its default, and the words after each use of its flag."""
    if choices:
        value = next(c for c in choices if c != default)
        return value, [[value]]
    if annotation is int or annotation == int | None:
        value = 3 if default in (None, 3) else default + 1
        return value, [[str(value)]]
    if annotation is float or annotation == float | None:
        return 0.25, [["0.25"]]
    if annotation is str or annotation == str | None:
        return "cpu", [["cpu"]]
    if annotation == int | list[int]:
        return [4, 8], [["4:8"]]
    if annotation == list[int]:
        return [12, 16], [["12", "16"]]
    if annotation == list[str]:  # one name per flag, repeatable
        return ["a.py", "b.py"], [["a.py"], ["b.py"]]
    if (
        annotation == tuple[float, float]
    ):  # a list, as a config file (and TrainConfig.to_dict) gives it
        return [0.8, 0.9], [["0.8", "0.9"]]
    if annotation is dict:  # merged over its uses
        return {"a": 1, "b": "x"}, [["a=1"], ["{b: x}"]]
    raise AssertionError(f"no sample for {annotation}")


def test_flags_round_trip_to_the_config():
    argv, values = ["train"], {"model": {}, "train": {}}
    for section, cls in CONFIGS.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name in NOT_FLAGS[section]:
                continue
            flag = "--" + field.name.replace("_", "-")
            default = (
                field.default
                if field.default is not dataclasses.MISSING
                else field.default_factory()
            )
            if hints[field.name] is bool:
                value, argv = (
                    not default,
                    [*argv, flag if not default else "--no-" + flag[2:]],
                )
            else:
                value, uses = sample(
                    hints[field.name],
                    default,
                    flag_of(section, field.name).choices,
                )
                argv += [word for words in uses for word in [flag, *words]]
            (values if section == "experiment" else values[section])[
                field.name
            ] = value
    config = experiment_from_args(build_parser().parse_args(argv))
    assert config == ExperimentConfig.from_dict(values)
    assert config.model["n_kv_heads"] == 3 and config.train["betas"] == [
        0.8,
        0.9,
    ]
    none = experiment_from_args(
        build_parser().parse_args(
            ["train", "--grad-clip", "none", "--d-ff", "None"]
        )
    )
    assert none.train == {"grad_clip": None} and none.model == {"d_ff": None}


def test_flags_override_a_config_file(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"name": "base", "task": "copy", "task_kwargs": {"n_symbols": 4},
                                                        "model": {"d_model": 32, "attention_params": {"window": 2}},
                                                        "train": {"steps": 50}, "plugins": ["first"]}))  # fmt: skip
    argv = ["train", "--config", str(tmp_path / "base.yaml"), "--steps", "60", "--attention-params", "chunk_size=8",
            "--plugins", "second", "--task-kwargs", "n_symbols=5"]  # fmt: skip
    config = experiment_from_args(build_parser().parse_args(argv))
    assert (config.name, config.task, config.task_kwargs) == (
        "base",
        "copy",
        {"n_symbols": 5},
    )
    assert config.model == {
        "d_model": 32,
        "attention_params": {"window": 2, "chunk_size": 8},
    }
    assert config.train == {"steps": 60} and config.plugins == [
        "first",
        "second",
    ]
    assert config.base_dir == str(tmp_path)


def test_field_docs_read_metadata_comments_and_the_docstring():
    @dataclasses.dataclass
    class Example:
        """An example. ``b=0`` turns b off; nothing about c."""

        a: int = 1  # the comment after a
        b: int = 2
        c: int = dataclasses.field(
            default=3, metadata={"help": "from metadata"}
        )  # not this comment
        d: int = 4  # fmt: skip

    assert field_docs(Example) == {
        "a": "the comment after a",
        "b": "b=0 turns b off",
        "c": "from metadata",
    }


def test_the_modern_recipe_sweep_crosses_two_blocks_and_two_optimisers():
    points = expand_grid(
        ExperimentConfig.from_file(CONFIG_DIR / "modern_recipe.yaml")
    )
    assert len(points) == 12  # 2 blocks x 2 optimisers x 3 seeds
    recipes = {
        (p.model.get("norm_type"), p.train["optimizer"]): p for p in points
    }
    nanogpt = recipes[("layernorm", "adamw")]
    assert nanogpt.model["positional"] == "learned"
    assert nanogpt.train["lr"] == 1e-3
    modern = recipes[("rmsnorm", "adamw")].model
    assert (modern["activation"], modern["positional"]) == ("swiglu", "rope")
    assert modern["qk_norm"] and not modern["tie_weights"]
    assert recipes[("rmsnorm", "adamw")].train["lr"] == 2e-3
    assert recipes[("rmsnorm", "muon")].train["lr"] == 3e-3
    for point in points:  # nanoGPT's CPU budget for every recipe
        assert (point.model["d_model"], point.model["n_layers"]) == (128, 4)
        assert (point.train["steps"], point.train["batch_size"]) == (2000, 12)
        ModelConfig(vocab_size=65, max_len=64, **point.model)  # valid


def test_a_variant_grid_names_recipes_set_by_their_overrides():
    points = expand_grid(
        ExperimentConfig.from_file(CONFIG_DIR / "modern_ablation.yaml")
    )
    assert len(points) == 36  # 12 recipes x 3 seeds
    by_name = {p.name: p for p in points}
    base = by_name["modern_ablation-variant=base-seed=0"]
    alone = by_name["modern_ablation-variant=rope-seed=1"]
    full = by_name["modern_ablation-variant=upto_untied-seed=2"]
    assert base.variant == "base" and base.model["positional"] == "learned"
    assert alone.model["positional"] == "rope" and "qk_norm" not in alone.model
    assert {k: full.model[k] for k in ("norm_type", "activation", "positional", "qk_norm",
                                       "zero_init_residual", "tie_weights")} == {
        "norm_type": "rmsnorm", "activation": "swiglu", "positional": "rope", "qk_norm": True,
        "zero_init_residual": True, "tie_weights": False}  # fmt: skip
