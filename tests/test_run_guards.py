"""Ways a lab run could go wrong, each now caught: a config too large for the machine, a
failure while a run starts, a diverged run resumed with a lower rate, a config.yaml edited under its
checkpoint, a stop while the final report is written, and evaluation lengths left out. The padding
case is in tests/test_attention.py, tests/test_efficient.py and tests/test_multihead.py; the W&B
case in tests/test_trackers.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import STOPPABLE, copy_of, poison_after, tiny_experiment

import annotated.lab.validation as validation
from annotated.lab import (
    ExperimentConfig,
    Resolved,
    read_csv,
    resolve,
    resume,
)
from annotated.lab.cli import main
from annotated.models.config import ModelConfig
from annotated.training.config import TrainConfig
from annotated.training.divergence import advice_text, divergence_advice
from annotated.training.memory import estimate_memory, human_bytes

ROOT = Path(__file__).resolve().parent.parent
TINY = STOPPABLE

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``main(argv)`` in this process → (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    """The one ``error:`` line of ``err``, with no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_from_config(tmp_path: Path, config: dict, capsys):
    """``train --config`` with ``config`` into ``tmp_path/out`` → (exit
    status, stdout, stderr)."""
    path = write_config(tmp_path, config)
    return run_cli(
        ["train", "--config", path, "--out", tmp_path / "out"], capsys
    )


def snapshot_files(folder: Path) -> dict[str, str]:
    """Every file of a folder by name, as a digest: to see that nothing changed."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- a config too large for the machine -------------------------------------------------------------------------


def test_a_config_too_large_for_memory_exits_2_with_one_line_before_any_folder(
    tmp_path, capsys
):
    """The issue's case: ``--d-model 100000 --n-layers 1`` once exited 1 with a raw allocator error and
    left a folder holding only config.yaml."""
    out = tmp_path / "out"
    code, _, err = run_cli(
        [
            "train",
            "--d-model",
            "100000",
            "--n-layers",
            "1",
            "--device",
            "cpu",
            "--out",
            out,
        ],
        capsys,
    )
    line = one_error_line(err)
    assert code == 2 and not out.exists()
    assert (
        line.startswith("error: this run needs about ")
        and " TB of memory, more than the " in line
    )
    assert (
        "120,002,700,000 parameters take" in line
    )  # counted on the meta device, exactly
    assert "lower model.d_model (100000) or model.n_layers (1)" in line


def test_the_memory_message_names_what_makes_the_activations_large(
    monkeypatch,
):
    monkeypatch.setattr(
        validation, "available_memory", lambda device: 10**6
    )  # 1 MB free
    config = tiny_experiment(train={"batch_size": 512}, eval_lengths=[4])
    with pytest.raises(
        ValueError,
        match=r"more than the 1 MB free on cpu: .* and a training step at length 4 needs .* more; lower "
        r"train.batch_size \(512\), the training length \(4\) or model.d_model \(16\)",
    ):
        resolve(ExperimentConfig.from_dict(config))
    config = tiny_experiment(
        eval_lengths=[200], model={"n_heads": 2, "max_len": 512}
    )
    with pytest.raises(
        ValueError,
        match=r"the evaluation at length 200 .* lower train.eval_batch_size \(8\)",
    ):
        resolve(ExperimentConfig.from_dict(config))


def test_memory_estimate_parts():
    """The formula of annotated.training.memory: 28 bytes a parameter, plus the largest activations."""
    model = ModelConfig(
        vocab_size=10, d_model=16, n_heads=2, n_layers=1, max_len=32
    )
    train = TrainConfig(batch_size=4, warmup_steps=0)
    estimate = estimate_memory(
        model,
        train,
        1000,
        train_tokens=9,
        eval_tokens=17,
        train_length=4,
        eval_length=8,
    )
    assert estimate.state_bytes == 28 * 1000
    bt, c, f, h, v = 4 * 9, 16, 64, 2, 10
    step = (
        (9 * bt * c + 2 * bt * f + 4 * h * 81)
        + 3 * bt * c
        + bt * f
        + 2 * 4 * h * 81
        + 5 * bt * v
        + 3 * bt * c
    )
    assert estimate.activation_bytes == 4 * max(
        step, (1 + 4) * 4 * h * 17**2 + 3 * 68 * v + 4 * 68 * c + 68 * f
    )
    assert human_bytes(1536) == "1.54 KB" and human_bytes(3.4e12) == "3.4 TB"


MEASURE = textwrap.dedent(
    """
    import json, sys
    import torch
    from annotated.bench.measure import peak_forward_bytes
    from annotated.lab import ExperimentConfig, resolve
    from annotated.models.config import ModelConfig
    from annotated.models.summary import count_parameters
    from annotated.models.transformer import build_model
    from annotated.training.config import TrainConfig
    from annotated.training.loop import train
    from annotated.training.memory import estimate_memory

    torch.set_num_threads(1)
    r = resolve(ExperimentConfig.from_dict(json.loads(sys.argv[1])))
    # torch's one-time set-up first, on a throwaway model, so that it is not counted
    tiny = build_model(ModelConfig(vocab_size=r.task.vocab_size, d_model=8, n_heads=2, n_layers=1, max_len=64))
    train(tiny, r.task, train_length=4, config=TrainConfig(steps=2, batch_size=2, warmup_steps=0, device="cpu"))
    del tiny
    model = r.build_model()
    high, longest = r.lengths[1], max(r.lengths[1], *r.eval_lengths)
    estimate = estimate_memory(r.model_config, r.train_config, count_parameters(model),
                               train_tokens=r.task.seq_len(high), eval_tokens=r.task.seq_len(longest),
                               train_length=high, eval_length=longest)
    # the allocator's peak while training (the profiler's memory events, not the
    # process's resident size, which other allocations and the OS move), plus the
    # weights, which exist before it starts
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    peak = peak_forward_bytes(lambda: train(model, r.task, train_length=list(r.lengths),
                                            eval_lengths=r.eval_lengths, config=r.train_config))
    print(json.dumps({"measured": peak + weights, "estimate": estimate.total_bytes, "largest": estimate.largest}))
    """
)
MEASURED = {  # activations first, then the parameters' state (weights, gradients, moments, snapshot)
    "step": {"task": "sort", "train_length": 32, "eval_lengths": [32],
             "model": {"d_model": 128, "n_layers": 2, "n_heads": 4},
             "train": {"steps": 2, "batch_size": 64, "warmup_steps": 0, "device": "cpu"}},
    "state": {"task": "sort", "train_length": 8, "eval_lengths": [8],
              "model": {"d_model": 384, "n_layers": 2, "n_heads": 8},
              "train": {"steps": 2, "batch_size": 16, "warmup_steps": 0, "device": "cpu"}},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/statm").is_file(), reason="reads Linux's /proc"
)
@pytest.mark.parametrize("kind", MEASURED)
def test_the_memory_estimate_is_within_a_factor_of_two_of_the_measured_peak(
    kind,
):
    """The allocator's peak during a few training steps and the evaluation, plus the weights,
    against the estimate: within a factor of two either way."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(MEASURED[kind])], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    expected = "a snapshot" if kind == "state" else "a training step"
    assert result["largest"].startswith(expected)
    assert 0.5 <= result["measured"] / result["estimate"] <= 2.0, result


def test_a_failure_while_the_run_starts_leaves_a_failed_report(
    tmp_path, capsys, monkeypatch
):
    """An allocator error while the model is built once left a folder with config.yaml and no report."""

    def too_large(self):
        raise RuntimeError(
            "[enforce fail] you tried to allocate 40000000000 bytes"
        )

    monkeypatch.setattr(Resolved, "build_model", too_large)
    code, _, err = train_from_config(tmp_path, TINY, capsys)
    (folder,) = (tmp_path / "out").iterdir()
    assert code == 1 and "RuntimeError" in one_error_line(err)
    report = json.loads((folder / "report.json").read_text())
    assert (
        report["status"] == "failed"
        and "you tried to allocate" in report["error"]
    )
    assert "**Status: failed**" in (folder / "report.md").read_text()


# --- a diverged run, resumed differently --------------------------------------------------------------------------


def test_divergence_advice_applies_to_the_config():
    assert divergence_advice(TrainConfig(lr=0.1, warmup_steps=0), 19) == {
        "lr": 0.01,
        "warmup_steps": 100,
    }
    # clipping already on: no grad_clip advice; a late divergence: no warm-up advice
    assert divergence_advice(TrainConfig(lr=1e-3, warmup_steps=100), 900) == {
        "lr": 1e-4
    }
    assert divergence_advice(TrainConfig(grad_clip=None), 900) == {
        "lr": 1e-4,
        "grad_clip": 1.0,
    }
    config = TrainConfig(lr=0.1, warmup_steps=0, grad_clip=None)
    text = advice_text(config, divergence_advice(config, 3))
    assert (
        text
        == "lower lr (0.1; try 0.01), raise warmup_steps (0; try 100) or set grad_clip (off; try 1.0)"
    )


def test_a_diverged_run_resumes_with_a_lower_rate_recorded_in_config_and_report(
    tmp_path, capsys, monkeypatch
):
    """The suggested command is concrete (a lower lr), advises only what applies (clipping is on), and
    does what it says: the run continues from its last good state with the new rate."""
    poison_after(monkeypatch, 8)
    config = tiny_experiment(
        train={"snapshot_every": 5, "lr": 0.05, "warmup_steps": 0},
        drop=("eval_every",),
    )
    code, _, err = train_from_config(tmp_path, config, capsys)
    (folder,) = (tmp_path / "out").iterdir()
    line = one_error_line(err)
    assert code == 1 and "TrainingDiverged" in line
    assert line.endswith(
        f"continue with: python -m annotated resume {folder} --lr 0.005"
    )
    assert (
        "grad_clip" not in line and "--grad-clip" not in line
    )  # clipping is on already
    monkeypatch.undo()  # a healthy model from here on
    code, out, err = run_cli(
        ["resume", folder, "--lr", "0.005", "--steps", "16", "--no-progress"],
        capsys,
    )
    assert code == 0, err
    assert out.startswith(f"{folder}: completed")
    saved = yaml.safe_load((folder / "config.yaml").read_text())["train"]
    assert (
        saved["lr"] == 0.005
        and saved["steps"] == 16
        and saved["warmup_steps"] == 0
    )
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "completed" and report["steps_done"] == 16
    assert report["changes"] == [
        {"step": 5, "steps": [12, 16], "lr": [0.05, 0.005]}
    ]
    assert (
        "- resumed at step 5 with steps 12 → 16, lr 0.05 → 0.005"
        in (folder / "report.md").read_text()
    )
    rates = [r["lr"] for r in read_csv(folder / "metrics.csv")]
    assert (
        len(rates) == 16 and max(rates[5:]) <= 0.005 < rates[4]
    )  # steps 6… ran at the new rate


def test_the_divergence_hint_offers_clipping_only_when_it_is_off(
    tmp_path, capsys, monkeypatch
):
    poison_after(monkeypatch, 8)
    config = tiny_experiment(
        train={"snapshot_every": 5, "grad_clip": None, "steps": 200},
        drop=("eval_every",),
    )
    code, _, err = train_from_config(tmp_path, config, capsys)
    line = one_error_line(err)
    assert code == 1 and line.endswith(
        "--lr 0.0001 --warmup-steps 20 --grad-clip 1.0"
    )
    assert "or set grad_clip (off; try 1.0)" in line


def test_resume_refuses_changes_it_cannot_make(stopped, tmp_path, capsys):
    folder = copy_of(stopped, tmp_path)
    before = snapshot_files(folder)
    code, _, err = run_cli(["resume", folder, "--steps", "5"], capsys)
    assert (
        code == 2
        and "steps=5 leaves nothing to train: the checkpoint is at step 5"
        in one_error_line(err)
    )
    code, _, err = run_cli(["resume", folder, "--warmup-steps", "50"], capsys)
    assert code == 2 and "warmup_steps=50 exceeds steps=12" in one_error_line(
        err
    )
    code, _, err = run_cli(["resume", folder, "--batch-size", "4"], capsys)
    assert (
        code == 2 and "unrecognized arguments: --batch-size 4" in err
    )  # not a mid-run field
    assert snapshot_files(folder) == before


# --- a config.yaml that no longer matches its checkpoint ------------------------------------------------------


@pytest.mark.parametrize(
    "section, field, value, named",
    [("model", "d_model", 32, "model.d_model 16 → 32"), ("train", "batch_size", 4, "train.batch_size 8 → 4"),
     ("model", "positional", "alibi", "model.positional rope → alibi")],
)  # fmt: skip
def test_resume_refuses_a_config_that_no_longer_matches_its_checkpoint(
    stopped, tmp_path, capsys, section, field, value, named
):
    """Once a 20-line size-mismatch traceback, exit 1, and the status turned to failed."""
    folder = copy_of(stopped, tmp_path)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config[section][field] = value
    (folder / "config.yaml").write_text(
        yaml.safe_dump(config, sort_keys=False)
    )
    before = snapshot_files(folder)
    code, _, err = run_cli(["resume", folder], capsys)
    line = one_error_line(err)
    assert code == 2
    assert (
        f"config.yaml no longer matches the checkpoint {folder / 'model.pt'}: {named};"
        in line
    )
    assert (
        snapshot_files(folder) == before
    )  # status (interrupted) and every file as they were
    assert (
        json.loads((folder / "report.json").read_text())["status"]
        == "interrupted"
    )


def test_a_hand_edit_of_a_mid_run_field_is_recorded_as_a_change(
    stopped, tmp_path
):
    folder = copy_of(stopped, tmp_path)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["train"]["lr"] = 5e-4
    (folder / "config.yaml").write_text(
        yaml.safe_dump(config, sort_keys=False)
    )
    resume(folder)
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "completed"
    assert report["changes"] == [{"step": 5, "lr": [0.001, 0.0005]}]


# --- a stop while the final report is written ------------------------------------------------------------------


STOP_IN_WINDOW = textwrap.dedent(
    """
    import os, signal, sys
    # Ctrl-C as in a terminal, even when this test runs in the background,
    # where a shell starts commands with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import annotated.lab.reports as reports
    import annotated.lab.runs as runs
    from annotated.lab.cli import main

    real_write, real_tracker, real_plots = runs.write_report, runs.open_tracker, reports.write_plots
    where, name, sent = sys.argv[1], sys.argv[2], []

    def write_report(folder, info, *args, **kwargs):
        if where == "report" and info["status"] == "completed" and not sent:
            sent.append(name)  # once: the final report, training has finished
            os.kill(os.getpid(), getattr(signal, name))
        return real_write(folder, info, *args, **kwargs)

    def open_tracker(*args, **kwargs):
        if where == "start-up":
            os.kill(os.getpid(), getattr(signal, name))  # report.json says "running" here
        return real_tracker(*args, **kwargs)

    def write_plots(folder, history, model, *args):
        if where == "plots" and model is not None and not sent:
            sent.append(name)  # inside the final report, half of its files written
            os.kill(os.getpid(), getattr(signal, name))
        return real_plots(folder, history, model, *args)

    runs.write_report, runs.open_tracker, reports.write_plots = write_report, open_tracker, write_plots
    sys.exit(main(sys.argv[3:]))
    """
)


def stop_inside(
    tmp_path, where: str, name: str, argv: list
) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", STOP_IN_WINDOW, where, name, *map(str, argv)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("where", ["report", "plots"])
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_stop_during_the_final_report_leaves_it_completed(
    tmp_path, name, where
):
    """A Ctrl-C (or SIGTERM) after the last step once left report.json saying ``running``: sent as the
    final report begins, or while it draws its plots."""
    path = write_config(tmp_path, TINY)
    done = stop_inside(
        tmp_path,
        where,
        name,
        ["train", "--config", path, "--out", "out", "--no-progress"],
    )
    (folder,) = (tmp_path / "out").iterdir()
    report = json.loads((folder / "report.json").read_text())
    assert done.returncode == 130, done.stderr
    assert (
        report["status"] == "completed"
        and report["error"] is None
        and report["steps_done"] == 12
    )
    assert set(report["per_length"]) == {"4", "6"}
    assert (folder / "attention.png").is_file() == (
        where == "plots"
    )  # the model's maps: `report` redraws them
    assert done.stderr.strip() == (
        f"interrupted; training had finished and out/{folder.name}/report.json says so; redraw its plots "
        f"with: python -m annotated report out/{folder.name}"
    )


@pytest.mark.slow
def test_a_sigterm_while_resume_starts_leaves_the_run_interrupted(
    stopped, tmp_path
):
    folder = copy_of(stopped, tmp_path)
    done = stop_inside(
        tmp_path, "start-up", "SIGTERM", ["resume", folder, "--no-progress"]
    )
    assert done.returncode == 130, done.stderr
    report = json.loads((folder / "report.json").read_text())
    assert (
        report["status"] == "interrupted" and report["checkpoint_step"] == 5
    )
    assert (
        done.stderr.startswith("interrupted; ")
        and f"resume {folder}" in done.stderr
    )
    resume(folder)  # and it still continues
    assert (
        json.loads((folder / "report.json").read_text())["status"]
        == "completed"
    )


# --- evaluation lengths left out ------------------------------------------------------------------------------


def test_left_out_eval_lengths_are_one_to_twice_the_training_length():
    """``train --task sort`` once evaluated only at length 8 ("no longer lengths")."""
    config = ExperimentConfig(task="sort", train_length=8)
    assert resolve(config).eval_lengths == list(range(1, 17))
    config = ExperimentConfig(
        task="sort", train_length=[2, 5], eval_lengths=[7]
    )
    assert resolve(config).eval_lengths == [7]  # given: kept as given
    # a learned table has rows for the training length only (max_len defaults to it)
    config = ExperimentConfig(
        task="copy", train_length=6, model={"positional": "learned"}
    )
    assert resolve(config).eval_lengths == list(range(1, 7))
    # the task's own limits: associative recall has at most n_keys keys, and at least one
    config = ExperimentConfig(
        task="associative_recall", train_length=4, task_kwargs={"n_keys": 6}
    )
    task = resolve(config).task
    assert resolve(config).eval_lengths == list(range(task.min_length, 7))


@pytest.mark.slow
def test_train_without_eval_lengths_reports_the_longer_lengths(
    tmp_path, capsys
):
    argv = ["train", "--task", "sort", "--train-length", "3", "--d-model", "16", "--n-layers", "1", "--n-heads",
            "2", "--steps", "4", "--batch-size", "4", "--eval-batches", "1", "--device", "cpu", "--out", tmp_path]  # fmt: skip
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    (folder,) = tmp_path.iterdir()
    report = json.loads((folder / "report.json").read_text())
    assert list(report["per_length"]) == [str(n) for n in range(1, 7)]
    assert report["generalisation_gap"] is not None
    assert "no longer lengths" not in (folder / "report.md").read_text()
    assert yaml.safe_load((folder / "config.yaml").read_text())[
        "eval_lengths"
    ] == list(range(1, 7))
