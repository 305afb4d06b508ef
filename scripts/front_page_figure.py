"""Draw the front page's figure from the book's stored sweeps (week 6b).

    python scripts/front_page_figure.py [--out book/_static/addition_to_200_digits.png]

One-layer models trained on additions of 1…10 digits, tested to 200 digits:
position coupling against the sinusoidal and RoPE baselines with the same
model, data and budget. Every number comes from
``annotated/data/length_protocol_summary.csv``, the file week 6b reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotated.analysis.stored_sweeps import StoredSweeps  # noqa: E402

OUT = ROOT / "book" / "_static" / "addition_to_200_digits.png"
RUNS = {
    "addition_coupled": ["coupled_bias"],
    "addition_marked": ["sinusoidal", "rope"],
}
LABELS = {
    "coupled_bias": "position coupling",
    "sinusoidal": "sinusoidal (baseline)",
    "rope": "RoPE (baseline)",
}


def draw(out: Path = OUT) -> Path:
    sweeps = StoredSweeps()
    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    for task, encodings in RUNS.items():
        sweeps.plot(
            ax,
            task,
            encodings,
            "trained on 1…10 digits (left of the dashed line)",
            xscale="log",
            xlabel="digits per operand",
            labels=LABELS,
        )
    ax.set_ylabel("whole sums exactly right")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    print(draw(parser.parse_args().out))
