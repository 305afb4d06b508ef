"""The stored modern-recipe sweep (annotated/data/modern_recipe_*): it is
the shipped config's sweep, complete and clean; its curves agree with its
summary; and the numbers the project reports from it hold.

nanoGPT's block (LayerNorm, GELU, learned positions, tied head) against the
modern block (RMSNorm, SwiGLU, RoPE, QK-norm, no bias, zero-initialised
residual outputs, untied head), each with AdamW and with Muon, 3 seeds, on
nanoGPT's CPU budget (2,000 steps of 12 × 64 characters).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

import annotated
from annotated.analysis.intervals import t_interval
from annotated.lab import ExperimentConfig
from annotated.lab.config import CONFIG_DIR
from annotated.lab.tables import read_csv

DATA = Path(annotated.__file__).parent / "data"
BASELINE = ("layernorm", "adamw")
MODERN = ("rmsnorm", "muon")


@pytest.fixture(scope="module")
def curves() -> dict:
    """(block, optimiser) → seed → [(step, val_loss, train_seconds)]."""
    runs = defaultdict(dict)
    for row in read_csv(DATA / "modern_recipe_curves.csv"):
        recipe = (row["model.norm_type"], row["train.optimizer"])
        runs[recipe].setdefault(int(row["seed"]), []).append(
            (int(row["step"]), row["val_loss"], row["train_seconds"])
        )
    return runs


def final(curves, recipe) -> list[float]:
    return [c[-1][1] for c in curves[recipe].values()]


def seconds_to(curve, target: float) -> float:
    """Training seconds until the validation loss first reaches ``target``,
    interpolated linearly between evaluations."""
    before = (0, float("inf"), 0.0)
    for step, loss, seconds in curve:
        if loss <= target:
            if before[1] == float("inf"):
                return seconds
            share = (before[1] - target) / (before[1] - loss)
            return before[2] + share * (seconds - before[2])
        before = (step, loss, seconds)
    return float("inf")


def test_the_stored_sweep_is_the_shipped_config_complete_and_clean():
    provenance = yaml.safe_load(
        (DATA / "modern_recipe_provenance.yaml").read_text()
    )
    (sweep,) = provenance["sweeps"]
    assert sweep["completed_runs"] == "12/12" and sweep["clean"]
    assert sweep["environment"]["threads"] == 1
    stored = ExperimentConfig.from_dict(sweep["config"])
    shipped = ExperimentConfig.from_file(CONFIG_DIR / "modern_recipe.yaml")
    assert stored.to_dict() == shipped.to_dict()


def test_the_curves_end_at_the_summary_losses(curves):
    summary = {
        r["run"]: r["loss@64"]
        for r in read_csv(DATA / "modern_recipe_summary.csv")
        if r["kind"] == "run"
    }
    ends = {
        row["run"]: row["val_loss"]
        for row in read_csv(DATA / "modern_recipe_curves.csv")
        if row["step"] == 2000
    }
    assert len(ends) == 12 and ends == pytest.approx(summary)
    for recipe in curves.values():
        for curve in recipe.values():
            steps = [s for s, _, _ in curve]
            assert steps == list(range(250, 2001, 250))
            times = [t for _, _, t in curve]
            assert times == sorted(times) and times[0] > 0


def test_the_baseline_reproduces_nanogpts_cpu_recipe(curves):
    mean, low, high = t_interval(final(curves, BASELINE))
    assert low <= 1.88 + 0.03 and high >= 1.88 - 0.03, (mean, low, high)


def test_the_modern_recipe_beats_it_by_a_wide_margin(curves):
    mean, low, high = t_interval(final(curves, MODERN))
    assert mean <= 1.62 and high <= 1.65, (mean, low, high)
    base = t_interval(final(curves, BASELINE))
    assert base[1] - high > 0.25  # the intervals are far apart


def test_the_modern_recipe_reaches_the_baselines_loss_in_a_third_of_its_time(
    curves,
):
    target = t_interval(final(curves, BASELINE))[0]
    baseline_seconds = [c[-1][2] for c in curves[BASELINE].values()]
    modern = [seconds_to(c, target) for c in curves[MODERN].values()]
    assert max(modern) <= sum(baseline_seconds) / 3 / 3, (
        modern,
        baseline_seconds,
    )


def test_the_ablation_sweep_is_the_shipped_config_complete_and_clean():
    provenance = yaml.safe_load(
        (DATA / "modern_ablation_provenance.yaml").read_text()
    )
    (sweep,) = provenance["sweeps"]
    assert sweep["completed_runs"] == "36/36" and sweep["clean"]
    assert sweep["environment"]["threads"] == 1
    stored = ExperimentConfig.from_dict(sweep["config"])
    shipped = ExperimentConfig.from_file(
        CONFIG_DIR / "modern_ablation.yaml"
    )
    assert stored.to_dict() == shipped.to_dict()


def test_the_two_sweeps_baselines_are_the_same_runs(curves):
    """modern_ablation's base and modern_recipe's nanoGPT + AdamW have one
    config: on one machine, one thread, their losses agree exactly."""
    ablation = defaultdict(list)
    for row in read_csv(DATA / "modern_ablation_curves.csv"):
        if row["variant"] == "base":
            ablation[int(row["seed"])].append(row["val_loss"])
    for seed, curve in curves[BASELINE].items():
        assert ablation[seed] == [loss for _, loss, _ in curve]


def test_the_step_costs_were_measured_on_a_clean_tree_for_every_recipe():
    from annotated.analysis.recipes import RECIPES, load_step_cost

    costs = load_step_cost()
    assert set(costs) == set(RECIPES)
    provenance = yaml.safe_load(
        (DATA / "modern_step_cost_provenance.yaml").read_text()
    )
    environment = provenance["environment"]
    assert not environment["git_dirty"] and environment["threads"] == 1
    for row in read_csv(DATA / "modern_step_cost.csv"):
        rounds = [v for k, v in row.items() if k.startswith("round_")]
        assert len(rounds) == 3
        # the median of its rounds, which agree within 10%
        assert row["ms_per_step"] == sorted(rounds)[1]
        assert max(rounds) / min(rounds) < 1.1, row
