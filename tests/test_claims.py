"""The claims table: OOD numbers read from a summary.csv, the fixed verdict
rules, and the printed table with its sources."""

from __future__ import annotations

import pytest

from annotated.analysis.claims import (
    Claim as CitedClaim,
)
from annotated.analysis.claims import (
    claims_table,
    judge,
    learned_flags,
    out_of_distribution,
)
from annotated.analysis.claims_text import claims_text
from annotated.analysis.intervals import t_interval
from annotated.lab.tables import write_csv


def Claim(*args, source="Test et al., Table 1", **kwargs):  # noqa: N802
    """A claim with a source: every published number names one."""
    return CitedClaim(*args, source=source, **kwargs)


def test_a_published_number_without_its_source_is_refused():
    with pytest.raises(ValueError, match="names its source"):
        CitedClaim("K", "counting copy", "s", value={"nope": 0.99})
    # a claim with no number (not run here, said why) needs none
    CitedClaim("M", "Abacus", None, reason="not run")


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


def test_runs_that_never_learned_are_inconclusive(tmp_path):
    claim = Claim("K", "random copy", "s", value={"t5": 0.42})
    row = judge(claim, {"t5": [0.0, 0.0, 0.0]}, {"t5": [False] * 3})
    assert row["verdict"] == "inconclusive: not learned"
    assert row["ours"] == "t5 –" and "t5 0/3" in row["why"]
    # each encoding is judged on its seeds that learned: the third seed of
    # alibi never learned, the other two are at the published number
    alibi = Claim("K", "counting copy", "s", value={"alibi": 0.9})
    results = {"alibi": [0.9, 0.92, 0.0]}
    assert judge(alibi, results)["verdict"] == "partly"
    row = judge(alibi, results, {"alibi": [True, True, False]})
    # two seeds that learned are too few to judge by (MIN_LEARNED = 3)
    assert row["verdict"] == "inconclusive: not learned"
    assert "alibi 2/3" in row["why"]
    row = judge(alibi, {"alibi": [0.9, 0.92, 0.88, 0.0]},
                {"alibi": [True, True, True, False]})  # fmt: skip
    assert row["verdict"] == "reproduced" and "alibi 3/4" in row["why"]
    # a claim on several encodings, one of them untested: partly at best
    both = Claim("K", "parity", "s", value={"nope": 0.75, "rope": 0.5})
    row = judge(
        both,
        {"nope": [0.74, 0.76, 0.75], "rope": [0.5, 0.5, 0.5]},
        {"nope": [True] * 3, "rope": [False] * 3},
    )
    assert row["verdict"] == "partly"
    # an order with an untrained side cannot be decided
    order = Claim("K", "random copy", "s", order=("alibi", "sinusoidal"))
    row = judge(
        order,
        {"alibi": [0.8, 0.85, 0.9], "sinusoidal": [0.0, 0.0, 0.0]},
        {"alibi": [True] * 3, "sinusoidal": [False] * 3},
    )
    assert row["verdict"] == "inconclusive: not learned"
    # learned_flags reads the summary's learned column, seed for seed in
    # the order of out_of_distribution
    rows = [
        {"kind": "run", "status": "completed", "model.positional": "t5",
         "train_length": "[1, 2]", "learned": learned, "exact_match@3": v}
        for learned, v in ((1, 0.5), (0, 0.1), (1, 0.7))
    ]  # fmt: skip
    assert learned_flags(rows) == {"t5": [True, False, True]}
    assert out_of_distribution(rows) == {"t5": [0.5, 0.1, 0.7]}
    table = claims_table(
        [Claim("K", "x", "s", value={"t5": 0.6})],
        {"s": out_of_distribution(rows)},
        {"s": learned_flags(rows)},
    )
    # seeds 1 and 3 only: 0.60 [0.00, 1.00], not 0.43
    assert table[0]["ours"].startswith("t5 0.60 [")


def test_a_different_experiment_is_not_comparable_whatever_the_numbers():
    claim = Claim(
        "McLeish",
        "Abacus 20 -> 100 digits",
        "coupled@100",
        value={"coupled_bias": 0.99},
        differs="another method",
    )
    row = judge(claim, {"coupled_bias": [1.0, 1.0, 1.0]})
    assert row["verdict"] == "not comparable"
    assert row["why"] == "another method"
    assert row["ours"] == "coupled_bias 1.00 [1.00, 1.00]"


def test_thresholds_apply_literally():
    claim = Claim("Cho", "200 digits", "s", at_least={"coupled": 0.95})
    assert judge(claim, {"coupled": [0.95] * 3})["verdict"] == "reproduced"
    assert (
        judge(claim, {"coupled": [1.0, 0.96, 0.99]})["verdict"]
        == "reproduced"
    )
    # 0.94 [0.80, 1.00]: the mean misses 0.95, only the interval reaches it
    row = judge(claim, {"coupled": [1.0, 0.9004, 0.9082]})
    assert row["verdict"] == "partly" and row["published"] == "coupled ≥ 0.95"
    assert judge(claim, {"coupled": [0.94]})["verdict"] == "not reproduced"
    assert (
        judge(claim, {"coupled": [0.5, 0.52, 0.51]})["verdict"]
        == "not reproduced"
    )
    # a value 0.105 from the published one is outside the 0.10 tolerance
    value = Claim("K", "counting copy", "s", value={"nope": 0.99})
    assert judge(value, {"nope": [0.88, 0.885, 0.89]})["verdict"] == "partly"


def test_a_claim_is_one_kind():
    with pytest.raises(ValueError, match="one of value/order/at_least"):
        Claim("K", "x", "s", value={"a": 1.0}, order=("a", "b"))


def test_the_printed_table_numbers_its_sources_and_fits_the_page():
    source = "Kazemnejad et al. 2023, Fig. 3 'Copy': " + "setting " * 20
    claims = [
        Claim("K", "counting copy: NoPE", "s", value={"nope": 0.99},
              source=source),
        Claim("K", "counting copy: T5", "s", value={"t5": 0.77},
              source=source, read_off=True),
        Claim("C", "coupling", "s", at_least={"nope": 0.95},
              source="Cho et al. 2024, Fig. 1"),
        CitedClaim("M", "Abacus", None, reason="not run"),
    ]  # fmt: skip
    text = claims_text(
        claims_table(claims, {"s": {"nope": [0.98, 0.99], "t5": [0.2]}})
    )
    assert all(len(line) <= 76 for line in text.splitlines())
    assert "K [1]: counting copy: NoPE" in text
    assert "K [1]: counting copy: T5" in text and "C [2]: coupling" in text
    assert "M: Abacus" in text  # no source, no number
    assert "published: t5 ≈0.77" in text  # read off a figure
    assert text.count("[1] Kazemnejad") == 1 and "[2] Cho" in text
    assert text.endswith(
        "4 claims: reproduced 2, not reproduced 1, not testable here 1"
    )
