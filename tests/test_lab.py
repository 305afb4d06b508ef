"""The lab: run folders, atomic/no-overwrite writing, config checks, sweeps and their summary, resume."""

from __future__ import annotations

import json
import statistics
import textwrap

import pytest
import torch
import yaml
from conftest import tiny_experiment

from annotated.lab import (
    ExperimentConfig,
    expand_grid,
    new_folder,
    read_csv,
    report,
    resume,
    run,
    sweep,
)
from annotated.models.transformer import load_model
from annotated.tasks import get_task

TINY = tiny_experiment()
RUN_FILES = {
    "config.yaml",
    "metrics.csv",
    "eval.csv",
    "model.pt",
    "report.json",
    "report.md",
}
RUN_FILES |= {
    "curves.png",
    "grad_norms.png",
    "accuracy_vs_length.png",
    "attention.png",
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(**changes):
    config = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        head, _, rest = key.partition("__")
        (
            config[head].__setitem__(rest, value)
            if rest
            else config.__setitem__(head, value)
        )
    return config


def test_run_folder_contents(tmp_path):
    folder = run(tiny(), tmp_path)
    assert (
        folder.parent == tmp_path
        and folder.name.endswith("_tiny")
        and folder.name[:8].isdigit()
    )
    assert {
        p.name for p in folder.iterdir()
    } == RUN_FILES  # no temporary files left behind
    assert all(
        (folder / p).read_bytes()[:4] == b"\x89PNG"
        for p in RUN_FILES
        if p.endswith(".png")
    )

    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["model"]["vocab_size"] == get_task("sort").vocab_size
    assert config["model"]["max_len"] == get_task("sort").seq_len(
        4
    )  # defaults to the training sequence length
    assert config["train"]["steps"] == 12 and config["seed"] == 0
    assert {"annotated", "torch", "device", "git_commit", "python"} <= set(
        config["environment"]
    )
    assert config["environment"]["torch"] == str(torch.__version__)

    steps, evals = (
        read_csv(folder / "metrics.csv"),
        read_csv(folder / "eval.csv"),
    )
    assert [r["step"] for r in steps] == list(range(1, 13))
    assert [(r["step"], r["length"]) for r in evals] == [
        (6, 4),
        (6, 6),
        (12, 4),
        (12, 6),
    ]
    assert {"loss", "lr", "grad_norm", "tokens_per_s"} <= set(steps[0])
    assert {
        "perplexity",
        "token_accuracy",
        "exact_match",
        "entropy/L0H1",
        "peak_memory_bytes",
    } <= set(evals[0])

    summary = json.loads((folder / "report.json").read_text())
    assert (
        summary["status"] == "completed"
        and summary["steps_done"] == 12
        and summary["parameters"] > 0
    )
    final = {r["length"]: r for r in evals if r["step"] == 12}
    assert (
        summary["in_distribution"]["exact_match"] == final[4]["exact_match"]
    )
    assert summary["per_length"]["6"]["token_accuracy"] == pytest.approx(
        final[6]["token_accuracy"]
    )
    gap = summary["generalisation_gap"]["token_accuracy"]
    assert gap == pytest.approx(
        final[4]["token_accuracy"] - final[6]["token_accuracy"]
    )
    assert "| 6 |" in (folder / "report.md").read_text()

    model = load_model(
        folder / "model.pt"
    )  # the checkpoint is an ordinary model file too
    assert model.config.positional == "rope" and model.config.d_model == 16

    (folder / "report.json").unlink()
    (folder / "curves.png").unlink()
    report(folder)  # re-rendered from the CSVs
    again = json.loads((folder / "report.json").read_text())
    assert (
        again["per_length"] == summary["per_length"]
        and (folder / "curves.png").is_file()
    )


def test_folders_are_never_overwritten(tmp_path):
    first, second = new_folder(tmp_path, "same"), new_folder(tmp_path, "same")
    assert (
        first != second
        and second.name.startswith(first.name)
        and second.name.endswith("-2")
    )
    third = new_folder(tmp_path, "same", stamp=False)
    assert (
        new_folder(tmp_path, "same", stamp=False).name == "same-2"
        and third.name == "same"
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"task": "sorting"}, "unknown task 'sorting'; valid names: .*sort"),
        (
            {"model__positional": "rotary"},
            "unknown positional encoding 'rotary'.*rope",
        ),
        (
            {"model__positional": "learned", "eval_lengths": [10]},
            "length 10 needs 20 positions.*max_len=8",
        ),
        ({"train__steps": -1}, "steps must be an integer ≥ 1"),
        ({"train__batch_size": 0}, "batch_size must be an integer ≥ 1"),
        ({"train__seed": 3}, "seed at the top level"),
        ({"modle": {}}, "unknown experiment field.*modle"),
        ({"model__layers": 2}, "unknown ModelConfig field.*layers"),
        ({"name": "a/b"}, "name must be"),
        (
            {"model__attention": "linear", "model__positional": "alibi"},
            "cannot apply the score_mod",
        ),
        ({"model__attention": "local"}, "needs \\['window'\\]"),
    ],
)
def test_bad_configs_fail_before_any_folder(tmp_path, changes, message):
    out = tmp_path / "experiments"
    with pytest.raises(ValueError, match=message):
        run(tiny(**changes), out)
    assert not out.exists() or not any(out.iterdir())


def test_failure_midway_marks_the_folder(tmp_path):
    def stop(kind, row):
        if kind == "step" and row["step"] == 5:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run(tiny(), tmp_path, callback=stop)
    (folder,) = tmp_path.iterdir()
    summary = json.loads((folder / "report.json").read_text())
    assert (
        summary["status"] == "failed"
        and summary["error"] == "RuntimeError: power cut"
    )
    assert [r["step"] for r in read_csv(folder / "metrics.csv")] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert "Status: failed" in (folder / "report.md").read_text()


def test_resume_ends_like_an_uninterrupted_run(tmp_path):
    config = tiny(model__dropout=0.1, train__checkpoint_every=4)
    whole = run(config, tmp_path / "whole")

    def interrupt(kind, row):
        if kind == "step" and row["step"] == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "broken", callback=interrupt)
    (broken,) = (tmp_path / "broken").iterdir()
    assert (
        json.loads((broken / "report.json").read_text())["status"]
        == "interrupted"
    )
    assert (
        torch.load(broken / "model.pt", weights_only=True)["training_state"][
            "step"
        ]
        == 8
    )
    assert resume(broken) == broken
    assert (
        json.loads((broken / "report.json").read_text())["status"]
        == "completed"
    )
    a, b = (
        load_model(whole / "model.pt").state_dict(),
        load_model(broken / "model.pt").state_dict(),
    )
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-6, atol=1e-7)
    for x, y in zip(
        read_csv(whole / "eval.csv"),
        read_csv(broken / "eval.csv"),
        strict=True,
    ):
        assert (
            y["loss"] == pytest.approx(x["loss"], rel=1e-6)
            and y["exact_match"] == x["exact_match"]
        )
    with pytest.raises(ValueError, match="already complete"):
        resume(broken)


@pytest.mark.slow
def test_sweep_summary_and_report(tmp_path):
    config = tiny(
        grid={"model.positional": ["rope", "nope"], "seed": [0, 1]},
        name="grid",
    )
    folder = sweep(config, tmp_path)
    rows = read_csv(folder / "summary.csv")
    runs = [r for r in rows if r["kind"] == "run"]
    groups = {r["model.positional"]: r for r in rows if r["kind"] == "group"}
    assert [(r["model.positional"], r["seed"]) for r in runs] == [
        ("rope", 0),
        ("rope", 1),
        ("nope", 0),
        ("nope", 1),
    ]
    assert all(r["status"] == "completed" for r in runs) and set(groups) == {
        "rope",
        "nope",
    }
    for pe, group in groups.items():
        members = [
            r["token_accuracy@6"] for r in runs if r["model.positional"] == pe
        ]
        assert group["token_accuracy@6"] == pytest.approx(
            statistics.mean(members)
        )
        assert group["token_accuracy@6_std"] == pytest.approx(
            statistics.stdev(members)
        )
        assert group["seed"] == "*" and group["status"] == "2/2 completed"
    for r in runs:
        run_report = json.loads(
            (folder / r["run"] / "report.json").read_text()
        )
        assert (
            r["in_dist_exact_match"]
            == run_report["in_distribution"]["exact_match"]
        )
    text = (folder / "report.md").read_text()
    assert (
        "| rope | 2/2 completed |" in text
        and "grid-positional=nope-seed=1/curves.png" in text
    )
    assert (
        folder / "accuracy_vs_length.png"
    ).is_file()  # report(sweep folder) is exercised in test_cli.py


def test_grid_expansion_and_bad_grids(tmp_path):
    config = ExperimentConfig.from_dict(
        tiny(grid={"task": ["sort", "copy"], "train.lr": [1e-3, 3e-3]})
    )
    points = expand_grid(config)
    assert [(p.task, p.train["lr"]) for p in points] == [
        ("sort", 1e-3),
        ("sort", 3e-3),
        ("copy", 1e-3),
        ("copy", 3e-3),
    ]
    assert (
        points[0].name == "tiny-task=sort-lr=0.001" and points[0].grid == {}
    )
    with pytest.raises(ValueError, match="not sweepable"):
        sweep(tiny(grid={"colour": [1]}), tmp_path)
    with pytest.raises(
        ValueError, match="unknown task 'nope'"
    ):  # every point is checked before any folder
        sweep(tiny(grid={"task": ["sort", "nope"]}), tmp_path)
    assert not any(tmp_path.iterdir())


def test_user_task_from_a_plugin_file(tmp_path):
    (tmp_path / "my_tasks.py").write_text(
        textwrap.dedent("""
        from annotated.tasks import CopyTask, register_task

        class IncrementTask(CopyTask):
            '''Write each prompt digit plus one (mod 10) after SEP.'''
            def solve(self, prompt):
                return (prompt + 1) % self.n_symbols

        register_task("increment_lab_test", IncrementTask())
    """)
    )
    (tmp_path / "exp.yaml").write_text(
        yaml.safe_dump(
            tiny(task="increment_lab_test", plugins=["my_tasks.py"])
        )
    )
    folder = run(
        tmp_path / "exp.yaml", tmp_path / "out"
    )  # the plugin path is relative to the config file
    summary = json.loads((folder / "report.json").read_text())
    assert (
        summary["status"] == "completed"
        and summary["task"] == "increment_lab_test"
    )
    assert get_task("increment_lab_test").solve(
        torch.tensor([[9, 1]])
    ).tolist() == [[0, 2]]


def test_stored_results_name_one_clean_commit():
    from annotated.lab.folders import environment, unclean_provenance

    env = environment("cpu")
    assert {"cpu_capability", "threads", "git_dirty", "git_diff_sha256"} <= set(env)
    clean = {"git_commit": "a" * 40, "git_dirty": False, "git_diff_sha256": None}
    assert unclean_provenance([clean, dict(clean)]) is None
    dirty = clean | {"git_dirty": True, "git_diff_sha256": "f" * 64}
    assert "1 of 2 runs" in unclean_provenance([clean, dirty])
    assert "--allow-dirty" in unclean_provenance([clean | {"git_dirty": None}])
    assert "2 commits" in unclean_provenance([clean, clean | {"git_commit": "b" * 40}])
