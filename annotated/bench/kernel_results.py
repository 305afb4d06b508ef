"""What the kernel benchmark yields, and how it is shown.

The rows and fitted exponents (:class:`BenchmarkResult`), a Markdown table, a
log-log plot and the files.

A fitted exponent is the least-squares slope of log cost against log T: ≈ 2
is the O(T²) wall, ≈ 1 linear. A kernel with a fixed working set (block-wise
tiles) plus an O(T) output has a fitted memory slope below 1 at short T that
tends to 1 as T grows.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from annotated.bench.measure import fit_exponent

METRICS = {
    "forward_ms": "forward time (ms)",
    "forward_backward_ms": "forward + backward time (ms)",
    "peak_forward_mib": "peak forward memory (MiB)",
}


@dataclass
class BenchmarkResult:
    """Rows, fitted exponents per kind and metric, and the files written.

    One row per kind and T."""

    rows: list[dict]
    exponents: dict[str, dict[str, float]]
    files: dict[str, Path] = field(default_factory=dict)


def fit_exponents(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Fitted exponent per kind and metric over the measured rows.

    Skipped rows are left out."""
    out = {}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        done = [r for r in rows if r["kind"] == kind and r["status"] == "ok"]
        out[kind] = {
            m: fit_exponent([r["T"] for r in done], [r[m] for r in done])
            for m in METRICS
        }
    return out


def _cell(value) -> str:
    """A table cell: — for a missing value, floats in their shortest form."""
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_table(result: BenchmarkResult) -> str:
    """The rows and the fitted exponents as two Markdown tables."""
    lines = [
        "| kind | T | forward ms | fwd+bwd ms | peak fwd MiB | status |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in result.rows:
        values = (
            r["kind"],
            r["T"],
            r["forward_ms"],
            r["forward_backward_ms"],
            r["peak_forward_mib"],
            r["status"],
        )
        lines.append("| " + " | ".join(_cell(x) for x in values) + " |")
    lines += [
        "",
        "Fitted exponents (cost ∝ T^slope over the measured T):",
        "",
    ]
    lines += [
        "| kind | " + " | ".join(METRICS.values()) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for kind, fits in result.exponents.items():
        lines.append(
            f"| {kind} | "
            + " | ".join(
                "—" if math.isnan(s) else f"{s:.2f}" for s in fits.values()
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot_scaling(result: BenchmarkResult, path=None):
    """Log-log panels of each metric against T, one line per kind.

    The fitted slope is in the legend.

    Built on a bare ``matplotlib.figure.Figure`` (Agg canvas, no pyplot):
    saving needs no display and never switches a notebook's backend; a
    notebook shows the returned figure.
    """
    import matplotlib.ticker
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * len(METRICS), 4), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    for ax, (metric, label) in zip(axes, METRICS.items(), strict=True):
        for kind, fits in result.exponents.items():
            done = [
                r
                for r in result.rows
                if r["kind"] == kind
                and r["status"] == "ok"
                and r[metric] is not None
            ]
            if done:
                slope = fits[metric]
                ax.loglog(
                    [r["T"] for r in done],
                    [r[metric] for r in done],
                    "o-",
                    label=f"{kind} (slope {slope:.2f})",
                )
        lengths = sorted({r["T"] for r in result.rows})
        ax.set_xscale("log", base=2)
        ax.set_xticks(
            lengths,
            [str(t) for t in lengths],
            rotation=45 if len(lengths) > 5 else 0,
        )
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set(xlabel="sequence length T", ylabel=label, title=label)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def write_outputs(result: BenchmarkResult, out_dir) -> dict[str, Path]:
    """Write results.csv, results.md and scaling.png; return their paths.

    They go into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "csv": out_dir / "results.csv",
        "markdown": out_dir / "results.md",
        "plot": out_dir / "scaling.png",
    }
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(result.rows[0]))
        writer.writeheader()
        writer.writerows(result.rows)
    files["markdown"].write_text(markdown_table(result))
    plot_scaling(result, files["plot"])
    return files
