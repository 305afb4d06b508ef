"""The command line: help, exit codes, plugins (user tasks), train/sweep/report/list, shipped configs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from annotated.__main__ import CONFIG_DIR, build_parser, main
from annotated.lab import ExperimentConfig, expand_grid, read_csv, resolve

SMALL = ["--d-model", "16", "--layers", "1", "--heads", "2", "--steps", "8", "--batch-size", "8", "--eval-batches", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    assert all(word in out for word in ("train", "sweep", "report", "resume", "list", "bench", "Exit status"))
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        assert action.help, f"{action.option_strings} has no help"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--pe {alibi,learned,none,nope,randomized,rope,sinusoidal,t5}" in out and "(default: rope)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--task", "sorting"], "unknown task 'sorting'; valid names: .*sort"),
        (["train", "--pe", "rotary"], "invalid choice: 'rotary' \\(choose from .*'rope'"),
        (["train", "--attention", "sparse"], "invalid choice: 'sparse'"),
        (["train", "--steps", "-3"], "steps must be an integer ≥ 1"),
        (["train", "--batch-size", "0"], "batch_size must be an integer ≥ 1"),
        (["train", "--pe", "learned", "--eval-lengths", "20"], "length 20 needs 40 positions"),
        (["train", "--train-length", "4-8"], "LOW:HIGH"),
        (["train", "--config", "no_such_config"], "shipped configs: .*sort_rope"),
        (["sweep", "sort_rope"], "a sweep needs a grid"),
        (["report", "/no/such/folder"], "is not a folder"),
        (["train", "--plugin", "missing_plugin.py"], "plugin file 'missing_plugin.py' not found"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_and_config_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    try:
        code = main([*argv, "--out", str(out)] if argv[0] in ("train", "sweep") else argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_train_then_report_with_a_user_task_in_a_subprocess(tmp_path):
    write_plugin(tmp_path, "increment_cli")
    command = [sys.executable, "-m", "annotated", "train", "--plugin", "increment_cli.py", "--task", "increment_cli",
               "--train-length", "3", "--eval-lengths", "5", "--out", "runs", "--no-progress", *SMALL]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert done.stdout.startswith(f"runs/{folder.name}: completed; exact match n=3:")
    summary = json.loads((folder / "report.json").read_text())
    assert summary["task"] == "increment_cli" and set(summary["per_length"]) == {"3", "5"}
    assert yaml.safe_load((folder / "config.yaml").read_text())["plugins"] == [str(tmp_path / "increment_cli.py")]


def test_runtime_failure_exits_1_and_marks_the_run(tmp_path, capsys):
    plugin = write_plugin(tmp_path, "increment_broken", fail_after=3)
    code = main(
        ["train", "--plugin", str(plugin), "--task", "increment_broken", "--out", str(tmp_path / "out"), *SMALL]
    )
    assert code == 1
    assert "RuntimeError: the user's task broke" in capsys.readouterr().err
    (folder,) = (tmp_path / "out").iterdir()
    assert json.loads((folder / "report.json").read_text())["status"] == "failed"


def test_sweep_and_report_commands(tmp_path, capsys):
    config = {"name": "mini", "task": "copy", "train_length": 3, "eval_lengths": [4],
              "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "train": {"steps": 6, "warmup_steps": 1, "batch_size": 8, "eval_batches": 1},
              "grid": {"seed": [0, 1]}}  # fmt: skip
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(config))
    assert main(["sweep", str(tmp_path / "mini.yaml"), "--out", str(tmp_path / "out")]) == 0
    (folder,) = (tmp_path / "out").iterdir()
    assert capsys.readouterr().out.strip() == f"{folder}: summary.csv and report.md written"
    rows = read_csv(folder / "summary.csv")
    assert [(r["kind"], r["seed"]) for r in rows] == [("run", 0), ("run", 1), ("group", "*")]
    (folder / "summary.csv").unlink()
    (folder / "mini-seed=0" / "report.md").unlink()
    assert main(["report", str(folder)]) == 0
    assert read_csv(folder / "summary.csv") == rows and (folder / "mini-seed=0" / "report.md").is_file()


def test_list_shows_tasks_encodings_kernels_and_plugin_tasks(tmp_path, capsys):
    plugin = write_plugin(tmp_path, "increment_listed")
    assert main(["list", "--plugin", str(plugin)]) == 0
    out = capsys.readouterr().out
    for word in ("sort", "increment_listed", "rope", "alibi", "full", "blockwise", "sweep_small"):
        assert f"  {word} " in out or word in out.splitlines()[-1]


def test_bench_is_delegated(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0 and "--quick" in capsys.readouterr().out


def test_shipped_configs_are_valid():
    names = sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))
    length_tasks = ["addition_reversed", "contains_pattern", "k_back", "long_range_match", "reverse", "running_sum", "sort"]
    assert names == sorted([*(f"length_{t}.yaml" for t in length_tasks), "sort_rope.yaml", "sweep_small.yaml"])
    resolve(ExperimentConfig.from_file(CONFIG_DIR / "sort_rope.yaml"))
    points = expand_grid(ExperimentConfig.from_file(CONFIG_DIR / "sweep_small.yaml"))
    assert len(points) == 8  # 2 encodings × 2 tasks × 2 seeds
    assert {(p.model["positional"], p.task) for p in points} == {
        (pe, t) for pe in ("rope", "alibi") for t in ("sort", "reverse")
    }
    for point in points:
        resolve(point)
    for task in length_tasks:  # week 6: 7 encodings x 3 seeds, every evaluated length within each model's reach
        config = ExperimentConfig.from_file(CONFIG_DIR / f"length_{task}.yaml")
        points = expand_grid(config)
        assert config.task == task and len(points) == 21
        assert {p.model["positional"] for p in points} == {"nope", "sinusoidal", "learned", "rope", "alibi", "t5",
                                                           "randomized"}  # fmt: skip
        assert config.eval_lengths == [config.train_length * 3 // 2, 2 * config.train_length, 4 * config.train_length]
        for point in points:
            resolved = resolve(point)  # refuses a learned table too short for 4x the training length
            assert resolved.model_config.max_len == resolved.task.seq_len(4 * config.train_length)


def test_sweep_with_a_failing_run_still_summarizes_and_exits_1(tmp_path, capsys):
    write_plugin(tmp_path, "increment_sweep_broken", fail_after=2)
    config = {"name": "broken", "task": "copy", "train_length": 3, "plugins": ["increment_sweep_broken.py"],
              "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "train": {"steps": 4, "warmup_steps": 1, "batch_size": 8, "eval_batches": 1},
              "grid": {"task": ["copy", "increment_sweep_broken"]}}  # fmt: skip
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(config))
    assert main(["sweep", str(tmp_path / "broken.yaml"), "--out", str(tmp_path / "out")]) == 1
    assert "1 run(s) failed: broken-task=increment_sweep_broken" in capsys.readouterr().err
    (folder,) = (tmp_path / "out").iterdir()
    rows = read_csv(folder / "summary.csv")
    assert [(r["task"], r["status"]) for r in rows if r["kind"] == "run"] == [
        ("copy", "completed"),
        ("increment_sweep_broken", "failed"),
    ]
