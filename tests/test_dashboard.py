"""The comparison dashboard: its choice is one sweep (``lab.sweep``) whose points are the configs the
command line's flags build, its numbers are the command line's, its table and static figure hold
every chosen encoding, and a choice it cannot train is refused with a message (in the UI) or a
ValueError (from code)."""

import base64
import json
import subprocess
import sys

import pytest
import torch

from annotated.figures.dashboard import ComparisonDashboard
from annotated.figures.dashboard_controls import parse_lengths
from annotated.lab import ExperimentConfig, expand_grid, read_csv, resolve
from annotated.lab.cli import build_parser, experiment_from_args, main
from annotated.tasks import CopyTask, register_task

TINY = {"steps": 8, "d_model": 16, "n_layers": 1, "n_heads": 2, "batch_size": 8, "eval_batches": 1, "eval_every": 4,
        "train_length": 4, "eval_lengths": [6]}  # fmt: skip
CLI_TINY = ["--train-length", "4", "--eval-lengths", "6", "--steps", "8", "--d-model", "16", "--n-layers", "1",
            "--n-heads", "2", "--batch-size", "8", "--eval-batches", "1", "--eval-every", "4"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained(one_thread, tmp_path_factory):
    """A dashboard that has trained nope and ALiBi on copy (one seed each), and its result."""
    dashboard = ComparisonDashboard(task="copy", encodings=["nope", "alibi"], out_dir=tmp_path_factory.mktemp("runs"),
                                    **TINY)  # fmt: skip
    # nothing to show before training
    assert dashboard._repr_mimebundle_().get("image/png") is None
    return dashboard, dashboard.train()


def test_configs_are_one_sweep_that_the_command_line_runs_too(tmp_path):
    out = tmp_path / "runs"
    dashboard = ComparisonDashboard(
        task="reverse",
        encodings=["rope", "learned"],
        seeds=2,
        out_dir=out,
        **TINY,
    )
    sweep = dashboard.sweep_config()
    assert sweep.grid == {
        "model.positional": ["rope", "learned"],
        "seed": [0, 1],
    }
    configs = dashboard.configs()
    assert configs == expand_grid(sweep)
    assert [(c.model["positional"], c.seed) for c in configs] == [("rope", 0), ("rope", 1), ("learned", 0),
                                                                  ("learned", 1)]  # fmt: skip
    parser = build_parser()
    # each point is the config the command line's train flags build
    for config in configs:
        pe, seed = config.model["positional"], config.seed
        argv = [
            "train",
            "--task",
            "reverse",
            *CLI_TINY,
            "--positional",
            pe,
            "--seed",
            str(seed),
            "--name",
            config.name,
        ]
        # reverse at n=6: 12 inputs
        expected = experiment_from_args(
            parser.parse_args([*argv, "--max-len", "12"])
        )
        assert config == expected
        assert resolve(config).to_dict() == resolve(expected).to_dict()
    # the learned table reaches n = 6
    assert {resolve(c).model_config.max_len for c in configs} == {12}
    # a shell script: write the sweep's YAML, run it
    lines = dashboard.command_lines()
    assert (
        lines[0] == "cat > compare_reverse.yaml <<'EOF'"
        and lines[-2] == "EOF"
    )
    assert (
        lines[-1]
        == f"python -m annotated sweep compare_reverse.yaml --out {out}"
    )
    shell = tmp_path / "shell"
    shell.mkdir()
    subprocess.run(
        ["bash", "-c", "\n".join(lines[:-1])], cwd=shell, check=True
    )
    assert (
        expand_grid(
            ExperimentConfig.from_file(shell / "compare_reverse.yaml")
        )
        == configs
    )
    dashboard.controls["steps"].value = 40  # the controls drive the configs
    dashboard.controls["d_model"].value = 32
    config = dashboard.configs()[0]
    assert (config.train["steps"], config.model["d_model"]) == (40, 32)
    # the lab's default: a tenth of the steps
    assert resolve(config).train_config.warmup_steps == 4
    assert "steps: 40" in dashboard.commands.value
    assert not out.exists()  # building configs trains nothing


@pytest.mark.slow
def test_trains_what_the_command_line_trains(trained, tmp_path, capsys):
    dashboard, result = trained
    assert (
        main(
            [
                "train",
                "--task",
                "copy",
                "--positional",
                "alibi",
                *CLI_TINY,
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    (folder,) = tmp_path.iterdir()
    cli = json.loads((folder / "report.json").read_text())
    nope, alibi = result.runs
    assert (nope.encoding, alibi.encoding) == ("nope", "alibi")
    # the same numbers, to the last bit
    assert alibi.report["per_length"] == cli["per_length"]
    assert alibi.report["final_train_loss"] == cli["final_train_loss"]
    # …and the encoding does change them
    assert nope.report["per_length"] != cli["per_length"]
    group = next(g for g in result.groups() if g["encoding"] == "alibi")
    assert (
        group["in_dist_exact_match"] == cli["in_distribution"]["exact_match"]
    )
    assert group["in_dist_loss"] == cli["per_length"]["4"]["loss"]
    assert (
        group["ood_loss"] == group["loss@6"] == cli["per_length"]["6"]["loss"]
    )
    assert (
        group["ood_token_accuracy"]
        == cli["per_length"]["6"]["token_accuracy"]
    )
    assert (
        group["gap_token_accuracy"]
        == cli["generalisation_gap"]["token_accuracy"]
    )
    assert group["gap_token_accuracy"] == pytest.approx(
        group["in_dist_token_accuracy"] - group["ood_token_accuracy"]
    )
    # eval every 4 steps at n = 4 and 6
    assert [r["step"] for r in alibi.history.evals] == [
        4,
        4,
        8,
        8,
    ]
    # the sweep's own summary agrees
    summary = {r["run"]: r for r in read_csv(result.folder / "summary.csv")}
    assert (
        summary[alibi.folder.name]["in_dist_exact_match"]
        == cli["in_distribution"]["exact_match"]
    )
    assert summary[alibi.folder.name]["model.positional"] == "alibi"


def test_table_and_static_figure_hold_every_encoding(trained):
    dashboard, result = trained
    assert [g["encoding"] for g in result.groups()] == ["nope", "alibi"]
    table = dashboard.table.value
    for group in result.groups():
        assert f"<b>{group['encoding']}</b>" in table
        for key in (
            "in_dist_exact_match",
            "in_dist_loss",
            "ood_loss",
            "ood_exact_match",
            "gap_exact_match",
        ):
            assert f"<td>{group[key]:.3f}</td>" in table
    assert all(
        title in table
        for title in (
            "in-dist loss",
            "OOD exact match",
            "gap (exact match)",
            "exact match n=6",
        )
    )
    bundle = dashboard._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG") and png == dashboard.image.value
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle[
        "text/html"
    ].startswith("<table")
    assert (
        bundle["text/plain"]
        == "<comparison dashboard: copy, nope, alibi; 2 runs trained>"
    )
    assert dashboard.progress.value == dashboard.progress.max == 16
    assert (
        result.folder.parent == dashboard.out_dir
        and (result.folder / "sweep.yaml").is_file()
    )
    assert all(
        (run.folder / "model.pt").is_file()
        and run.folder.parent == result.folder
        for run in result.runs
    )


def test_attention_explorer_of_a_trained_run(trained):
    dashboard, _ = trained
    explorer = dashboard.explorer("alibi")
    # (L, B, H, T, T): copy at n=4 is 4 + SEP + 4 tokens
    assert explorer.weights.shape == (
        1,
        1,
        2,
        8,
        8,
    )
    torch.testing.assert_close(
        explorer.weights.sum(-1), torch.ones(1, 1, 2, 8)
    )
    with pytest.raises(
        ValueError, match="no trained run for encoding 'rope'"
    ):
        dashboard.explorer("rope")


def test_bad_choices_are_refused_with_a_message(tmp_path):
    dashboard = ComparisonDashboard(
        encodings=["rope"], out_dir=tmp_path, **TINY
    )
    dashboard.controls["encodings"].value = ()
    with pytest.raises(
        ValueError, match="choose at least one positional encoding"
    ):
        dashboard.train()
    # shown while choosing
    assert (
        "choose at least one positional encoding" in dashboard.commands.value
    )
    dashboard.button.click()
    assert (
        "cannot train" in dashboard.status.value
        and "at least one positional encoding" in dashboard.status.value
    )
    assert not dashboard.button.disabled and dashboard.result is None
    dashboard.controls["encodings"].value = ("rope",)
    dashboard.controls["eval_lengths"].value = "2 6"  # training length 4
    with pytest.raises(
        ValueError,
        match=r"evaluation length\(s\) \[2\] are shorter than the training length 4",
    ):
        dashboard.configs()
    dashboard.button.click()
    assert "shorter than the training length" in dashboard.status.value
    dashboard.controls["eval_lengths"].value = "6, x"
    with pytest.raises(
        ValueError, match="whole numbers separated by spaces or commas"
    ):
        dashboard.configs()
    dashboard.controls["eval_lengths"].value = "6"
    dashboard.controls["d_model"].value = 32
    dashboard.fixed["model"]["n_heads"] = (
        3  # the lab's own checks speak too: 32 is not divisible by 3 heads
    )
    with pytest.raises(ValueError, match="divisible"):
        dashboard.configs()
    assert not any(tmp_path.iterdir())  # nothing was written
    with pytest.raises(ValueError, match="unknown positional encoding"):
        ComparisonDashboard(encodings=["rope", "rotary-ish"])
    with pytest.raises(ValueError, match="unknown task"):
        ComparisonDashboard(task="sorting")


class BrokenCopyTask(CopyTask):
    """Copy, until its fourth batch: then it raises, as a user's buggy task might."""

    calls = 0

    def solve(self, prompt):
        BrokenCopyTask.calls += 1
        if BrokenCopyTask.calls > 3:
            raise RuntimeError("the user's task broke")
        return prompt


def test_a_failed_run_is_reported(tmp_path):
    register_task("broken_copy_dashboard", BrokenCopyTask(), replace=True)
    dashboard = ComparisonDashboard(task="broken_copy_dashboard", encodings=["nope"], out_dir=tmp_path,
                                    **(TINY | {"steps": 4, "eval_every": 0}))  # fmt: skip
    dashboard.button.click()
    status = dashboard.status.value
    assert (
        "cannot train" in status
        and "1 run(s) failed" in status
        and "the user&#x27;s task broke" in status
    )
    assert dashboard.result is None and not dashboard.button.disabled
    # the sweep folder keeps the failed run and a summary that says so
    (folder,) = tmp_path.iterdir()
    assert [
        r["status"]
        for r in read_csv(folder / "summary.csv")
        if r["kind"] == "run"
    ] == ["failed"]


def test_the_dashboard_does_not_import_the_command_line():
    code = "import sys, annotated.figures.dashboard; assert 'annotated.lab.cli' not in sys.modules, 'imports the CLI'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parse_lengths():
    assert (
        parse_lengths("12 16, 32")
        == [12, 16, 32]
        == parse_lengths([12, 16, 32])
    )
    assert parse_lengths("") == [] == parse_lengths(())
    with pytest.raises(ValueError, match="positive"):
        parse_lengths("0 4")
