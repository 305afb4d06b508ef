"""Published length-generalisation claims, tested against a sweep.

Each claim is judged by a stated rule.

A claim is one sentence of a paper with its number (Kazemnejad et al. 2023:
"NoPE reaches 0.99 exact match beyond the training lengths on the counting
copy"). :func:`out_of_distribution` turns a sweep's ``summary.csv`` into one
number per run — mean exact match over the lengths beyond training, each
length weighted equally, as the papers average — and :func:`judge` compares
the mean over seeds and its 95% t-interval
(:mod:`annotated.analysis.intervals`) with the claim. The verdict rules are
fixed here, before any result is read:

* a **value** claim (``"nope": 0.99``) is *reproduced* when the published
  number lies within ``TOLERANCE`` (0.10) of our mean, or inside our interval
  when that is at most ``MAX_WIDTH`` (0.30) wide; *partly* when it lies inside
  a wider interval (the seeds disagree too much to pin it down), or when both
  sit on the same side of 0.5 (high, or near zero) but further apart; *not
  reproduced* otherwise;
* an **order** claim (``"alibi" > "learned"``) is *reproduced* when the first
  interval lies wholly above the second; *partly* when only the means are in
  that order; *not reproduced* otherwise;
* a claim whose setting the sweep did not run is *not testable here*, with the
  reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from annotated.analysis.intervals import format_interval, t_interval
from annotated.lab.tables import read_csv

TOLERANCE = 0.10
# an interval wider than this cannot reproduce a number by containing it
MAX_WIDTH = 0.30
VERDICTS = ("reproduced", "partly", "not reproduced", "not testable here")


@dataclass(frozen=True)
class Claim:
    """One published claim: a value per encoding, or an order of two.

    ``value`` = {encoding: number}, or ``order`` = (higher, lower)."""

    paper: str
    setting: str
    sweep: str | None  # the stored sweep that tests it (None: not run here)
    value: dict | None = None
    order: tuple[str, str] | None = None
    reason: str = ""  # why it is not testable here, when sweep is None


def out_of_distribution(
    summary,
    *,
    key: str = "model.positional",
    beyond: int | None = None,
    upto: int | None = None,
) -> dict[str, list[float]]:
    """``{encoding: [OOD exact match per seed]}`` from a sweep's summary.csv
    (a path, or its rows): each run's mean exact match over the evaluated
    lengths ``beyond < n ≤ upto`` (default: beyond its longest training
    length, from a ``train_length`` column or the sweep.yaml beside the
    file)."""
    out: dict[str, list[float]] = {}
    default_high, rows = None, summary
    if isinstance(summary, str | Path):
        # the training lengths, when the grid does not vary them
        sweep_yaml = Path(summary).with_name("sweep.yaml")
        default_high = (
            _train_high(yaml.safe_load(sweep_yaml.read_text()))
            if sweep_yaml.is_file()
            else None
        )
        rows = read_csv(Path(summary))
    for row in rows:
        if row["kind"] != "run" or row["status"] != "completed":
            continue
        lengths = sorted(
            int(k.split("@")[1])
            for k in row
            if k.startswith("exact_match@") and row[k] is not None
        )
        first = (
            beyond
            if beyond is not None
            else (_train_high(row) if "train_length" in row else default_high)
        )
        if first is None:
            raise ValueError(
                f"{summary}: no train_length column and no sweep.yaml "
                "beside it; pass beyond=L"
            )
        picked = [
            n for n in lengths if n > first and (upto is None or n <= upto)
        ]
        # a sweep without the key in its grid (one setting over seeds) is one
        # group, "all"
        if picked:
            out.setdefault(str(row.get(key, "all")), []).append(
                sum(row[f"exact_match@{n}"] for n in picked) / len(picked)
            )
    return out


def _train_high(row: dict) -> int:
    """The longest training length of a summary row or a sweep.yaml.

    The length is written ``8``, ``[1, 20]`` or ``"[1, 20]"``."""
    value = row.get("train_length")
    if isinstance(value, str):  # "[1, 20]" as the CSV keeps it
        return int(value.strip("[] ").split(",")[-1])
    if isinstance(value, list):
        return int(value[-1])
    if value is None:
        raise ValueError("no train_length to read; pass beyond=L")
    return int(value)


def judge(claim: Claim, results: dict[str, list[float]] | None) -> dict:
    """One row of the claims table: the claim, our numbers, the verdict.

    Our numbers are the mean [95% interval] over seeds."""
    row = {"paper": claim.paper, "setting": claim.setting}
    if claim.sweep is None or results is None:
        return row | {
            "published": _published(claim),
            "ours": "–",
            "verdict": "not testable here",
            "why": claim.reason,
        }
    if claim.value is not None:
        verdicts, ours = [], []
        for encoding, published in claim.value.items():
            mean, lo, hi = t_interval(
                results.get(encoding, []), bounds=(0.0, 1.0)
            )
            ours.append(f"{encoding} {format_interval(mean, lo, hi)}")
            verdicts.append(_value_verdict(published, mean, lo, hi))
        verdict = (
            min(verdicts, key=VERDICTS.index)
            if len(set(verdicts)) == 1
            else "partly"
        )
        return row | {
            "published": _published(claim),
            "ours": "; ".join(ours),
            "verdict": verdict,
            "why": "",
        }
    high, low = claim.order
    (m1, lo1, hi1), (m2, lo2, hi2) = (
        t_interval(results.get(k, []), bounds=(0.0, 1.0)) for k in (high, low)
    )
    if math.isnan(m1) or math.isnan(m2):
        verdict = "not testable here"
    elif not math.isnan(lo1) and not math.isnan(hi2) and lo1 > hi2:
        verdict = "reproduced"
    else:
        verdict = "partly" if m1 > m2 else "not reproduced"
    ours = (
        f"{high} {format_interval(m1, lo1, hi1)} "
        f"vs {low} {format_interval(m2, lo2, hi2)}"
    )
    return row | {
        "published": _published(claim),
        "ours": ours,
        "verdict": verdict,
        "why": "",
    }


def _value_verdict(
    published: float, mean: float, lo: float, hi: float
) -> str:
    if math.isnan(mean):
        return "not testable here"
    inside = not math.isnan(lo) and lo <= published <= hi
    if abs(published - mean) <= TOLERANCE or (
        inside and hi - lo <= MAX_WIDTH
    ):
        return "reproduced"
    # consistent with the claim, but the seeds disagree too much to pin it
    # down
    if inside:
        return "partly"
    return (
        "partly" if (published >= 0.5) == (mean >= 0.5) else "not reproduced"
    )


def _published(claim: Claim) -> str:
    if claim.value is not None:
        return "; ".join(f"{k} {v:.2f}" for k, v in claim.value.items())
    if claim.order is not None:
        return f"{claim.order[0]} > {claim.order[1]}"
    return "–"


def claims_table(
    claims: list[Claim], sweeps: dict[str, dict[str, list[float]]]
) -> list[dict]:
    """Every claim judged against the stored sweep it names.

    The sweep is ``sweeps[claim.sweep]``."""
    return [
        judge(c, sweeps.get(c.sweep) if c.sweep else None) for c in claims
    ]
