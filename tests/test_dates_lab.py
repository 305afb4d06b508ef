"""The lab trains the date task: source | answer rows for an
encoder-decoder, the greedy decoder's exact match, a run folder through the
command line with one result per held-out split, and clear refusals."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from _scripts import ROOT, load_script

from annotated.lab.cli import main
from annotated.models.config import ModelConfig
from annotated.models.generate import generate
from annotated.models.transformer import EncoderDecoder, load_model
from annotated.tasks import TASKS, get_task
from annotated.tasks.dates import ANSWER_LEN, DateTask
from annotated.training.config import TrainConfig
from annotated.training.evaluation import evaluate
from annotated.training.seq2seq import PairedBatches, PairedEncoderDecoder

pytestmark = pytest.mark.usefixtures("one_thread")
DATA = ROOT / "annotated" / "data"
TASK = DateTask()
TINY = ["--d-model", "16", "--n-layers", "1", "--n-heads", "2"]
TINY += ["--steps", "6", "--batch-size", "8", "--eval-batches", "1"]


def paired_model(seed=0):
    """A tiny untrained encoder-decoder with peaked logits (an untied head
    × 20), so that its argmax has no near-ties."""
    config = ModelConfig(
        arch="encoder-decoder",
        vocab_size=TASK.vocab_size,
        d_model=16,
        n_heads=2,
        n_layers=1,
        pad_id=TASK.pad_id,
        tie_weights=False,
    )
    torch.manual_seed(seed)
    model = PairedEncoderDecoder(config, ANSWER_LEN).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    return model


def test_dates_is_registered():
    assert isinstance(get_task("dates"), DateTask) and "dates" in TASKS


def test_a_paired_row_is_the_source_then_the_decoder_inputs():
    paired = PairedBatches(TASK)
    batch = paired.sample(5, 1, 3, split="test_forms")
    src, answer = TASK.seq2seq(5, 1, 3, split="test_forms")
    s = src.shape[1]
    assert torch.equal(batch.inputs[:, :s], src)
    assert torch.equal(batch.inputs[:, s:], TASK.decoder_inputs(answer))
    assert torch.equal(batch.targets[:, s:], answer)
    assert (batch.targets[:, :s] == TASK.pad_id).all()
    assert batch.target_mask.sum(1).tolist() == [ANSWER_LEN] * 5
    assert not batch.target_mask[:, :s].any()
    assert paired.seq_len(1) >= batch.inputs.shape[1]
    assert paired.eval_splits == ("test", "test_forms", "test_years")


def test_the_paired_model_is_the_encoder_decoder_on_the_split_row():
    model = paired_model()
    batch = PairedBatches(TASK).sample(4, 1, 5)
    s = batch.inputs.shape[1] - ANSWER_LEN
    logits = model(batch.inputs).logits  # (B, S + A, V)
    plain = EncoderDecoder.forward(
        model, batch.inputs[:, :s], batch.inputs[:, s:]
    ).logits
    torch.testing.assert_close(logits[:, s:], plain)
    assert (logits[:, :s] == 0).all()
    # the same weights under the same names: a plain model round-trips
    again = PairedEncoderDecoder.from_model(
        EncoderDecoder(model.config), ANSWER_LEN
    )
    assert again.state_dict().keys() == model.state_dict().keys()


def test_teacher_forced_exact_match_is_greedy_exact_match():
    model = paired_model(1)
    src, _ = TASK.seq2seq(8, 1, 6)
    start = torch.full((8, 1), TASK.bos_id)
    greedy = generate(model, start, ANSWER_LEN, src=src, greedy=True)
    answer = greedy[:, 1:].clone()  # (B, A): what greedy decoding writes
    answer[::2, 4] = (answer[::2, 4] + 1) % TASK.vocab_size  # every other
    tgt_in = torch.cat([start, answer[:, :-1]], 1)
    logits = model(torch.cat([src, tgt_in], 1)).logits[:, src.shape[1] :]
    exact = (logits.argmax(-1) == answer).all(1)
    assert exact.tolist() == [False, True] * 4


def test_evaluate_reads_the_split_it_is_given():
    model, config = paired_model(), TrainConfig(batch_size=4, eval_batches=1)
    rows = {
        split: evaluate(model, PairedBatches(TASK), 1, config, "cpu", split=s)
        for split, s in (("a", "test_years"), ("b", "test_years"))
    }
    assert rows["a"] == rows["b"]
    other = evaluate(
        model, PairedBatches(TASK), 1, config, "cpu", split="test_forms"
    )
    assert other["loss"] != rows["a"]["loss"]


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_train_dates_through_the_command_line(tmp_path, capsys, arch):
    out = tmp_path / "runs"
    argv = ["train", "--task", "dates", "--arch", arch, "--train-length"]
    argv += ["1", "--out", str(out), "--no-progress", *TINY]
    assert main(argv) == 0
    (folder,) = out.iterdir()
    printed = capsys.readouterr().out
    assert "completed" in printed and "test_forms: " in printed
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "completed"
    assert set(report["splits"]) == {"test", "test_forms", "test_years"}
    for row in report["splits"].values():
        lo, hi = row["exact_match_lo"], row["exact_match_hi"]
        assert 0 <= lo <= row["exact_match"] <= hi <= 1
        assert row["n_sequences"] == 8
    assert "| split test_years |" in (folder / "report.md").read_text()
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["model"]["arch"] == arch
    model = load_model(folder / "model.pt")
    if arch == "encoder-decoder":  # model.pt holds a plain EncoderDecoder
        assert type(model) is EncoderDecoder
        assert config["model"]["pad_id"] == TASK.pad_id
    # the report redraws from the folder
    assert main(["report", str(folder)]) == 0
    again = json.loads((folder / "report.json").read_text())
    assert again["splits"] == report["splits"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--task", "sort", "--arch", "encoder-decoder"], "such as 'dates'"),
        (["--arch", "encoder", "--train-length", "1"], "'encoder-decoder'"),
        (["--arch", "encoder-decoder"], "one size: length 1, not 8"),
        (
            ["--train-length", "1", "--task-kwargs", '{"split_forms": 15}'],
            "some, not all, of the FORMS",
        ),
    ],
)
def test_bad_date_runs_exit_2_and_write_nothing(
    tmp_path, capsys, extra, message
):
    out = tmp_path / "runs"
    argv = ["train", "--task", "dates", *extra, "--out", str(out), *TINY]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


# --- the stored runs of chapter 4b ---------------------------------------


def stored(name):
    from annotated.lab import read_csv

    return read_csv(DATA / name)


def test_the_stored_runs_hold_three_seeds_with_right_intervals():
    from annotated.analysis.intervals import wilson_interval

    rows = stored("dates_summary.csv")
    assert {(int(r["seed"]), r["split"]) for r in rows} == {
        (s, split) for s in (0, 1, 2) for split in TASK.eval_splits
    }
    for r in rows:
        lo, hi = wilson_interval(int(r["correct"]), int(r["n"]))
        assert float(r["lo"]) == pytest.approx(lo)
        assert float(r["hi"]) == pytest.approx(hi)
        assert int(r["correct"]) / int(r["n"]) == pytest.approx(
            float(r["exact_match"])
        )
    beams = stored("dates_beam.csv")
    assert {int(r["width"]) for r in beams} == {1, 2, 4}
    assert len(beams) == 3 * 3 * 3
    assert all(int(r["likelier"]) == 0 for r in beams if r["width"] == 1)


def test_the_provenance_names_the_scripts_recipe():
    script = load_script("train_dates")
    provenance = yaml.safe_load((DATA / "dates_provenance.yaml").read_text())
    model_config, train_config = script.recipe(TASK, 0)
    assert provenance["model"] == model_config.to_dict()
    expected = train_config.to_dict() | {"seed": "0, 1, 2"}
    assert provenance["train"] == expected
    model = load_model(DATA / "dates_model.pt")
    assert model.config == model_config


@pytest.mark.slow
def test_a_slice_of_the_stored_run_retrains_alike():
    from annotated.training.loop import train

    script = load_script("train_dates")
    model_config, train_config = script.recipe(TASK, 0)
    train_config.stop_after = 100
    torch.manual_seed(0)
    model = PairedEncoderDecoder(model_config, ANSWER_LEN)
    history = train(
        model, PairedBatches(TASK), train_length=1, config=train_config
    )
    curve = {
        int(r["step"]): float(r["loss"])
        for r in stored("dates_curves.csv")
        if r["seed"] == 0
    }
    assert history.steps[-1]["step"] == 100
    assert history.steps[-1]["loss"] == pytest.approx(curve[100], rel=0.2)
