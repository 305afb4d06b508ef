"""Sweeps that fit a laptop: --jobs N equals the serial sweep, a sweep folder is resumed in place
(completed runs untouched, interrupted ones continued from their checkpoints, missing ones run),
and a grid with a repeated value gives every point its own folder and summary row."""

from __future__ import annotations

import json
import os
import socket

import pytest
from conftest import tiny_experiment

from annotated.lab import (
    ExperimentConfig,
    expand_grid,
    read_csv,
    resume_sweep,
    sweep,
)
from annotated.lab.cli import main
from annotated.lab.sweeps import plan

TINY = tiny_experiment(
    task="copy", model={"n_layers": 2}, train={"steps": 20, "eval_every": 10}
)
VOLATILE = (
    "train_time_s",
    "train_time_s_std",
    "train_time_s_ci_lo",
    "train_time_s_ci_hi",
    "peak_memory_bytes",
)  # differ between equal runs

pytestmark = pytest.mark.usefixtures(
    "one_thread"
)  # the serial sweep uses one torch thread, as each worker does


def tiny(**changes) -> dict:
    return json.loads(json.dumps(TINY)) | changes


def summary_rows(folder) -> list[dict]:
    return [
        {k: v for k, v in row.items() if k not in VOLATILE}
        for row in read_csv(folder / "summary.csv")
    ]


def eval_rows(run) -> list[dict]:
    return [
        {k: v for k, v in row.items() if k not in VOLATILE}
        for row in read_csv(run / "eval.csv")
    ]


def files(folder) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_two_jobs_give_the_serial_sweeps_rows(tmp_path):
    config = tiny(grid={"model.positional": ["rope", "sinusoidal"]})
    serial = sweep(config, tmp_path / "serial")
    parallel = sweep(config, tmp_path / "parallel", jobs=2)
    rows = summary_rows(serial)
    assert [r["run"] for r in rows if r["kind"] == "run"] == [
        "tiny-positional=rope",
        "tiny-positional=sinusoidal",
    ]
    assert all(r["status"] == "completed" for r in rows if r["kind"] == "run")
    assert summary_rows(parallel) == rows
    for run in ("tiny-positional=rope", "tiny-positional=sinusoidal"):
        assert eval_rows(parallel / run) == eval_rows(serial / run)


@pytest.mark.slow
def test_a_repeated_value_gives_each_point_its_folder_and_row(tmp_path):
    names = [
        p.name
        for p in expand_grid(
            ExperimentConfig.from_dict(tiny(grid={"seed": [0, 1, 0]}))
        )
    ]
    assert names == ["tiny-seed=0-p0", "tiny-seed=1", "tiny-seed=0-p2"]
    values = tiny(
        grid={
            "model.positional": ["rope", "nope"],
            "train.lr": [0.001, 0.001],
        }
    )  # "1e-3" is 0.001 too
    names = [p.name for p in expand_grid(ExperimentConfig.from_dict(values))]
    assert (
        len(set(names)) == 4
        and names[0] == "tiny-positional=rope-lr=0.001-p0"
    )

    config = tiny(
        grid={"seed": [0, 0]},
        train=TINY["train"] | {"steps": 6, "eval_every": 6},
    )
    folder = sweep(config, tmp_path)
    runs = [r for r in read_csv(folder / "summary.csv") if r["kind"] == "run"]
    assert [r["run"] for r in runs] == ["tiny-seed=0-p0", "tiny-seed=0-p1"]
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == [
        "tiny-seed=0-p0",
        "tiny-seed=0-p1",
    ]
    assert all(r["status"] == "completed" for r in runs)
    assert (
        runs[0]["exact_match@6"] == runs[1]["exact_match@6"]
        and runs[0]["in_dist_loss"] == runs[1]["in_dist_loss"]
    )


@pytest.mark.slow
def test_rerunning_a_sweep_folder_finishes_only_what_is_missing(tmp_path):
    config = tiny(
        grid={"seed": [0, 1, 2, 3]},
        train=TINY["train"] | {"checkpoint_every": 5},
    )
    whole = sweep(config, tmp_path / "whole")

    def interrupt(
        point, kind, row
    ):  # Ctrl-C during the second run, after its checkpoint at step 10
        if point.seed == 1 and kind == "step" and row["step"] == 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(config, tmp_path / "broken", callback=interrupt)
    (folder,) = (tmp_path / "broken").iterdir()
    done, stopped, missing, empty = (
        folder / f"tiny-seed={seed}" for seed in range(4)
    )
    assert (
        json.loads((stopped / "report.json").read_text())["status"]
        == "interrupted"
    )
    assert (stopped / "model.pt").is_file() and not missing.exists()
    assert [
        r["status"]
        for r in read_csv(folder / "summary.csv")
        if r["kind"] == "run"
    ][:2] == [
        "completed",
        "interrupted",
    ]
    empty.mkdir()  # a run stopped before any checkpoint: no model.pt, so it starts again in a clean folder
    (empty / "report.json").write_text(json.dumps({"status": "interrupted"}))
    (empty / "stale.txt").write_text("left by the stopped run")
    (stopped / "kept.txt").write_text("a resumed run keeps its folder")

    points = expand_grid(ExperimentConfig.from_dict(config))
    jobs, skipped = plan(folder, points)
    assert skipped == [done.name] and [
        (job.folder.name, job.action) for job in jobs
    ] == [
        (stopped.name, "resume"),
        (missing.name, "fresh"),
        (empty.name, "fresh"),
    ]
    before = files(done)
    assert (
        main(
            ["sweep", "--resume", str(folder), "--jobs", "2", "--no-progress"]
        )
        == 0
    )
    assert files(done) == before  # skipped: byte for byte as it was
    assert (stopped / "kept.txt").is_file() and not (
        empty / "stale.txt"
    ).exists()
    assert summary_rows(folder) == summary_rows(
        whole
    )  # the resumed run ends as the uninterrupted one did
    for run in (stopped, missing, empty):
        assert eval_rows(run) == eval_rows(whole / run.name)

    before = {run.name: files(run) for run in (done, stopped, missing, empty)}
    assert (
        resume_sweep(folder) == folder
    )  # nothing left to do: nothing changes
    assert {
        run.name: files(run) for run in (done, stopped, missing, empty)
    } == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep"], "give a sweep config or --resume FOLDER"),
        (
            ["sweep", "sweep_small", "--resume", "x"],
            "give a sweep config or --resume FOLDER",
        ),
        (
            ["sweep", "sweep_small", "--jobs", "0"],
            "jobs must be a positive integer",
        ),
        (["sweep", "sweep_small", "--address", "auto"], "add --executor ray"),
        (
            ["sweep", "sweep_small", "--executor", "ray", "--jobs", "2"],
            "jobs is for the local executor",
        ),
        (["sweep", "--resume", "."], "is not a sweep folder"),
    ],
)
def test_sweep_usage_errors_exit_2_and_write_nothing(
    tmp_path, capsys, argv, message
):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_run_another_process_is_training_is_left_alone(tmp_path):
    config = ExperimentConfig.from_dict(tiny(grid={"seed": [0]}))
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.yaml").write_text(config.to_yaml())
    busy = (
        folder / "tiny-seed=0"
    )  # no checkpoint yet, and a live process (this one's parent) holds its lock
    busy.mkdir()
    (busy / "run.lock").write_text(
        json.dumps({"pid": os.getppid(), "host": socket.gethostname()})
    )
    with pytest.raises(
        RuntimeError, match=f"being trained by process {os.getppid()}"
    ):
        resume_sweep(folder)
    assert sorted(p.name for p in busy.iterdir()) == ["run.lock"]
    assert [
        r["status"]
        for r in read_csv(folder / "summary.csv")
        if r["kind"] == "run"
    ] == ["missing"]
