"""Published length-generalisation claims, tested against a sweep.

A claim is one sentence of a paper with its number and where the number
stands (Kazemnejad et al. 2023, Fig. 3: NoPE copies 0.99 of the sequences
beyond the training lengths exactly). :func:`out_of_distribution` turns a
sweep's ``summary.csv`` into one number per run — mean exact match over the
lengths beyond training, each length weighted equally, as the papers average
— and :func:`judge` compares the mean over seeds and its 95% t-interval
(:mod:`annotated.analysis.intervals`) with the claim. The verdict rules are
fixed here, before any result is read, and applied literally to the
unrounded numbers (the table prints two decimals): 0.94 is below 0.95.

* a claim whose setting the sweep did not run is *not testable here*, with
  the reason;
* a claim whose published setting differs in kind from the run that would
  test it (another method, a longer extrapolation than the paper reports) is
  *not comparable*, with what differs, whatever the numbers;
* a run that never learned its training lengths can neither confirm nor
  refute an extrapolation claim: each encoding is judged on its runs that
  learned them, and an encoding with none is *inconclusive: not learned* —
  as is one where fewer than ``MIN_LEARNED`` (3) of its runs learned: two
  lucky seeds out of ten make no mean to judge a published number by;
* a **value** claim (``"nope": 0.99``) is *reproduced* when the published
  number lies within ``TOLERANCE`` (0.10) of our mean, or inside our interval
  when that is at most ``MAX_WIDTH`` (0.30) wide; *partly* when it lies inside
  a wider interval (the seeds disagree too much to pin it down), or when both
  sit on the same side of 0.5 (high, or near zero) but further apart; *not
  reproduced* otherwise;
* a **threshold** claim (``"coupled_bias": 0.95`` as *at least*) is
  *reproduced* when our mean reaches the threshold; *partly* when only the
  top of our interval does; *not reproduced* otherwise;
* a claim on several encodings takes the verdict they share; when they
  differ, or some could not be judged, it is *partly*;
* an **order** claim (``"alibi" > "learned"``) is *reproduced* when the first
  interval lies wholly above the second; *partly* when only the means are in
  that order; *not reproduced* otherwise; it is *inconclusive* when either
  side has no run that learned.
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
# fewer runs that learned than this (of at least this many) decide nothing
MIN_LEARNED = 3
JUDGED = ("reproduced", "partly", "not reproduced")
VERDICTS = JUDGED + (
    "not comparable",
    "inconclusive: not learned",
    "not testable here",
)


@dataclass(frozen=True)
class Claim:
    """One published claim: a value per encoding, a threshold, or an order.

    ``value`` = {encoding: number}, ``at_least`` = {encoding: threshold}, or
    ``order`` = (higher, lower)."""

    paper: str
    setting: str
    sweep: str | None  # the stored sweep that tests it (None: not run here)
    value: dict | None = None
    order: tuple[str, str] | None = None
    reason: str = ""  # why it is not testable here, when sweep is None
    at_least: dict | None = None
    # paper, table or figure, and the setting the number belongs to
    source: str = ""
    # what makes the run tested here a different experiment (not comparable)
    differs: str = ""
    read_off: bool = False  # the numbers are read off a figure (printed ≈)

    def __post_init__(self):
        kinds = [self.value, self.order, self.at_least]
        if sum(k is not None for k in kinds) > 1:
            raise ValueError(f"{self.setting}: one of value/order/at_least")
        if any(k is not None for k in kinds) and not self.source.strip():
            raise ValueError(
                f"{self.setting}: a published claim names its source — "
                "pass source='paper, table or figure, setting'"
            )


def _runs(summary, key, beyond, upto):
    """``(group, OOD exact match, learned)`` per completed run."""
    default_high, rows = None, summary
    if isinstance(summary, str | Path):
        # the training lengths, when the grid does not vary them
        sweep_yaml = Path(summary).with_name("sweep.yaml")
        if sweep_yaml.is_file():
            default_high = _train_high(yaml.safe_load(sweep_yaml.read_text()))
        rows = read_csv(Path(summary))
    for row in rows:
        if row["kind"] != "run" or row["status"] != "completed":
            continue
        lengths = sorted(
            int(k.split("@")[1])
            for k in row
            if k.startswith("exact_match@") and row[k] is not None
        )
        first = beyond if beyond is not None else default_high
        if beyond is None and "train_length" in row:
            first = _train_high(row)
        if first is None:
            raise ValueError(
                f"{summary}: no train_length column and no sweep.yaml "
                "beside it; pass beyond=L"
            )
        picked = [
            n for n in lengths if n > first and (upto is None or n <= upto)
        ]
        # no key in the grid (one setting over seeds): one group, "all"
        if picked:
            ood = sum(row[f"exact_match@{n}"] for n in picked) / len(picked)
            yield str(row.get(key, "all")), ood, row.get("learned") != 0


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
    for group, ood, _ in _runs(summary, key, beyond, upto):
        out.setdefault(group, []).append(ood)
    return out


def learned_flags(
    summary,
    *,
    key: str = "model.positional",
    beyond: int | None = None,
    upto: int | None = None,
) -> dict[str, list[bool]]:
    """``{encoding: [learned its training lengths, per seed]}``, in the
    order of :func:`out_of_distribution` (a run without a ``learned``
    column counts as learned)."""
    out: dict[str, list[bool]] = {}
    for group, _, learned in _runs(summary, key, beyond, upto):
        out.setdefault(group, []).append(bool(learned))
    return out


def _train_high(row: dict) -> int:
    """The longest training length (``8``, ``[1, 20]`` or ``"[1, 20]"``)."""
    value = row.get("train_length")
    if isinstance(value, str):  # "[1, 20]" as the CSV keeps it
        return int(value.strip("[] ").split(",")[-1])
    if isinstance(value, list):
        return int(value[-1])
    if value is None:
        raise ValueError("no train_length to read; pass beyond=L")
    return int(value)


def judge(
    claim: Claim,
    results: dict[str, list[float]] | None,
    learned: dict[str, list[bool]] | None = None,
) -> dict:
    """One row of the claims table: the claim, our numbers, the verdict.

    Our numbers are the mean [95% interval] over the seeds that learned
    their training lengths (``learned``, per seed in the order of
    ``results``; ``None``: every seed did)."""
    row = {
        "paper": claim.paper,
        "setting": claim.setting,
        "published": _published(claim),
        "source": claim.source,
    }
    if claim.sweep is None or results is None:
        row |= {"ours": "–", "verdict": "not testable here"}
        return row | {"why": claim.reason}
    named = list(claim.order or claim.value or claim.at_least or ())
    seeds = {e: results.get(e, []) for e in named}
    kept = {}
    for e, values in seeds.items():
        flags = (learned or {}).get(e) or [True] * len(values)
        kept[e] = [v for v, ok in zip(values, flags) if ok]
    # rounded past float noise: three seeds at 0.95 have mean 0.95, not less
    stats = {
        e: tuple(round(x, 9) for x in t_interval(kept[e], bounds=(0, 1)))
        for e in named
    }
    parts = [
        f"{e} {format_interval(*stats[e])}".replace("nan", "–") for e in named
    ]
    row["ours"] = (" vs " if claim.order else "; ").join(parts)
    row["why"] = ""
    if any(len(kept[e]) < len(seeds[e]) for e in named):
        row["why"] = "runs that learned the training lengths: " + ", ".join(
            f"{e} {len(kept[e])}/{len(seeds[e])}" for e in named
        )
    if claim.differs:
        return row | {"verdict": "not comparable", "why": claim.differs}
    few = "inconclusive: not learned"  # too few runs learned to judge by
    thin = {e for e in named
            if len(kept[e]) < min(MIN_LEARNED, len(seeds[e]))}  # fmt: skip
    if claim.order is not None:
        row["verdict"] = few if thin else _order_verdict(*stats.values())
        return row
    targets = claim.value or claim.at_least
    rule = _value_verdict if claim.value else _threshold_verdict
    each = [few if e in thin else rule(targets[e], *stats[e]) for e in named]
    return row | {"verdict": _combined(each)}


def _combined(verdicts: list[str]) -> str:
    """One verdict for a claim on several encodings (the module's rule)."""
    judged = [v for v in verdicts if v in JUDGED]
    if not judged:
        return min(verdicts, key=VERDICTS.index)
    if len(set(judged)) > 1 or len(judged) < len(verdicts):
        return "partly"
    return judged[0]


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


def _threshold_verdict(
    threshold: float, mean: float, lo: float, hi: float
) -> str:
    if math.isnan(mean):
        return "not testable here"
    if mean >= threshold:
        return "reproduced"
    if not math.isnan(hi) and hi >= threshold:
        return "partly"
    return "not reproduced"


def _order_verdict(first: tuple, second: tuple) -> str:
    (m1, lo1, _), (m2, _, hi2) = first, second
    if math.isnan(m1) or math.isnan(m2):
        return "not testable here"
    separated = not (math.isnan(lo1) or math.isnan(hi2))
    if separated and lo1 > hi2:
        return "reproduced"
    return "partly" if m1 > m2 else "not reproduced"


def _published(claim: Claim) -> str:
    if claim.order is not None:
        return f"{claim.order[0]} > {claim.order[1]}"
    sign = "≥ " if claim.at_least is not None else ""
    sign += "≈" if claim.read_off else ""
    numbers = claim.value or claim.at_least or {}
    return "; ".join(f"{k} {sign}{v:.2f}" for k, v in numbers.items()) or "–"


def claims_table(
    claims: list[Claim],
    sweeps: dict[str, dict[str, list[float]]],
    learned: dict[str, dict[str, list[bool]]] | None = None,
) -> list[dict]:
    """Every claim judged against ``sweeps[claim.sweep]``, on the seeds
    that ``learned[claim.sweep]`` marks as having learned."""
    learned = learned or {}
    return [
        judge(c, sweeps.get(c.sweep or ""), learned.get(c.sweep or ""))
        for c in claims
    ]
