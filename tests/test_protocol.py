"""The experiment protocol: intervals, length ranges, randomized positions at train and test time,
the stop rule, and what a stopped run hands to its checkpoint."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from annotated.analysis.intervals import (
    format_interval,
    t_interval,
    wilson_interval,
)
from annotated.lab.tables import group_statistics
from annotated.models.transformer import ModelOutput
from annotated.positional.absolute import LearnedAbsoluteEncoding
from annotated.positional.randomized import (
    RandomizedPositions,
    sample_sorted_positions,
)
from annotated.tasks import get_task
from annotated.tasks.base import Batch
from annotated.training.config import TrainConfig
from annotated.training.evaluation import (
    batch_positions,
    evaluate,
    expand_lengths,
)
from annotated.training.loop import TrainingDiverged, train
from tests.conftest import tiny_model

COPY = get_task("copy")


# --- intervals --------------------------------------------------------------------------------


def test_wilson_interval_matches_hand_computed_values():
    # 0 of 10: the upper end is z²/(n+z²) = 3.8415/13.8415
    assert wilson_interval(0, 10) == pytest.approx(
        (0.0, 3.841459 / 13.841459), abs=1e-6
    )
    # 8 of 10 (Newcombe 1998's table: 0.4902, 0.9433)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    lo, hi = wilson_interval(500, 1000)
    assert (lo + hi) / 2 == pytest.approx(0.5) and hi - lo == pytest.approx(
        2 * 1.96 * math.sqrt(0.25 / 1000), rel=0.01
    )
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


def test_t_interval_matches_hand_computed_values():
    mean, lo, hi = t_interval([1.0, 2.0, 3.0])  # sd 1, t_0.975(2) = 4.302653
    assert (mean, lo, hi) == pytest.approx(
        (2.0, 2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)),
        abs=1e-5,
    )
    assert (
        t_interval([0.88, 0.99, 0.98], bounds=(0, 1))[2]
        == 1.0
        < t_interval([0.88, 0.99, 0.98])[2]
    )
    mean, lo, hi = t_interval([0.5])
    assert (
        mean == 0.5 and math.isnan(lo) and math.isnan(hi)
    )  # one seed: no interval, not a zero-width one
    assert (
        format_interval(0.5, lo, hi) == "0.50"
        and format_interval(0.5, 0.4, 0.6) == "0.50 [0.40, 0.60]"
    )


def test_group_rows_carry_t_intervals_and_learned_counts():
    rows = [{"kind": "run", "run": f"r{s}", "status": "completed", "pe": "rope", "seed": s, "acc": a, "learned": ln}
            for s, a, ln in ((0, 1.0, 1), (1, 2.0, 1), (2, 3.0, 0))]  # fmt: skip
    (group,) = group_statistics(rows, ["pe", "seed"])
    assert group["acc"] == 2.0 and group["acc_std"] == pytest.approx(1.0)
    assert (group["acc_ci_lo"], group["acc_ci_hi"]) == pytest.approx(
        t_interval([1, 2, 3])[1:]
    )
    (one,) = group_statistics(rows[:1], ["pe", "seed"])
    assert (
        one["acc"] == 1.0
        and one["acc_ci_lo"] is None
        and one["learned"] == "1/1"
    )
    assert group["learned"] == "2/3"


def test_evaluation_rows_carry_wilson_intervals():
    model = tiny_model(vocab_size=COPY.vocab_size)
    row = evaluate(
        model,
        COPY,
        3,
        TrainConfig(batch_size=8, eval_batches=2),
        torch.device("cpu"),
    )
    assert row["n_sequences"] == 16
    k = round(row["exact_match"] * 16)
    assert (row["exact_match_lo"], row["exact_match_hi"]) == pytest.approx(
        wilson_interval(k, 16)
    )
    assert (
        row["token_accuracy_lo"]
        <= row["token_accuracy"]
        <= row["token_accuracy_hi"]
    )


# --- lengths ----------------------------------------------------------------------------------


def test_length_ranges_expand_to_every_length():
    assert expand_lengths("1..5") == [1, 2, 3, 4, 5]
    assert expand_lengths(["2..8:3", 20, 5]) == [2, 5, 8, 20]
    assert expand_lengths([4, 2]) == [2, 4]
    for bad in ("5..1", "0..4", "1-4", "1..4:0", [0], [2.5], 3):
        with pytest.raises(ValueError, match="LOW..HIGH|positive integers"):
            expand_lengths(bad)


# --- randomized positions ---------------------------------------------------------------------


def test_sorted_random_positions_are_distinct_sorted_and_in_range():
    positions = sample_sorted_positions(
        64, 10, 40, torch.Generator().manual_seed(0)
    )
    assert (
        positions.shape == (64, 10)
        and positions.min() >= 0
        and positions.max() < 40
    )
    assert (
        positions.diff(dim=1) > 0
    ).all()  # sorted and distinct within each row
    assert (
        len({tuple(p.tolist()) for p in positions}) > 60
    )  # each row its own draw
    with pytest.raises(ValueError, match="cannot draw 11 distinct positions"):
        sample_sorted_positions(1, 11, 10)


@pytest.mark.parametrize("positional", ["rope", "alibi", "t5", "nope"])
def test_relative_encodings_only_see_position_differences(positional):
    # the decoder really uses given positions: a relative encoding is blind to a common shift …
    model = tiny_model(
        vocab_size=COPY.vocab_size, positional=positional, max_len=64
    ).eval()
    ids = torch.randint(
        0,
        COPY.vocab_size - 1,
        (2, 7),
        generator=torch.Generator().manual_seed(0),
    )
    base = torch.tensor([[0, 2, 3, 7, 8, 9, 20], [1, 4, 5, 6, 10, 30, 31]])
    a, b = (
        model(ids, positions=base).logits,
        model(ids, positions=base + 17).logits,
    )
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    if positional != "nope":  # … but not to the gaps between positions
        assert not torch.allclose(a, model(ids).logits, atol=1e-4)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_absolute_encodings_see_a_shift(positional):
    model = tiny_model(
        vocab_size=COPY.vocab_size, positional=positional, max_len=64
    ).eval()
    ids = torch.randint(
        0,
        COPY.vocab_size - 1,
        (1, 5),
        generator=torch.Generator().manual_seed(0),
    )
    pos = torch.arange(5)[None]
    assert not torch.allclose(
        model(ids, positions=pos).logits,
        model(ids, positions=pos + 9).logits,
        atol=1e-4,
    )


def test_learned_table_must_hold_every_drawn_position():
    with pytest.raises(ValueError, match="set max_len ≥ 64"):
        RandomizedPositions(8, 64, inner=LearnedAbsoluteEncoding(32, 8))


def test_evaluation_draws_random_positions_from_a_seeded_stream():
    model = tiny_model(
        vocab_size=COPY.vocab_size, positional="randomized", max_len=16
    )  # draws from range(64)
    batch = COPY.sample(4, 3, 0)
    one = batch_positions(model, batch, torch.Generator().manual_seed(5))[
        "positions"
    ]
    two = batch_positions(model, batch, torch.Generator().manual_seed(5))[
        "positions"
    ]
    assert torch.equal(one, two) and not torch.equal(
        one[0], torch.arange(one.shape[1])
    )
    config, cpu = (
        TrainConfig(batch_size=8, eval_batches=2),
        torch.device("cpu"),
    )
    assert evaluate(model, COPY, 3, config, cpu) == evaluate(
        model, COPY, 3, config, cpu
    )  # stored numbers reproduce
    # a task's own position ids win over a random draw
    own = Batch(
        batch.inputs,
        batch.targets,
        batch.target_mask,
        torch.arange(batch.inputs.shape[1]).expand(4, -1),
    )
    assert (
        batch_positions(model, own, torch.Generator())["positions"]
        is own.positions
    )
    assert (
        batch_positions(
            tiny_model(vocab_size=COPY.vocab_size), batch, torch.Generator()
        )
        == {}
    )


def test_a_randomized_model_scores_on_held_out_data_as_it_trained():
    """The protocol bug this fixes: trained on sorted random positions from range(32), a model
    tested at 0…T−1 meets position gaps it never saw. Tested as it was trained (random draws from
    a seeded stream), its held-out loss at the training length is its training loss."""
    torch.manual_seed(0)
    # positions drawn from range(32)
    model = tiny_model(vocab_size=COPY.vocab_size, positional="randomized", max_len=8,
                       d_model=32, n_heads=4)  # fmt: skip
    config = TrainConfig(
        steps=300,
        batch_size=32,
        lr=3e-3,
        warmup_steps=20,
        eval_batches=4,
        log_every=10,
    )
    history = train(model, COPY, train_length=4, config=config)
    train_loss = sum(r["loss"] for r in history.steps[-5:]) / 5
    held_out = history.final_evals()[4]
    assert held_out["loss"] < train_loss + 0.1
    # the old protocol: evaluate at positions 0…T−1
    model.decoder.positional.max_positions = 0
    plain = evaluate(model, COPY, 4, config, torch.device("cpu"))
    assert plain["loss"] > held_out["loss"] + 0.5


# --- the stop rule and stopped runs -----------------------------------------------------------


def test_stop_rule_records_when_a_run_learned_and_when_it_did_not():
    torch.manual_seed(0)
    config = TrainConfig(steps=300, batch_size=32, lr=3e-3, warmup_steps=20, eval_every=25, eval_batches=2,
                         stop_accuracy=0.9, stop_patience=2, log_every=25)  # fmt: skip
    history = train(tiny_model(vocab_size=COPY.vocab_size, d_model=32), COPY, train_length=2, eval_lengths=[4],
                    config=config)  # fmt: skip
    learned_at = history.meta["steps_to_learn"]
    assert (
        history.meta["learned"]
        and learned_at < 300
        and history.meta["steps_done"] == learned_at
    )
    during = [r for r in history.evals if r["step"] < learned_at]
    assert during and {r["length"] for r in during} == {
        2
    }  # the rule reads the training lengths only …
    assert set(history.final_evals()) == {
        2,
        4,
    }  # … every length is evaluated once it stops
    streak = [
        r
        for r in history.evals
        if r["step"] in (learned_at - 25, learned_at) and r["length"] == 2
    ]
    assert len(streak) == 2 and all(r["exact_match"] >= 0.9 for r in streak)
    never = train(tiny_model(vocab_size=COPY.vocab_size, d_model=32), COPY, train_length=2,
                  config=TrainConfig(steps=20, batch_size=8, warmup_steps=2, eval_every=10, eval_batches=1,
                                     stop_accuracy=1.0, stop_patience=5))  # fmt: skip
    assert (
        never.meta["learned"] is False
        and "steps_to_learn" not in never.meta
        and never.meta["steps_done"] == 20
    )


def test_min_steps_trains_on_after_the_rule_is_met():
    torch.manual_seed(0)
    config = TrainConfig(steps=300, batch_size=32, lr=3e-3, warmup_steps=20, eval_every=25, eval_batches=2,
                         stop_accuracy=0.9, stop_patience=2, log_every=25, min_steps=250)  # fmt: skip
    history = train(tiny_model(vocab_size=COPY.vocab_size, d_model=32), COPY, train_length=2, eval_lengths=[4],
                    config=config)  # fmt: skip
    learned_at = history.meta[
        "steps_to_learn"
    ]  # the same seed learns before step 250 without min_steps (above)
    assert (
        history.meta["learned"]
        and learned_at < 250 <= history.meta["steps_done"] < 300
    )
    assert history.meta["steps_done"] % 25 == 0 and set(
        history.final_evals()
    ) == {2, 4}
    with pytest.raises(ValueError, match="min_steps=400 exceeds steps=300"):
        TrainConfig(steps=300, min_steps=400)


def test_stop_rule_needs_evaluations():
    with pytest.raises(ValueError, match="set eval_every > 0"):
        TrainConfig(stop_accuracy=0.95)


class PoisonAt(torch.nn.Module):
    def __init__(self, model, k):
        super().__init__()
        self.model, self.k, self.calls = model, k, 0

    def forward(self, idx, **kwargs):
        out = self.model(idx, **kwargs)
        self.calls += self.training
        return (
            ModelOutput(out.logits * float("nan"), out.attentions)
            if self.calls == self.k
            else out
        )


def test_a_diverged_run_hands_its_last_snapshot_to_the_checkpoint():
    saved = []
    model = PoisonAt(tiny_model(vocab_size=COPY.vocab_size), k=7)
    config = TrainConfig(
        steps=20, batch_size=8, warmup_steps=0, log_every=5, snapshot_every=4
    )
    with pytest.raises(
        TrainingDiverged,
        match="diverged at step 7: the loss is nan.*weights of step 4",
    ) as caught:
        train(
            model,
            COPY,
            train_length=3,
            config=config,
            checkpoint=lambda s: saved.append(copy.deepcopy(s)),
        )
    assert (
        caught.value.step == 7
        and [s["step"] for s in saved] == [4]
        and saved[0]["status"] == "diverged"
    )
    for name, value in model.model.state_dict().items():
        torch.testing.assert_close(
            value, saved[0]["model"][f"model.{name}"], rtol=0, atol=0
        )


# --- per-point overrides in a sweep -----------------------------------------------------------


def test_overrides_set_fields_for_matching_grid_points_only():
    from annotated.lab import ExperimentConfig, expand_grid

    config = ExperimentConfig.from_dict({
        "name": "o", "task": "copy", "train_length": [1, 4], "eval_lengths": "1..8",
        "grid": {"model.positional": ["learned", "rope"], "seed": [0, 1]},
        "overrides": [{"when": {"model.positional": "learned"}, "set": {"model.max_len": 40, "train.lr": 0.01}}],
    })  # fmt: skip
    assert config.eval_lengths == list(range(1, 9))
    points = {(p.model["positional"], p.seed): p for p in expand_grid(config)}
    assert len(points) == 4
    assert (
        points["learned", 1].model["max_len"] == 40
        and points["learned", 0].train["lr"] == 0.01
    )
    assert (
        "max_len" not in points["rope", 0].model
        and "lr" not in points["rope", 1].train
    )
    for bad, words in (
        ({"when": {}}, "'when' and 'set'"),
        ({"when": {"colour": 1}, "set": {}}, "override key 'colour'"),
    ):
        with pytest.raises(ValueError, match=words):
            expand_grid(
                ExperimentConfig.from_dict(
                    {"grid": {"seed": [0]}, "overrides": [bad]}
                )
            )
