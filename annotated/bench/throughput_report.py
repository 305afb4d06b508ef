"""The throughput benchmark's table and files.

Per size, milliseconds per step and tokens per second of the reference, the
library and the training loop, and their time ratios.
"""

from __future__ import annotations

import csv
from pathlib import Path

# header -> (row key, format)
TABLE_COLUMNS = {
    "reference ms": ("reference_ms", ".2f"),
    "library ms": ("library_ms", ".2f"),
    "library / reference": ("library_vs_reference", ".3f"),
    "train() ms": ("train_loop_ms", ".2f"),
    "train() / reference": ("train_loop_vs_reference", ".3f"),
    "reference tok/s": ("reference_tokens_per_s", ",.0f"),
    "library tok/s": ("library_tokens_per_s", ",.0f"),
    "train() tok/s": ("train_loop_tokens_per_s", ",.0f"),
}


def throughput_table(rows: list[dict]) -> str:
    """Markdown: per size, ms per step, tokens/s and time ratios.

    Of the reference, the library and the loop."""
    head = (
        "| size | L × C × T × B | parameters | "
        + " | ".join(TABLE_COLUMNS)
        + " |"
    )
    lines = [head, "|---" * (len(TABLE_COLUMNS) + 3) + "|"]
    for r in rows:
        cells = [
            r["size"],
            f"{r['layers']} × {r['width']} × {r['context']} × {r['batch']}",
            f"{r['parameters']:,}",
        ]
        cells += [
            "—" if r[key] is None else format(r[key], fmt)
            for key, fmt in TABLE_COLUMNS.values()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        r = rows[0]
        lines.append(
            f"\nMedian of {r['repeats']} runs of {r['steps']} steps after "
            f"{r['warmup']} warm-up steps, one torch thread, {r['timer']} "
            f"clock, torch {r['torch']}; positions: {r['positional']}. "
            "A ratio below 1 means faster than the reference. train(): the "
            "library's whole loop per step (data, schedule, gradient norms, "
            "clipping, divergence guard)."
        )
    return "\n".join(lines) + "\n"


def write_throughput(rows: list[dict], out_dir) -> dict[str, Path]:
    """Write throughput.csv and throughput.md; return their paths.

    They go into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"csv": out / "throughput.csv", "md": out / "throughput.md"}
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    files["md"].write_text(throughput_table(rows))
    return files
