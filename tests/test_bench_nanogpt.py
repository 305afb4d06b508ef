"""The whole-process A/B against nanoGPT, without nanoGPT: the parsing of
each side's output, the table and files, the commands, and the error (exit
2) when NANOGPT_DIR names no checkout. Never timings."""

import csv
import os
import subprocess
import sys
from pathlib import Path

from annotated.bench.nanogpt import (
    ab_table,
    library_command,
    library_val_loss,
    main,
    nanogpt_command,
    nanogpt_val_loss,
    write_results,
)

NANOGPT_OUTPUT = """\
found vocab_size = 65 (inside data/shakespeare_char/meta.pkl)
step 0: train loss 4.1676, val loss 4.1649
iter 0: loss 4.1828, time 931.38ms, mfu -100.00%
iter 249: loss 2.0001, time 52.10ms, mfu 0.02%
step 250: train loss 1.9512, val loss 2.0431
iter 250: loss 1.9735, time 1203.51ms, mfu 0.02%
iter 300: loss 1.8870, time 51.90ms, mfu 0.02%
"""

EVAL_CSV = """\
step,length,loss,perplexity,token_accuracy
250,32,2.2,9.0,0.3
250,64,2.1,8.2,0.35
300,32,1.99,7.3,0.4
300,64,1.9876,7.3,0.41
"""

ROW = {
    "iterations": 300,
    "repeats": 3,
    "nanogpt_wall_s": 20.04,
    "nanogpt_cpu_s": 19.5,
    "nanogpt_val_step": 250,
    "nanogpt_val_loss": 2.0431,
    "library_wall_s": 19.0,
    "library_cpu_s": 18.25,
    "library_val_step": None,
    "library_val_loss": None,
    "wall_ratio": 19.0 / 20.04,
    "cpu_ratio": 18.25 / 19.5,
}


def test_nanogpt_val_loss_is_the_last_step_line():
    assert nanogpt_val_loss(NANOGPT_OUTPUT) == (250, 2.0431)
    assert nanogpt_val_loss("iter 0: loss 4.18, time 9ms, mfu 0%\n") is None


def test_library_val_loss_is_the_last_evaluation_at_the_length():
    assert library_val_loss(EVAL_CSV) == (300, 1.9876)
    assert library_val_loss(EVAL_CSV, length=32) == (300, 1.99)
    assert library_val_loss(EVAL_CSV, length=128) is None


def test_table_and_files(tmp_path):
    table = ab_table([ROW])
    assert "| 300 | 20.0 | 19.0 | 0.948 | 19.5 | 18.2 | 0.936 |" in table
    assert "| 2.0431 (step 250) | — |" in table
    assert "median of 3 interleaved run(s)" in table
    files = write_results([ROW], tmp_path)
    assert files["md"].read_text() == table
    with open(files["csv"], newline="") as fh:
        (read,) = list(csv.DictReader(fh))
    assert read["iterations"] == "300" and read["library_val_loss"] == ""


def test_commands_carry_the_recipe_and_the_schedule():
    ours = library_command(2000, Path("out"))
    assert ours[1:4] == ["-m", "annotated", "train"]
    assert {"--steps=2000", "--warmup-steps=100", "--out=out"} <= set(ours)
    assert {"--no-bias", "--no-norm-bias", "--eval-lengths=64"} <= set(ours)
    theirs = nanogpt_command(20, Path("out"))
    assert theirs[1:3] == ["train.py", "config/train_shakespeare_char.py"]
    schedule = {"--max_iters=20", "--lr_decay_iters=20", "--warmup_iters=10"}
    assert schedule | {"--out_dir=out", "--device=cpu"} <= set(theirs)


def test_no_checkout_is_exit_2_with_how_to_get_one(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("NANOGPT_DIR", raising=False)
    assert main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: NANOGPT_DIR is not set")
    assert "git clone https://github.com/karpathy/nanoGPT" in err
    assert "export NANOGPT_DIR=" in err
    assert not list(tmp_path.iterdir())


def test_not_a_checkout_exits_2_without_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "annotated.bench.nanogpt"],
        env=dict(os.environ, NANOGPT_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert f"NANOGPT_DIR={tmp_path} is not a nanoGPT checkout" in done.stderr
    assert "train.py" in done.stderr and "git clone" in done.stderr
    assert "Traceback" not in done.stderr
