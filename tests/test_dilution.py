"""annotated.analysis.dilution on the stored coupled-addition model:
teacher-forced exact match is greedy decoding's, and the attention roles
partition every answer query's weight."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import annotated
from annotated.analysis.dilution import (
    ROLES,
    exact_match_count,
    role_mass,
)
from annotated.models.logit_scale import set_logit_scale
from annotated.models.transformer import load_model
from annotated.tasks import get_task

DATA = Path(annotated.__file__).parent / "data"
TASK = get_task("addition_coupled")


@pytest.fixture(scope="module")
def model():
    return load_model(DATA / "addition_coupled.pt").eval()


@torch.no_grad()
def greedy_exact(model, n: int, problems: int, seed: int) -> int:
    """Decode each answer token by token from the prompt (no cache, no
    teacher forcing) and count the answers written exactly."""
    batch = TASK.sample(
        problems, n, torch.Generator().manual_seed(seed), split="val"
    )
    queries = batch.target_mask[0].nonzero().flatten().tolist()
    x = batch.inputs[:, : queries[0] + 1]
    written = []
    for q in queries:
        logits = model(x, positions=batch.positions[:, : x.shape[1]]).logits
        token = logits[:, -1].argmax(-1)  # (B,)
        written.append(token)
        if q + 1 < batch.inputs.shape[1]:
            x = torch.cat([x, token[:, None]], dim=1)
    written = torch.stack(written, dim=1)  # (B, answer tokens)
    truth = batch.targets[:, queries]
    return int((written == truth).all(-1).sum())


@pytest.mark.parametrize("scale", [1.0, 0.25, 3.0])
def test_teacher_forced_exact_match_is_greedy_decodings(model, scale):
    """Also with the logits rescaled, so that some answers go wrong and the
    two counts are compared where they could differ."""
    set_logit_scale(model, scale)
    try:
        for n in (3, 12):
            forced = exact_match_count(model, TASK, n, 24, seed=5)
            assert forced == greedy_exact(model, n, 24, seed=5), (n, scale)
    finally:
        set_logit_scale(model, 1.0)


def test_a_sharper_or_blurred_softmax_costs_answers_at_short_lengths(model):
    """The rescaled models above are a test of anything only if some of
    their answers are wrong."""
    set_logit_scale(model, 0.25)
    try:
        assert exact_match_count(model, TASK, 12, 24, seed=5) < 24
    finally:
        set_logit_scale(model, 1.0)
    assert exact_match_count(model, TASK, 12, 24, seed=5) == 24


def test_the_roles_partition_each_answer_querys_weight(model):
    mass = role_mass(model, TASK, 8, 3, seed=0)
    assert mass.shape == (model.config.n_heads, len(ROLES))
    torch.testing.assert_close(
        mass.sum(1), torch.ones(model.config.n_heads), atol=1e-5, rtol=0
    )


def test_the_digit_head_reads_its_digits_at_ten_digits(model):
    """Week 6b's finding: one head puts almost all of its weight on the
    operand digits of the significance being written."""
    mass = role_mass(model, TASK, 10, 2, seed=0)
    assert mass[:, ROLES.index("digit")].max() > 0.95


def test_exact_by_length_sums_chunks_per_setting_and_length():
    from annotated.analysis.dilution import exact_by_length

    rows = [
        {"scale": 1.0, "length": 100, "correct": 16, "problems": 16},
        {"scale": 1.0, "length": 10, "correct": 7, "problems": 8},
        {"scale": 1.0, "length": 100, "correct": 5, "problems": 16},
        {"scale": "log_ratio_beyond", "length": 100, "correct": 3,
         "problems": 4},
    ]  # fmt: skip
    assert exact_by_length(rows) == {
        "1.0": {10: (7, 8), 100: (21, 32)},
        "log_ratio_beyond": {100: (3, 4)},
    }
    assert list(exact_by_length(rows)["1.0"]) == [10, 100]
    for i, row in enumerate(rows):
        row["model"] = "b" if i == 2 else "a"
    assert exact_by_length(rows, "b") == {"1.0": {100: (5, 16)}}
    assert exact_by_length(rows, "a")["1.0"] == {10: (7, 8), 100: (16, 16)}


def test_the_stored_long_additions_count_128_problems_from_1000_digits():
    """The long evaluations of week 6b: every setting reported at 1,000 or
    2,000 digits holds 128 problems, each chunk drawn with its own seed."""
    from annotated.analysis.dilution import exact_by_length
    from annotated.lab.tables import read_csv

    rows = read_csv(DATA / "addition_long_exact.csv")
    for setting, by_n in exact_by_length(rows).items():
        for n, (_, problems) in by_n.items():
            if n in (1000, 2000):
                assert problems == 128, (setting, n, problems)
    keys = [(str(r["scale"]), r["length"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_the_stored_seed_evaluations_are_complete_and_distinct():
    """Week 6b's three seeds: every model and setting it reads holds 128
    problems at each length up to 1,000 digits and at least 32 at 2,000;
    no chunk is stored twice; each model has its 700-digit selection."""
    from annotated.analysis.dilution import exact_by_length
    from annotated.lab.tables import read_csv

    rows = read_csv(DATA / "addition_seeds_exact.csv")
    needed = {
        f"length_addition_coupled-seed={s}": ("1.0", "log_beyond:0.1", "1.4")
        for s in (1, 2)
    } | {f"length_addition_logn-seed={s}": ("1.0",) for s in range(3)}
    for model, settings in needed.items():
        by_setting = exact_by_length(rows, model)
        for setting in settings:
            by_n = by_setting[setting]
            assert by_n[1000][1] == 128 and by_n[2000][1] >= 32, (model, setting)
            if setting != "1.4":
                assert all(by_n[n][1] == 128 for n in (10, 100, 200, 500))
    keys = [(r["model"], str(r["scale"]), r["length"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys))
    chosen = read_csv(DATA / "addition_select_loss.csv")
    for model in ("addition_coupled", *list(needed)[:2]):
        assert any(r["model"] == model and str(r["scale"]) == "log_beyond:0.1"
                   for r in chosen)  # fmt: skip
