"""A comparison of positional encodings: a sweep's runs as table and figure.

A sweep over ``model.positional`` and ``seed``
(:func:`annotated.lab.sweeps.sweep`)
leaves one run folder per encoding and seed. :meth:`Comparison.from_sweep`
reads them back (one :class:`~annotated.analysis.run_result.RunResult` each),
and a :class:`Comparison` shows them: the summary table (in- and
out-of-distribution exact match, token accuracy and loss, and the gap; mean
and 95% interval over seeds), the learning curves, accuracy against length and
one held-out example's attention maps per encoding. The table's rows are those
of the sweep's summary.csv (:func:`annotated.lab.tables.run_row`, grouped
over seeds by :func:`annotated.lab.tables.group_statistics`), plus ``ood_*``:
the mean over the evaluation lengths longer than training. The comparison
dashboard (:mod:`annotated.figures.dashboard`) shows one.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib.ticker import LogFormatter

from annotated import lab
from annotated.analysis.intervals import format_interval
from annotated.analysis.run_result import RunResult
from annotated.figures.curves import accuracy_vs_length
from annotated.figures.palette import encoding_color
from annotated.figures.viz import attention_heatmap, new_figure
from annotated.lab.tables import group_statistics
from annotated.training.evaluation import length_range


@dataclass
class Comparison:
    """The runs of one comparison, their table and their figure."""

    task: str
    train_length: int
    eval_lengths: list[int]
    runs: list[RunResult]
    folder: Path | None = None  # the sweep folder the runs are in

    @classmethod
    def from_sweep(cls, folder) -> Comparison:
        """Read back a sweep that :func:`annotated.lab.sweeps.sweep` wrote.

        The sweep runs over ``model.positional`` (and ``seed``)."""
        folder = Path(folder)
        config = lab.ExperimentConfig.from_file(folder / "sweep.yaml")
        runs = [
            RunResult.from_folder(point, run_folder)
            for point, run_folder in lab.sweep_runs(folder)
        ]
        return cls(
            config.task,
            length_range(config.train_length)[1],
            list(config.eval_lengths),
            runs,
            folder,
        )

    @property
    def encodings(self) -> list[str]:
        return list(dict.fromkeys(r.encoding for r in self.runs))

    @property
    def lengths(self) -> list[int]:
        return sorted({self.train_length, *self.eval_lengths})

    def rows(self) -> list[dict]:
        return [r.row() for r in self.runs]

    def groups(self) -> list[dict]:
        """One row per encoding: mean and ``*_std`` of every metric.

        Both are taken over the encoding's seeds."""
        return group_statistics(self.rows(), ["encoding", "seed"])

    def table_html(self) -> str:
        """The summary as an HTML table, one row per encoding.

        Each cell is the mean [95% t-interval] over seeds."""
        n_seeds = len({r.seed for r in self.runs})
        longer = [n for n in self.lengths if n > self.train_length]

        def cell(g, key):
            if g.get(key) is None:
                return "–"
            low, high = g.get(f"{key}_ci_lo"), g.get(f"{key}_ci_hi")
            return format_interval(
                g[key],
                math.nan if low is None else low,
                math.nan if high is None else high,
                3,
            )

        columns = [
            ("in-dist exact match", "in_dist_exact_match"),
            ("in-dist token acc.", "in_dist_token_accuracy"),
            ("in-dist loss", "in_dist_loss"),
            ("OOD exact match", "ood_exact_match"),
            ("OOD token acc.", "ood_token_accuracy"),
            ("OOD loss", "ood_loss"),
            ("gap (exact match)", "gap_exact_match"),
        ]
        columns += [
            (f"exact match n={n}", f"exact_match@{n}") for n in self.lengths
        ]
        head = "".join(
            f"<th>{html.escape(title)}</th>"
            for title in ["encoding", "runs", *[c[0] for c in columns]]
        )
        body = "".join(
            f"<tr><td><b>{html.escape(g['encoding'])}</b></td>"
            f"<td>{html.escape(g['status'])}</td>"
            + "".join(f"<td>{cell(g, key)}</td>" for _, key in columns)
            + "</tr>"
            for g in self.groups()
        )
        ood = (
            f"mean over n = {', '.join(map(str, longer))}"
            if longer
            else "no longer lengths evaluated"
        )
        spread = (
            "one seed"
            if n_seeds == 1
            else f"mean [95% t-interval] over {n_seeds} seeds"
        )
        caption = (
            f"Task <code>{html.escape(self.task)}</code>, "
            f"trained at n = {self.train_length}; "
            f"out of distribution (OOD) = {ood}; gap = in-dist − OOD; "
            f"{spread}."
        )
        return (
            '<table style="text-align:right">'
            f'<caption style="caption-side:top">{caption}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def figure(self):
        """Learning curves, accuracy vs length, and per encoding the attention
        maps (mean over heads, one row per layer) of one held-out example at
        the training length."""
        colors = {
            e: encoding_color(e, default=f"C{i}")
            for i, e in enumerate(self.encodings)
        }
        examples = {
            e: next(
                r for r in self.runs if r.encoding == e
            ).attention_example(self.train_length)
            for e in self.encodings
        }
        n_layers = max(len(attentions) for attentions, _ in examples.values())
        fig = new_figure(
            figsize=(max(13, 3.4 * len(examples)), 3.8 + 3.2 * n_layers),
            layout="constrained",
        )
        top, bottom = fig.subfigures(
            2, 1, height_ratios=[3.8, 3.2 * n_layers]
        )
        ax_loss, ax_acc, ax_len = top.subplots(1, 3)
        longest = self.lengths[-1]
        for run in self.runs:
            first = run is next(
                r for r in self.runs if r.encoding == run.encoding
            )
            color = colors[run.encoding]
            ax_loss.plot(
                *run.history.series("loss"),
                color=color,
                lw=0.8,
                alpha=0.8,
                label=run.encoding if first else None,
            )
            for length, style in {
                self.train_length: "-",
                longest: "--",
            }.items():
                ax_acc.plot(
                    *run.history.series("exact_match", length=length),
                    style,
                    color=color,
                    marker="o",
                    ms=3,
                    label=f"{run.encoding} n={length}" if first else None,
                )
        ax_loss.set(
            yscale="log",
            xlabel="step",
            ylabel="cross-entropy (nats)",
            title="training loss",
        )
        ax_loss.yaxis.set_major_formatter(LogFormatter())  # 2.3, not 2.3×10⁰
        ax_loss.yaxis.set_minor_formatter(
            LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5))
        )
        ax_acc.set(
            ylim=(-0.02, 1.02),
            xlabel="step",
            ylabel="exact match",
            title="held-out exact match "
            f"(solid n={self.train_length}, dashed n={longest})",
        )
        for ax in (ax_loss, ax_acc):
            ax.legend(fontsize=7)
        curves = {}
        for g in self.groups():
            present = [
                n
                for n in self.lengths
                if g.get(f"exact_match@{n}") is not None
            ]
            means = [g[f"exact_match@{n}"] for n in present]
            lows = [g.get(f"exact_match@{n}_ci_lo") for n in present]
            highs = [g.get(f"exact_match@{n}_ci_hi") for n in present]
            errors = [
                [
                    0.0 if lo is None else max(m - lo, 0.0)
                    for m, lo in zip(means, lows)
                ],
                [
                    0.0 if hi is None else max(hi - m, 0.0)
                    for m, hi in zip(means, highs)
                ],
            ]
            curves[g["encoding"]] = (present, means, errors)
        accuracy_vs_length(
            curves,
            ax_len,
            train_length=self.train_length,
            ylabel="exact match (mean, 95% interval)",
        )
        # (layers, encodings)
        axes = bottom.subplots(n_layers, len(examples), squeeze=False)
        image = None
        for column, (encoding, (attentions, labels)) in enumerate(
            examples.items()
        ):
            labels = labels if len(labels) <= 40 else None
            for layer in range(n_layers):
                ax = axes[layer, column]
                if layer >= len(attentions) or attentions[layer] is None:
                    ax.axis("off")
                    continue
                image = attention_heatmap(
                    attentions[layer][0].mean(0),
                    ax,
                    query_labels=labels,
                    key_labels=labels,
                    colorbar=False,
                    title=f"{encoding}: layer {layer}, mean over heads",
                )
        if image is not None:  # every map shares the scale 0…1
            bottom.colorbar(
                image, ax=axes, shrink=0.8, label="attention weight"
            )
        bottom.suptitle(
            f"attention of one held-out example at n = {self.train_length}",
            fontsize=10,
        )
        return fig
