"""Bad input never ends in a traceback, and a stopped run is never lost.

Each case the issue found failing is a test here: wrongly typed config values (in Python, YAML
and JSON), YAML's ``3e-4``, a missing Tiny Shakespeare, Ctrl-C / SIGTERM / divergence keeping the
last good state, a live run refused by ``resume``, a stale lock taken over, temporary files of a
killed write removed, damaged config.yaml / report.json / model.pt named, ``resume``/``report``
usage errors exiting 2, ``--device cuda`` without CUDA, ``generate`` with an empty prompt or
``top_k=2.5``. The random-input version of the config cases is tests/test_config_fuzz.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import STOPPABLE, copy_of, poison_after

from annotated.core.atomic import TEMPORARY, pid_alive, write_atomic
from annotated.core.fields import ConfigError, check_value
from annotated.core.ranges import Interval
from annotated.lab import resume, run
from annotated.lab.cli import main
from annotated.lab.folders import LOCK
from annotated.lab.resuming import check_resumable
from annotated.models.checkpoints import payload_digest
from annotated.models.config import ModelConfig
from annotated.models.generate import generate
from annotated.models.transformer import build_model, load_model
from annotated.tasks import TASKS, TextDataset, load_tiny_shakespeare
from annotated.training.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
TINY = STOPPABLE

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def config_with(section: str | None, field: str, value) -> dict:
    config = json.loads(json.dumps(TINY))
    (config[section] if section else config)[field] = value
    return config


def run_cli(argv, capsys) -> tuple[int, str]:
    """``main(argv)`` in this process → (exit status, stderr); argparse's own exits count too."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def assert_one_message(err: str, *words: str) -> None:
    """One ``error:`` line, no traceback, and every word in it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, lines[0])


def dead_pid() -> int:
    """The id of a process that has ended (a killed run's)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
    )
    pid = int(done.stdout)
    assert not pid_alive(pid)
    return pid


# --- item 1: one validation path --------------------------------------------------------------------------------


WRONG_TYPES = [  # the cases: (section, field, value, its type's name)
    ("model", "d_ff", 2.5, "float"),
    ("model", "dropout", "0.1", "str"),
    ("model", "n_kv_heads", "2", "str"),
    ("train", "betas", 0.9, "float"),
    ("model", "attention_params", [4], "list"),
    ("train", "min_lr_ratio", "0.1", "str"),
]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("section, field, value, kind", WRONG_TYPES)
def test_wrongly_typed_config_values_exit_2_naming_field_value_and_type(tmp_path, capsys, suffix, section, field,
                                                                       value, kind):  # fmt: skip
    path = tmp_path / f"bad{suffix}"
    config = config_with(section, field, value)
    path.write_text(
        json.dumps(config) if suffix == ".json" else yaml.safe_dump(config)
    )
    code, err = run_cli(
        ["train", "--config", path, "--out", tmp_path / "out"], capsys
    )
    assert code == 2
    assert_one_message(
        err, f"Config.{field} must be", f"got {value!r} (a {kind}); ", "write"
    )
    assert not (tmp_path / "out").exists()


def test_yaml_reads_3e_4_as_a_string_and_the_message_says_so(
    tmp_path, capsys
):
    path = tmp_path / "lr.yaml"
    path.write_text(
        yaml.safe_dump(TINY).replace(
            "  steps: 12\n", "  steps: 12\n  lr: 3e-4\n"
        )
    )
    assert (
        yaml.safe_load(path.read_text())["train"]["lr"] == "3e-4"
    )  # PyYAML follows YAML 1.1: a string
    code, err = run_cli(
        ["train", "--config", path, "--out", tmp_path / "out"], capsys
    )
    assert code == 2
    assert_one_message(
        err,
        "TrainConfig.lr",
        "'3e-4' (a str)",
        "YAML reads 3e-4 as a string; write 3.0e-4",
    )
    assert (
        yaml.safe_load("lr: 3.0e-4")["lr"] == 3e-4
    )  # what the message says to write is a float to YAML
    assert not (tmp_path / "out").exists()


def test_a_sweep_with_a_wrong_value_exits_2_before_any_folder(
    tmp_path, capsys
):
    path = tmp_path / "sweep.yaml"
    sweep = config_with("model", "d_ff", 2.5) | {
        "grid": {"model.positional": ["rope", "alibi"]}
    }
    path.write_text(yaml.safe_dump(sweep))
    code, err = run_cli(["sweep", path, "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert_one_message(
        err,
        "ModelConfig.d_ff must be a positive integer or None, got 2.5 (a float)",
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text", ["3e-4", "1e3", "1.0e5", "2.5E-2", "0.1", "5"]
)
def test_the_message_tells_yaml_strings_from_quoted_numbers_and_its_spelling_reads_back(
    text,
):
    with pytest.raises(ConfigError) as caught:
        check_value("TrainConfig.lr", text, float, Interval.parse("positive"))
    if isinstance(
        yaml.safe_load(text), str
    ):  # PyYAML itself is the reference: YAML 1.1 read it as text
        fixed = re.search(
            f"YAML reads {re.escape(text)} as a string; write (\\S+) ",
            str(caught.value),
        )[1]
        assert yaml.safe_load(fixed) == float(text)
    else:  # a number to YAML: it must have been quoted
        assert str(caught.value).endswith(
            f"write {text} without quotes (quoted, a number is text)"
        )


def test_python_configs_refuse_wrong_types_at_construction():
    with pytest.raises(
        ValueError,
        match=r"n_kv_heads must be a positive integer or None, got 2.0 \(a float\); write 2",
    ):
        ModelConfig(vocab_size=10, n_heads=4, n_kv_heads=2.0)
    with pytest.raises(
        ValueError,
        match=r"betas must be two numbers in \[0, 1\), got 0.9 \(a float\)",
    ):
        TrainConfig(betas=0.9)
    with pytest.raises(
        ValueError,
        match=r"d_ff must be a positive integer or None, got 2.5 .*whole number, e.g. 2",
    ):
        ModelConfig(vocab_size=10, d_ff=2.5)
    with pytest.raises(
        ValueError,
        match=r"attention_params must be a mapping, got \[4\] \(a list\)",
    ):
        ModelConfig(vocab_size=10, attention_params=[4])
    with pytest.raises(
        ValueError,
        match=r"tie_weights must be true or false, got 1 \(an int\)",
    ):
        ModelConfig(vocab_size=10, tie_weights=1)
    with pytest.raises(
        ValueError, match=r"lr must be a positive finite number, got nan"
    ):
        TrainConfig(lr=math.nan)
    with pytest.raises(
        ValueError,
        match=r"grad_clip .* got 'none' \(a str\); write null in YAML",
    ):
        TrainConfig(grad_clip="none")
    with pytest.raises(
        ValueError,
        match=r"steps must be an integer ≥ 1, got np.int64\(5\) .*write 5",
    ):
        TrainConfig(steps=np.int64(5), warmup_steps=0)
    assert TrainConfig(betas=[0.8, 0.9], lr=1).betas == (
        0.8,
        0.9,
    )  # a list (YAML's) and an int are fine


def test_every_declared_range_names_a_field():
    from annotated.lab import config as lab_config
    from annotated.models import config as model_config
    from annotated.training import config as train_config

    for module, cls in ((model_config, ModelConfig), (train_config, TrainConfig),
                        (lab_config, lab_config.ExperimentConfig)):  # fmt: skip
        assert set(module.RANGES) <= {
            f.name for f in dataclasses.fields(cls)
        }, cls.__name__
        for text in module.RANGES.values():
            Interval.parse(text)


def test_intervals_against_python_comparisons():
    reference = {  # the interval, and the same set written as a Python comparison
        "[0, 1)": lambda x: 0 <= x < 1,
        "(0, 1]": lambda x: 0 < x <= 1,
        "[1, inf)": lambda x: 1 <= x < math.inf,
        "positive": lambda x: 0 < x < math.inf,
        "non-negative": lambda x: 0 <= x < math.inf,
    }
    values = [
        -math.inf,
        -1,
        -1e-12,
        0,
        0.0,
        1e-12,
        0.5,
        1,
        1.0,
        1 + 1e-12,
        7,
        1e308,
        math.inf,
        math.nan,
    ]
    for text, inside in reference.items():
        assert [x in Interval.parse(text) for x in values] == [
            inside(x) for x in values
        ], text
    assert Interval.parse("[1, inf)").describe("integer") == "an integer ≥ 1"
    assert (
        Interval.parse("positive").describe("integer") == "a positive integer"
    )
    assert (
        Interval.parse("positive").describe("number")
        == "a positive finite number"
    )
    assert (
        Interval.parse("[0, 1)").describe("number") == "a number in [0, 1)"
        and str(Interval.parse("(0, 1]")) == "(0, 1]"
    )
    with pytest.raises(ValueError, match="a range is written like"):
        Interval.parse("0..1")


def test_tiny_shakespeare_unavailable_exits_2_with_one_message(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv(
        "ANNOTATED_TINYSHAKESPEARE", str(tmp_path / "missing.txt")
    )
    monkeypatch.setitem(
        TASKS, "tiny_shakespeare", TextDataset(load_tiny_shakespeare)
    )  # not read yet
    code, err = run_cli(
        [
            "train",
            "--task",
            "tiny_shakespeare",
            "--steps",
            2,
            "--out",
            tmp_path / "out",
        ],
        capsys,
    )
    assert code == 2
    assert_one_message(err, "missing.txt", "ANNOTATED_TINYSHAKESPEARE")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_refused_before_any_folder(
    tmp_path, capsys
):
    code, err = run_cli(
        [
            "train",
            "--task",
            "sort",
            "--device",
            "cuda",
            "--out",
            tmp_path / "out",
        ],
        capsys,
    )
    assert code == 2
    assert_one_message(err, "'cuda'", "CUDA is not available", "device: cpu")
    assert not (tmp_path / "out").exists()


# --- item 2: a stopped run is never lost ------------------------------------------------------------------------


def test_ctrl_c_keeps_the_last_good_state_and_resume_finishes_as_an_uninterrupted_run(
    stopped, tmp_path
):
    checkpoint = torch.load(stopped / "model.pt", weights_only=True)
    assert (
        checkpoint["training_state"]["step"] == 5
        and checkpoint["training_state"]["status"] == "interrupted"
    )
    report = json.loads((stopped / "report.json").read_text())
    assert (
        report["status"] == "interrupted" and report["checkpoint_step"] == 5
    )
    assert not (stopped / LOCK).exists()
    folder = resume(copy_of(stopped, tmp_path / "a"))
    assert (
        json.loads((folder / "report.json").read_text())["status"]
        == "completed"
    )
    straight = run(TINY, tmp_path / "b")
    resumed, reference = (
        load_model(folder / "model.pt"),
        load_model(straight / "model.pt"),
    )
    for (name, a), (_, b) in zip(
        resumed.state_dict().items(), reference.state_dict().items()
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_divergence_keeps_the_last_good_state_and_marks_the_run(
    tmp_path, capsys, monkeypatch
):
    poison_after(monkeypatch, 8)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    code, err = run_cli(
        ["train", "--config", path, "--out", tmp_path / "out"], capsys
    )
    (folder,) = (tmp_path / "out").iterdir()
    assert code == 1
    assert_one_message(
        err,
        "TrainingDiverged",
        f"continue with: python -m annotated resume {folder}",
    )
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "diverged" and report["checkpoint_step"] == 5
    state = torch.load(folder / "model.pt", weights_only=True)[
        "training_state"
    ]
    assert state["step"] == 5 and state["status"] == "diverged"
    resume(
        folder
    )  # from step 5; its fresh model is poisoned from its 8th step on, after the last (12)
    assert (
        json.loads((folder / "report.json").read_text())["status"]
        == "completed"
    )


@pytest.mark.slow
def test_sigterm_stops_a_run_like_ctrl_c_in_a_subprocess(tmp_path):
    command = [sys.executable, "-m", "annotated", "train", "--task", "sort", "--train-length", "4", "--d-model", "16",
               "--n-layers", "1", "--n-heads", "2", "--steps", "100000", "--batch-size", "8", "--checkpoint-every", "4",
               "--device", "cpu", "--out", "out", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while (
            not list(tmp_path.glob("out/*/model.pt"))
            and time.monotonic() < deadline
        ):  # training has begun
            time.sleep(0.2)
        locks = list(tmp_path.glob(f"out/*/{LOCK}"))
        assert (
            locks and json.loads(locks[0].read_text())["pid"] == process.pid
        )
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    (folder,) = (tmp_path / "out").iterdir()
    assert process.returncode == 130, err
    assert (
        "Traceback" not in err
        and "interrupted; " in err
        and "python -m annotated resume" in err
    )
    assert (
        json.loads((folder / "report.json").read_text())["status"]
        == "interrupted"
    )
    assert (
        torch.load(folder / "model.pt", weights_only=True)["training_state"][
            "status"
        ]
        == "interrupted"
    )
    assert not (folder / LOCK).exists()


def test_resume_refuses_a_run_another_live_process_holds(
    stopped, tmp_path, capsys
):
    folder = copy_of(stopped, tmp_path)
    (folder / LOCK).write_text(
        json.dumps({"pid": os.getppid(), "host": socket.gethostname()})
    )
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, err = run_cli(["resume", folder], capsys)
    assert code == 2
    assert_one_message(
        err, "still training in process", str(os.getppid()), LOCK
    )
    assert {
        p.name: p.read_bytes() for p in folder.iterdir()
    } == before  # nothing written


def test_a_stale_lock_is_taken_over_with_a_notice(stopped, tmp_path, capsys):
    folder = copy_of(stopped, tmp_path)
    pid = dead_pid()
    (folder / LOCK).write_text(
        json.dumps({"pid": pid, "host": socket.gethostname()})
    )
    check_resumable(folder)
    assert (
        f"names process {pid}, which is no longer running"
        in capsys.readouterr().err
    )
    assert not (folder / LOCK).exists()


def test_temporary_files_of_a_killed_write_are_removed_on_the_next_write(
    tmp_path,
):
    dead, live = dead_pid(), os.getppid()
    (tmp_path / f".model.pt.tmp{dead}").write_bytes(b"half a checkpoint")
    (tmp_path / f".eval.csv.tmp{live}").write_text(
        "another process, still writing"
    )
    assert TEMPORARY.fullmatch(f".model.pt.tmp{dead}")
    write_atomic(tmp_path / "report.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f".eval.csv.tmp{live}",
        "report.json",
    ]


@pytest.mark.parametrize("name, damage", [("config.yaml", "name: [unclosed\n  task: {"), ("report.json", '{"status": "runn'),
                                          ("config.yaml", "\x00\x01 binary"), ("report.json", "[1, 2]")])  # fmt: skip
def test_report_and_resume_name_a_damaged_file(
    stopped, tmp_path, capsys, name, damage
):
    folder = copy_of(stopped, tmp_path)
    (folder / name).write_text(damage)
    for command in ("report", "resume"):
        code, err = run_cli([command, folder], capsys)
        assert code == 2, command
        assert_one_message(err, str(folder / name))


def test_resume_and_report_usage_errors_exit_2(stopped, tmp_path, capsys):
    folder = copy_of(stopped, tmp_path)
    (folder / "model.pt").unlink()
    cases = [(["resume", folder], "has no checkpoint"), (["resume", tmp_path / "nowhere"], "is not a folder"),
             (["resume", tmp_path], "is not a run folder"), (["report", tmp_path], "neither a run folder"),
             (["resume"], "the following arguments are required")]  # fmt: skip
    for argv, words in cases:
        code, err = run_cli(argv, capsys)
        assert code == 2, argv
        assert_one_message(err, words)
    done = copy_of(stopped, tmp_path / "done")
    report = json.loads((done / "report.json").read_text())
    (done / "report.json").write_text(
        json.dumps(report | {"status": "completed"})
    )
    code, err = run_cli(["resume", done], capsys)
    assert code == 2
    assert_one_message(err, "already complete")


# --- smaller: checkpoints and generation --------------------------------------------------------------------------


def test_a_checkpoint_damaged_anywhere_never_loads_other_weights(tmp_path):
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            vocab_size=11, d_model=16, n_heads=2, n_layers=1, max_len=16
        )
    )
    good = tmp_path / "good.pt"
    model.save(good)
    data = good.read_bytes()
    for fraction in (0.2, 0.35, 0.5, 0.65, 0.8, 0.9):
        damaged = bytearray(data)
        damaged[int(len(data) * fraction)] ^= 0x5A
        path = tmp_path / f"damaged{fraction}.pt"
        path.write_bytes(bytes(damaged))
        try:
            loaded = load_model(path)
        except ValueError as error:
            assert str(path) in str(error) and (
                "damaged" in str(error) or "corrupt" in str(error)
            )
            continue
        for (
            name,
            value,
        ) in (
            model.state_dict().items()
        ):  # a byte the archive does not use: nothing changed
            assert torch.equal(loaded.state_dict()[name], value), (
                fraction,
                name,
            )
    middle = bytearray(data)
    middle[len(data) // 2] ^= 0x5A
    (tmp_path / "middle.pt").write_bytes(bytes(middle))
    with pytest.raises(
        ValueError, match=f"{tmp_path / 'middle.pt'} is damaged: .*sha256"
    ):
        load_model(tmp_path / "middle.pt")


def test_the_digest_sees_every_value_and_ignores_the_file_layout():
    state = {
        "w": torch.arange(6.0).reshape(2, 3),
        "step": 3,
        "history": {"loss": [1.0, 0.5]},
    }
    same = {
        "history": {"loss": [1.0, 0.5]},
        "step": 3,
        "w": torch.arange(6.0).reshape(3, 2).t().t().reshape(2, 3),
    }
    assert payload_digest(state) == payload_digest(same)
    for changed in ({**state, "step": 4}, {**state, "w": state["w"].double()}, {**state, "w": state["w"].reshape(3, 2)},
                    {**state, "history": {"loss": [1.0, 0.5000001]}}):  # fmt: skip
        assert payload_digest(changed) != payload_digest(state)
    bumped = state["w"].clone()
    bumped.view(-1)[4] = torch.nextafter(
        bumped.view(-1)[4], torch.tensor(100.0)
    )
    assert payload_digest({**state, "w": bumped}) != payload_digest(state)


def test_generate_refuses_an_empty_prompt_and_a_fractional_top_k():
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            vocab_size=11, d_model=16, n_heads=2, n_layers=1, max_len=16
        )
    )
    with pytest.raises(
        ValueError,
        match=r"prompt of shape \(1, 0\) is empty; give at least one token",
    ):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(
        ValueError,
        match=r"top_k must be an integer in \[1, vocab_size=11\] .*got 2.5 \(float\)",
    ):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, top_k=2.5)
    with pytest.raises(
        ValueError, match=r"top_k must be an integer .*got True"
    ):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, top_k=True)
    with pytest.raises(
        ValueError,
        match=r"prompt must be a \(B, T0\) tensor of integer token ids",
    ):
        generate(model, torch.zeros(2, dtype=torch.long), 3)
    with pytest.raises(
        ValueError, match="temperature must be a positive finite number"
    ):
        generate(
            model, torch.zeros(1, 2, dtype=torch.long), 3, temperature="1"
        )
    with pytest.raises(ValueError, match="max_new_tokens must be an integer"):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 2.5)
    out = generate(
        model,
        torch.zeros(1, 2, dtype=torch.long),
        3,
        top_k=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.shape == (1, 5)
