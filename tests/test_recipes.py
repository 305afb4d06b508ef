"""annotated.analysis.recipes: when a curve reaches a loss, and the table
built from curves, on hand-made curves."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from annotated.analysis.recipes import (  # noqa: E402
    BASELINE,
    RECIPES,
    reach,
    recipe_rows,
    time_figure,
)

# (step, validation loss, training seconds)
CURVE = [(250, 2.4, 10.0), (500, 2.0, 20.0), (750, 1.8, 30.0)]


def test_reach_interpolates_between_evaluations():
    assert reach(CURVE, 2.2) == pytest.approx((375.0, 15.0))
    assert reach(CURVE, 1.8) == (750.0, 30.0)
    assert reach(CURVE, 1.9) == pytest.approx((625.0, 25.0))


def test_reach_at_the_first_evaluation_and_never():
    assert reach(CURVE, 3.0) == (250.0, 10.0)
    assert reach(CURVE, 1.0) == (math.inf, math.inf)


def test_recipe_rows_measure_against_the_baselines_mean_final_loss():
    curves = {
        BASELINE: {0: [(10, 2.0, 1.0), (20, 1.9, 2.0)],
                   1: [(10, 2.0, 1.0), (20, 2.1, 2.0)]},
        "fast": {0: [(10, 1.9, 3.0), (20, 1.5, 6.0)],
                 1: [(10, 2.1, 3.0), (20, 1.7, 6.0)]},
    }  # fmt: skip
    rows = {
        r["recipe"]: r
        for r in recipe_rows(curves, {BASELINE: 10, "fast": 12})
    }
    base, fast = rows[BASELINE], rows["fast"]
    assert base["val"] == pytest.approx(2.0)
    # the baseline's final loss is the target: reached at its last step
    assert base["steps_to_target"] == pytest.approx(20.0)
    assert base["seconds_to_target"] == pytest.approx(2.0)
    # fast: seed 0 at step 10 (3 s); seed 1 a quarter of the way from
    # step 10 to 20 (2.1 → 1.7): step 12.5, 3.75 s
    assert fast["steps_to_target"] == pytest.approx(11.25)
    assert fast["seconds_to_target"] == pytest.approx(3.375)
    assert fast["ms_per_step"] == pytest.approx(300.0)
    assert fast["val_lo"] < 1.6 < fast["val_hi"] and fast["parameters"] == 12


def test_time_figure_draws_one_curve_per_recipe():
    curves = {BASELINE: {0: CURVE}, "other": {0: CURVE, 1: CURVE}}
    fig, ax = plt.subplots()
    time_figure(curves, [BASELINE, "other"], ax)
    assert [line.get_label() for line in ax.lines[:2]] == [BASELINE, "other"]
    assert list(ax.lines[1].get_xdata()) == [10.0, 20.0, 30.0]
    plt.close(fig)


def test_every_recipe_names_a_shipped_sweep_and_its_grid_values():
    from annotated.lab import ExperimentConfig, expand_grid, find_config

    points = {}
    for sweep in {s for s, _ in RECIPES.values()}:
        config = ExperimentConfig.from_file(find_config(sweep))
        points[sweep] = expand_grid(config)
    for label, (sweep, values) in RECIPES.items():
        matching = [
            p for p in points[sweep]
            if all(
                (getattr(p, k) if "." not in k
                 else getattr(p, k.split(".")[0])[k.split(".")[1]]) == v
                for k, v in values.items()
            )
        ]  # fmt: skip
        assert len(matching) == 3, (label, len(matching))  # three seeds


def test_a_measured_step_cost_turns_steps_into_seconds():
    curves = {BASELINE: {0: CURVE}, "other": {0: CURVE}}
    rows = {
        r["recipe"]: r
        for r in recipe_rows(
            curves, {BASELINE: 1, "other": 1}, {BASELINE: 40.0, "other": 80.0}
        )
    }
    # both reach 1.8 at step 750 (the baseline by definition, at its last
    # step): 30 s at 40 ms a step, 60 s at 80
    assert rows[BASELINE]["seconds_to_target"] == pytest.approx(30.0)
    assert rows["other"]["seconds_to_target"] == pytest.approx(60.0)
    assert rows["other"]["ms_per_step"] == 80.0
    fig, ax = plt.subplots()
    time_figure(curves, ["other"], ax, step_ms={"other": 80.0})
    assert list(ax.lines[0].get_xdata()) == [20.0, 40.0, 60.0]
    plt.close(fig)
