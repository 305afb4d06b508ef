"""Scaling-law fits recover known laws; Kaplan's N counts what it should; the stored sweep is complete."""

import numpy as np
import pytest
import torch
from _scripts import ROOT
from conftest import tiny_model

from annotated.analysis.scaling import (
    EXTRA_SEEDS,
    WIDTHS,
    fit_power_law,
    fit_power_law_with_floor,
    non_embedding_parameters,
    sweep_points,
)
from annotated.lab import read_csv

N = np.geomspace(3e3, 4e5, 7)


def test_power_law_recovers_alpha_and_n_c():
    fit = fit_power_law(N, (8.8e13 / N) ** 0.076, bootstrap=0)
    assert fit.alpha == pytest.approx(
        0.076, rel=1e-9
    ) and fit.n_c == pytest.approx(8.8e13, rel=1e-6)
    assert fit.predict([1e4]) == pytest.approx((8.8e13 / 1e4) ** 0.076)


def test_power_law_with_floor_recovers_the_floor():
    fit = fit_power_law_with_floor(N, 1.5 + (2e4 / N) ** 0.5, bootstrap=0)
    assert fit.floor == pytest.approx(
        1.5, abs=2e-3
    ) and fit.alpha == pytest.approx(0.5, abs=0.01)
    assert fit.rmse < 1e-3


def test_bootstrap_interval_matches_the_least_squares_standard_error():
    rng = np.random.default_rng(0)
    n = np.repeat(N, 2)
    loss = (1e9 / n) ** 0.1 * np.exp(rng.normal(0, 0.01, len(n)))
    fit = fit_power_law(n, loss, bootstrap=500, seed=1)
    low, high = fit.alpha_interval
    x, y = np.log(n), np.log(loss)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    # textbook OLS
    se = np.sqrt(
        residual @ residual / (len(x) - 2) / ((x - x.mean()) @ (x - x.mean()))
    )
    assert fit.alpha == pytest.approx(-slope) and low < fit.alpha < high
    assert 0.5 < (high - low) / (2 * 1.96 * se) < 2.0


def test_fits_refuse_too_few_sizes_and_bad_values():
    with pytest.raises(ValueError, match="≥ 3 different sizes"):
        fit_power_law([10, 10, 20], [3.0, 3.1, 2.9])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([10, 20, 30], [3.0, -1.0, 2.0])


def test_non_embedding_parameters_leave_out_the_token_table_only():
    tied = tiny_model(vocab_size=11)
    d = tied.config.d_model
    # attention, 2 norms, MLP
    per_layer = (
        4 * (d * d + d) + 2 * 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d)
    )
    # + the final norm; RoPE has no parameters
    assert non_embedding_parameters(tied) == 2 * per_layer + 2 * d
    untied = tiny_model(vocab_size=11, tie_weights=False)
    # the head counts
    assert (
        non_embedding_parameters(untied)
        == non_embedding_parameters(tied) + 11 * d
    )
    learned = tiny_model(vocab_size=11, positional="learned")
    # position table left out too
    assert non_embedding_parameters(learned) == non_embedding_parameters(tied)
    assert isinstance(learned.decoder.positional, torch.nn.Module)


def test_stored_sweep_has_every_point_and_spans_30x():
    rows = read_csv(ROOT / "annotated" / "data" / "scaling_runs.csv")
    assert [(r["d_model"], r["seed"]) for r in rows] == sweep_points()
    n = [r["non_embedding_params"] for r in rows]
    assert max(n) / min(n) >= 30 and len(WIDTHS) >= 5
    assert all(
        len([r for r in rows if r["d_model"] == d])
        == 1 + len(EXTRA_SEEDS.get(d, ()))
        for d in WIDTHS
    )
    assert all(1.0 < r["val_loss"] < 4.2 for r in rows)
