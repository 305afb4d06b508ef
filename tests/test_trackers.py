"""Trackers: a lab run with ``tracker: tensorboard`` writes metrics.csv's numbers into event files that
TensorBoard reads back; W&B offline (the dev extra installs it); the default writes nothing extra;
``--tracker`` lists its choices."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from conftest import tiny_experiment

from annotated.lab import ExperimentConfig, read_csv, resolve, run
from annotated.lab.cli import main
from annotated.lab.trackers import TRACKERS, check_tracker, scalars

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = tiny_experiment(
    name="tracked",
    train={"steps": 6, "warmup_steps": 1, "batch_size": 4, "eval_every": 3},
)


def test_scalars_name_train_and_eval_rows():
    step, values = scalars(
        "step",
        {
            "step": 3,
            "loss": 1.5,
            "grad_norm/L0": 0.25,
            "lr": 1e-3,
            "length": 4,
        },
    )
    assert step == 3 and values == {
        "train/loss": 1.5,
        "train/grad_norm/L0": 0.25,
        "train/lr": 1e-3,
        "train/length": 4,
    }
    step, values = scalars(
        "eval",
        {"step": 6, "length": 8, "loss": 0.5, "perplexity": float("inf")},
    )
    assert step == 6 and values == {
        "eval/length=8/loss": 0.5
    }  # an infinite number is no scalar
    with pytest.raises(ValueError, match="kind must be"):
        scalars("other", {"step": 1})


def test_unknown_or_missing_tracker_is_refused_before_any_folder(
    tmp_path, monkeypatch
):
    assert TRACKERS == ("none", "tensorboard", "wandb")
    with pytest.raises(
        ValueError, match="tracker must be one of none, tensorboard, wandb"
    ):
        resolve(ExperimentConfig.from_dict(TINY | {"tracker": "mlflow"}))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "wandb" else real(name, *a),
    )
    with pytest.raises(ValueError, match=r'pip install "annotated\[wandb\]"'):
        check_tracker("wandb")


def test_default_tracker_writes_nothing_extra(tmp_path):
    folder = run(TINY, tmp_path)
    assert (
        not (folder / "tensorboard").exists()
        and not (folder / "wandb").exists()
    )


def test_tensorboard_event_file_holds_the_metrics_csv_numbers(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    folder = run(TINY | {"tracker": "tensorboard"}, tmp_path)
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "eval/length=4/loss",
        "eval/length=6/exact_match",
    } <= tags
    steps = read_csv(folder / "metrics.csv")
    logged = events.Scalars("train/loss")
    assert (
        [e.step for e in logged]
        == [r["step"] for r in steps]
        == list(range(1, 7))
    )
    assert [e.value for e in logged] == pytest.approx(
        [r["loss"] for r in steps], rel=1e-6
    )  # stored as float32
    evals = [r for r in read_csv(folder / "eval.csv") if r["length"] == 6]
    logged = events.Scalars("eval/length=6/loss")
    assert [(e.step, e.value) for e in logged] == [
        (r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in evals
    ]


def test_wandb_offline_run(tmp_path, monkeypatch):
    import wandb  # the dev extra installs it: this test runs, offline, instead of skipping

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    folder = run(TINY | {"tracker": "wandb"}, tmp_path)
    runs = list((folder / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), (
        "an offline run directory with its .wandb log"
    )
    assert wandb.run is None  # the tracker finished its run


def test_wandb_is_a_dev_dependency_pinned_in_the_lock_file():
    """So CI installs it and the offline W&B test runs instead of skipping."""
    root = Path(__file__).resolve().parent.parent
    (dev,) = re.findall(
        r"^dev = \[(.*)\]", (root / "pyproject.toml").read_text(), re.M
    )
    assert '"wandb"' in dev.split(", ")
    pins = (root / "requirements-lock.txt").read_text().splitlines()
    assert any(re.fullmatch(r"wandb==\d+\.\d+\.\d+", line) for line in pins)


def test_tracker_choices_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--tracker {none,tensorboard,wandb}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--tracker", "mlflow"])
    assert "invalid choice: 'mlflow'" in capsys.readouterr().err
