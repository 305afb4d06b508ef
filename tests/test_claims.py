"""The claims table: OOD numbers read from a summary.csv, and the fixed verdict rules."""

from __future__ import annotations

import pytest

from annotated.analysis.claims import (
    Claim,
    claims_table,
    judge,
    out_of_distribution,
)
from annotated.analysis.intervals import t_interval
from annotated.lab.tables import write_csv


def summary(tmp_path, runs):
    rows = []
    for encoding, seed, curve in runs:  # curve: {n: exact match}
        row = {"kind": "run", "run": f"{encoding}-{seed}", "status": "completed", "model.positional": encoding,
               "seed": seed, "train_length": "[1, 2]"}  # fmt: skip
        rows.append(row | {f"exact_match@{n}": v for n, v in curve.items()})
    rows.append(
        {
            "kind": "group",
            "run": "",
            "status": "2/2 completed",
            "model.positional": "nope",
            "seed": "*",
        }
    )
    write_csv(tmp_path / "summary.csv", rows)
    return tmp_path / "summary.csv"


def test_out_of_distribution_averages_the_lengths_beyond_training(tmp_path):
    path = summary(tmp_path, [("nope", 0, {1: 1.0, 2: 1.0, 3: 0.5, 4: 0.3}), ("nope", 1, {1: 1.0, 2: 0.9, 3: 0.7, 4: 0.1}),
                              ("alibi", 0, {1: 1.0, 2: 1.0, 3: 0.0, 4: 0.0})])  # fmt: skip
    assert out_of_distribution(path) == {
        "nope": [pytest.approx(0.4), pytest.approx(0.4)],
        "alibi": [0.0],
    }
    assert out_of_distribution(path, beyond=3) == {
        "nope": [0.3, 0.1],
        "alibi": [0.0],
    }
    assert out_of_distribution(path, beyond=1, upto=2) == {
        "nope": [1.0, 0.9],
        "alibi": [1.0],
    }


def test_value_claims_follow_the_stated_rule():
    claim = Claim("K", "counting copy", "s", value={"nope": 0.99})
    # within 0.10 of the mean
    assert (
        judge(claim, {"nope": [0.95, 0.97, 0.93]})["verdict"] == "reproduced"
    )
    # 0.11 away, inside [0.77, 0.99]
    assert (
        judge(claim, {"nope": [0.84, 0.87, 0.93]})["verdict"] == "reproduced"
    )
    # inside an interval too wide to decide
    assert judge(claim, {"nope": [0.2, 0.9, 0.95]})["verdict"] == "partly"
    # same side of 0.5, further away
    assert judge(claim, {"nope": [0.70, 0.72, 0.71]})["verdict"] == "partly"
    assert (
        judge(claim, {"nope": [0.1, 0.12, 0.11]})["verdict"]
        == "not reproduced"
    )
    zero = Claim(
        "K", "counting copy", "s", value={"rope": 0.0, "learned": 0.0}
    )
    row = judge(
        zero, {"rope": [0.3, 0.35, 0.32], "learned": [0.0, 0.0, 0.01]}
    )
    assert row["verdict"] == "partly"  # one encoding reproduced, one not
    mean, lo, hi = t_interval([0.3, 0.35, 0.32])
    assert f"rope {mean:.2f} [{lo:.2f}, {hi:.2f}]" in row["ours"]


def test_order_claims_need_separated_intervals():
    claim = Claim("K", "random copy", "s", order=("alibi", "learned"))
    assert (
        judge(
            claim, {"alibi": [0.8, 0.85, 0.9], "learned": [0.0, 0.01, 0.0]}
        )["verdict"]
        == "reproduced"
    )
    assert (
        judge(claim, {"alibi": [0.1, 0.9, 0.5], "learned": [0.3, 0.0, 0.2]})[
            "verdict"
        ]
        == "partly"
    )
    assert (
        judge(claim, {"alibi": [0.0, 0.0, 0.0], "learned": [0.1, 0.0, 0.2]})[
            "verdict"
        ]
        == "not reproduced"
    )
    assert judge(claim, {"alibi": [0.9]})["verdict"] == "not testable here"


def test_claims_without_a_sweep_say_why():
    claim = Claim(
        "McLeish",
        "addition 20 → 100 digits",
        None,
        value={"abacus": 0.99},
        reason="needs 8 GPU-days",
    )
    (row,) = claims_table([claim], {})
    assert (
        row["verdict"] == "not testable here"
        and row["why"] == "needs 8 GPU-days"
        and row["ours"] == "–"
    )


def test_training_lengths_come_from_sweep_yaml_when_the_grid_does_not_vary_them(
    tmp_path,
):
    write_csv(tmp_path / "summary.csv", [
        {"kind": "run", "run": "s0", "status": "completed", "seed": 0, "exact_match@2": 1.0, "exact_match@3": 0.5},
        {"kind": "run", "run": "s1", "status": "completed", "seed": 1, "exact_match@2": 1.0, "exact_match@3": 0.7},
    ])  # fmt: skip
    (tmp_path / "sweep.yaml").write_text(
        "train_length: [1, 2]\ngrid: {seed: [0, 1]}\n"
    )
    assert out_of_distribution(tmp_path / "summary.csv") == {
        "all": [0.5, 0.7]
    }
    (tmp_path / "sweep.yaml").unlink()
    with pytest.raises(ValueError, match="pass beyond=L"):
        out_of_distribution(tmp_path / "summary.csv")
