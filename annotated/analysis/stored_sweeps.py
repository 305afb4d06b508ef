"""The book's stored length-generalisation sweeps, per encoding.

Read them, summarise them per encoding, and plot them.

``scripts/collect_length_sweep.py`` gathers sweep folders into
``annotated/data/<prefix>summary.csv`` (a row per run, ``task`` and
``train_length`` in front) and ``<prefix>provenance.yaml`` (each sweep's
config as run, completed runs, environment, wall time). :class:`StoredSweeps`
reads them back for the chapters: which runs completed and learned, each
seed's exact match beyond the training lengths
(:func:`annotated.analysis.claims.out_of_distribution`, the definition the
claims table uses), and a figure of exact match against length with 95%
intervals over seeds.

    >>> sweeps = StoredSweeps()  # doctest: +SKIP
    >>> sweeps.table("sort", ["sinusoidal", "randomized"])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import yaml

from annotated.analysis.claims import out_of_distribution
from annotated.analysis.intervals import format_interval, t_interval
from annotated.figures.palette import ENCODING_COLORS
from annotated.lab.tables import read_csv
from annotated.training.evaluation import expand_lengths

DATA = Path(__file__).parent.parent / "data"


def interval_text(values: list[float]) -> str:
    """``'mean [lo, hi]'`` over seeds (95% t-interval clipped to [0, 1]); one
    seed: its value and ``'(1 seed)'``; none: ``'none yet'``."""
    if not values:
        return "none yet"
    mean, lo, hi = t_interval(values, bounds=(0.0, 1.0))
    return format_interval(mean, lo, hi) + (
        " (1 seed)" if len(values) == 1 else ""
    )


def spans(lengths: list[int]) -> str:
    """Sorted lengths, compactly: ``[1, 2, 3, 5, 10]`` → ``'1..3, 5, 10'``."""
    runs: list[list[int]] = []
    for n in lengths:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(
        f"{r[0]}..{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs
    )


class StoredSweeps:
    """Stored sweeps of one file prefix under ``annotated/data``, by task."""

    def __init__(self, prefix: str = "length_protocol_", data: Path = DATA):
        self.rows = read_csv(Path(data) / f"{prefix}summary.csv")
        self.provenance = yaml.safe_load(
            (Path(data) / f"{prefix}provenance.yaml").read_text()
        )
        # task -> its provenance
        self.sweeps = {
            s["config"]["task"]: s for s in self.provenance["sweeps"]
        }

    def config(self, task: str) -> dict:
        return self.sweeps[task]["config"]

    def train_high(self, task: str) -> int:
        return int(self.config(task)["train_length"][1])

    def lengths(self, task: str) -> list[int]:
        return expand_lengths(self.config(task)["eval_lengths"])

    def completed(self, task: str, encoding: str | None = None) -> list[dict]:
        """The completed runs of one task's sweep, in seed order.

        Only those of ``encoding`` when it is given."""
        return [
            r
            for r in self.rows
            if r["task"] == task
            and r["kind"] == "run"
            and r["status"] == "completed"
            and (encoding is None or r["model.positional"] == encoding)
        ]

    def per_seed(
        self, task: str, *, beyond: int | None = None, upto: int | None = None
    ) -> dict[str, list[float]]:
        """Mean exact match over lengths, per encoding and seed.

        ``{encoding: [mean exact match over beyond < n ≤ upto, per seed]}``;
        by default the lengths beyond training."""
        return out_of_distribution(
            [r for r in self.rows if r["task"] == task],
            beyond=beyond,
            upto=upto,
        )

    def table(self, task: str, encodings: list[str]) -> str:
        """Per encoding: learned seeds, steps, ID and OOD exact match.

        The seeds completed and learned, the steps to learn, and in- and
        out-of-distribution exact match with intervals."""
        high, cap, top = (
            self.train_high(task),
            self.config(task)["train"]["steps"],
            max(self.lengths(task)),
        )
        ind, ood = (
            self.per_seed(task, beyond=0, upto=high),
            self.per_seed(task),
        )
        header = (
            f"{'encoding':<13}{'learned':>8}  {'steps':<15}"
            f"{f'ID 1..{high}':<19}OOD {high + 1}..{top}"
        )
        lines = [
            f"{task}: mean exact match [95% t-interval] over seeds; "
            f"cap {cap}",
            header,
        ]
        for encoding in encodings:
            runs = self.completed(task, encoding)
            steps = (
                "/".join(
                    str(r["steps_to_learn"]) if r["learned"] else "cap"
                    for r in runs
                )
                or "–"
            )
            learned = sum(r["learned"] for r in runs)
            in_dist = interval_text(ind.get(encoding, []))
            out_dist = interval_text(ood.get(encoding, []))
            lines.append(
                f"{encoding:<13}{learned:>6}/{len(runs)}  {steps:<15}"
                f"{in_dist:<19}{out_dist}"
            )
        return "\n".join(lines)

    def at_lengths(
        self, task: str, encodings: list[str], at: tuple[int, ...]
    ) -> str:
        """Each completed seed's exact match at the lengths ``at``.

        Each value is followed by its Wilson 95% lower bound."""
        lines = [f"{task}: exact match per seed (Wilson 95% lower bound)"]
        for encoding in encodings:
            runs = self.completed(task, encoding)
            if not runs:
                lines.append(f"  {encoding:<13}no completed run")
            for n in at if runs else ():
                seeds = " ".join(
                    f"s{r['seed']} {r[f'exact_match@{n}']:.3f} "
                    f"(>{r[f'exact_match_lo@{n}']:.3f})"
                    for r in runs
                )
                lines.append(f"  {encoding:<13}n={n:<4}{seeds}")
        return "\n".join(lines)

    def plot(
        self,
        ax,
        task: str,
        encodings: list[str],
        title: str,
        *,
        xscale: str | None = None,
        xlabel: str = "problem length n",
        labels: dict | None = None,
    ) -> None:
        """Mean exact match per length with its 95% t-interval over seeds
        (shaded; one seed: its Wilson interval), and a dashed line after the
        longest training length."""
        lengths = self.lengths(task)
        for encoding in encodings:
            runs = self.completed(task, encoding)
            if not runs:
                continue
            stats = [
                t_interval(
                    [r[f"exact_match@{n}"] for r in runs], bounds=(0.0, 1.0)
                )
                for n in lengths
            ]
            name = (labels or {}).get(encoding, encoding)
            label = f"{name} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
            (line,) = ax.plot(
                lengths,
                [s[0] for s in stats],
                marker="o",
                ms=3,
                label=label,
                color=ENCODING_COLORS.get(encoding),
            )
            if len(runs) > 1:
                lo, hi = [s[1] for s in stats], [s[2] for s in stats]
            else:
                lo = [runs[0][f"exact_match_lo@{n}"] for n in lengths]
                hi = [runs[0][f"exact_match_hi@{n}"] for n in lengths]
            ax.fill_between(
                lengths, lo, hi, color=line.get_color(), alpha=0.2, lw=0
            )
        ax.axvline(self.train_high(task) + 0.5, color="0.5", ls="--", lw=1)
        if xscale:
            ax.set_xscale(xscale)
            # ticks in digits, not powers of ten
            # (every length drawn on these axes so far, other tasks too)
            ticks = [n for n in (1, 10, 20, 50, 100, 200, 500, 1000)
                     if n <= ax.dataLim.x1]  # fmt: skip
            ax.set_xticks(ticks, [str(n) for n in ticks])
            ax.minorticks_off()
        else:
            ax.set_xlim(0, max(lengths) + 1)
        ax.set(
            ylim=(-0.02, 1.02),
            xlabel=xlabel,
            ylabel="exact match",
            title=title,
        )
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(
                0.5,
                0.5,
                "no completed run",
                ha="center",
                transform=ax.transAxes,
            )
