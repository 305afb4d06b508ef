"""annotated.analysis.stored_sweeps: the chapters' reader of the stored protocol sweeps."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from annotated.analysis.claims import out_of_distribution  # noqa: E402
from annotated.analysis.stored_sweeps import (
    StoredSweeps,
    interval_text,
    spans,
)  # noqa: E402


@pytest.fixture(scope="module")
def sweeps():
    return StoredSweeps()


def test_spans_and_intervals_read_as_written():
    assert spans([1, 2, 3, 5, 10, 11]) == "1..3, 5, 10..11"
    assert spans([7]) == "7"
    assert interval_text([]) == "none yet"
    assert interval_text([0.5]) == "0.50 (1 seed)"
    assert interval_text([1.0, 1.0, 1.0]) == "1.00 [1.00, 1.00]"
    # t(2) = 4.303, sd 0.2: 0.4 ± 0.497, clipped
    assert interval_text([0.2, 0.4, 0.6]) == "0.40 [0.00, 0.90]"


def test_completed_runs_match_the_provenance(sweeps):
    for task, sweep in sweeps.sweeps.items():
        done, total = map(int, sweep["completed_runs"].split("/"))
        assert len(sweeps.completed(task)) == done <= total
        assert sweeps.lengths(task)[-1] > sweeps.train_high(task)


def test_per_seed_is_the_claims_definition_of_ood(sweeps):
    rows = [r for r in sweeps.rows if r["task"] == "sort"]
    assert sweeps.per_seed("sort") == out_of_distribution(rows)
    by_hand = [
        sum(r[f"exact_match@{n}"] for n in range(9, 17)) / 8
        for r in sweeps.completed("sort", "sinusoidal")
    ]
    assert sweeps.per_seed("sort")["sinusoidal"] == pytest.approx(by_hand)


def test_table_and_lengths_name_every_encoding_and_fit_the_column(sweeps):
    text = sweeps.table("sort", ["sinusoidal", "randomized", "absent"])
    assert (
        "sinusoidal" in text
        and "randomized" in text
        and "absent" in text
        and "none yet" in text
    )
    assert "OOD 9..16" in text
    lines = sweeps.at_lengths(
        "sort", ["randomized", "absent"], (8, 12)
    ).splitlines()
    assert any("n=12" in line for line in lines) and any(
        "no completed run" in line for line in lines
    )
    wide = sweeps.at_lengths(
        "addition_coupled", ["coupled_bias"], (200,)
    ).splitlines()  # the longest name and n
    wide += sweeps.table("addition_coupled", ["coupled_bias"]).splitlines()
    assert max(len(line) for line in text.splitlines() + lines + wide) <= 78


def test_plot_draws_one_line_per_encoding_with_runs(sweeps):
    fig, ax = plt.subplots()
    sweeps.plot(ax, "sort", ["sinusoidal", "randomized", "absent"], "sort")
    # two encodings and the training-length line
    assert len(ax.get_lines()) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "sinusoidal (3 seeds)",
        "randomized (3 seeds)",
    ]
    plt.close(fig)


def test_the_stopped_addition_sweep_is_the_shipped_config_without_min_steps():
    """length_addition_stopped_*: the coupled-addition sweep as first run, ended by the stop rule."""
    from annotated import lab
    from annotated.lab.config import CONFIG_DIR

    stopped = StoredSweeps("length_addition_stopped_")
    (sweep,) = stopped.sweeps.values()
    shipped = lab.ExperimentConfig.from_file(
        CONFIG_DIR / "length_addition_coupled.yaml"
    ).to_dict()
    assert shipped["train"].pop("min_steps") == shipped["train"]["steps"]
    # it was tested to 100 digits
    shipped["eval_lengths"] = [n for n in shipped["eval_lengths"] if n <= 100]
    ran = lab.ExperimentConfig.from_dict(sweep["config"]).to_dict()
    # the same sweep in every other setting
    assert ran.pop("train") == shipped.pop("train") and ran == shipped
    runs = stopped.completed("addition_coupled")
    assert len(runs) == 3 and all(
        r["learned"] and r["steps_to_learn"] < 6000 for r in runs
    )
