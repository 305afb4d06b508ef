"""The stored modern-transformer sweeps, recipe by recipe.

Two shipped configs train nanoGPT's CPU budget on Tiny Shakespeare
(2,000 steps of 12 × 64 characters): ``modern_recipe`` crosses nanoGPT's
block with the modern one and AdamW with Muon; ``modern_ablation`` adds the
modern block's changes to nanoGPT's one at a time, alone and one after
another. ``scripts/collect_curves.py`` stores each run's validation curve
with the training seconds at each evaluation
(``annotated/data/<sweep>_curves.csv``), ``collect_length_sweep.py`` its
summary row (parameters, …) and the sweep's provenance.

:data:`RECIPES` names every recipe by the sweep and grid values that ran
it; :func:`load_curves` reads them back, :func:`reach` says when a curve
first reaches a loss, :func:`recipe_rows` makes the chapter's table and
:func:`time_figure` its validation-against-seconds figure.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from annotated.analysis.intervals import t_interval
from annotated.lab.tables import read_csv

DATA = Path(__file__).parent.parent / "data"
BASELINE = "nanoGPT"
# label → (sweep, the grid values that select its runs)
RECIPES = {
    BASELINE: ("modern_ablation", {"variant": "base"}),
    "+ RMSNorm": ("modern_ablation", {"variant": "rmsnorm"}),
    "+ SwiGLU": ("modern_ablation", {"variant": "swiglu"}),
    "+ RoPE": ("modern_ablation", {"variant": "rope"}),
    "+ QK-norm": ("modern_ablation", {"variant": "qk_norm"}),
    "+ zero-init": ("modern_ablation", {"variant": "zero_init"}),
    "+ untied head": ("modern_ablation", {"variant": "untied"}),
    "+ Muon": (
        "modern_recipe",
        {"model.norm_type": "layernorm", "train.optimizer": "muon"},
    ),
    "RMSNorm, SwiGLU": ("modern_ablation", {"variant": "upto_swiglu"}),
    "… + RoPE": ("modern_ablation", {"variant": "upto_rope"}),
    "… + QK-norm": ("modern_ablation", {"variant": "upto_qk_norm"}),
    "… + zero-init": ("modern_ablation", {"variant": "upto_zero_init"}),
    "… + untied head": ("modern_ablation", {"variant": "upto_untied"}),
    "… + lr 2e-3": (
        "modern_recipe",
        {"model.norm_type": "rmsnorm", "train.optimizer": "adamw"},
    ),
    "… + Muon": (
        "modern_recipe",
        {"model.norm_type": "rmsnorm", "train.optimizer": "muon"},
    ),
}
ALONE = [label for label in RECIPES if label.startswith("+ ")]
LADDER = ["+ RMSNorm"] + [
    label for label in RECIPES if label.startswith(("RMSNorm", "…"))
]


def _select(rows: list[dict], values: dict) -> list[dict]:
    return [
        row
        for row in rows
        if all(str(row.get(k)) == str(v) for k, v in values.items())
    ]


def load_curves(data=DATA) -> dict[str, dict[int, list[tuple]]]:
    """Recipe label → seed → ``[(step, val_loss, train_seconds), …]``."""
    tables = {}
    curves: dict[str, dict[int, list[tuple]]] = {}
    for label, (sweep, values) in RECIPES.items():
        if sweep not in tables:
            tables[sweep] = read_csv(Path(data) / f"{sweep}_curves.csv")
        seeds = defaultdict(list)
        for row in _select(tables[sweep], values):
            seeds[int(row["seed"])].append(
                (int(row["step"]), row["val_loss"], row["train_seconds"])
            )
        curves[label] = {s: sorted(c) for s, c in sorted(seeds.items())}
    return curves


def load_parameters(data=DATA) -> dict[str, int]:
    """Recipe label → its parameter count (from the sweeps' summaries)."""
    counts = {}
    for label, (sweep, values) in RECIPES.items():
        rows = read_csv(Path(data) / f"{sweep}_summary.csv")
        runs = [r for r in _select(rows, values) if r["kind"] == "run"]
        counts[label] = int(runs[0]["parameters"])
    return counts


def load_step_cost(data=DATA) -> dict[str, float]:
    """Recipe label → ms per training step, measured on a quiet machine
    (``scripts/recipe_step_cost.py``)."""
    rows = read_csv(Path(data) / "modern_step_cost.csv")
    return {row["recipe"]: float(row["ms_per_step"]) for row in rows}


def reach(curve: list[tuple], target: float) -> tuple[float, float]:
    """``(steps, seconds)`` until the validation loss first reaches
    ``target``, interpolated linearly between evaluations (from step 0 at
    0 s); ``(inf, inf)`` when it never does."""
    before = None
    for step, loss, seconds in curve:
        if loss <= target:
            if before is None:
                return float(step), float(seconds)
            share = (before[1] - target) / (before[1] - loss)
            return (
                before[0] + share * (step - before[0]),
                before[2] + share * (seconds - before[2]),
            )
        before = (step, loss, seconds)
    return math.inf, math.inf


def recipe_rows(
    curves: dict, parameters: dict, step_ms: dict | None = None
) -> list[dict]:
    """One row per recipe: validation at the last step (mean and 95%
    t-interval over seeds), mean steps and seconds to reach the
    baseline's mean final validation, parameters and ms per step.

    With ``step_ms`` (label → ms per step, :func:`load_step_cost`) the
    seconds are steps × that cost; without it, the training seconds the
    sweep's runs logged."""
    finals = {k: [c[-1][1] for c in v.values()] for k, v in curves.items()}
    target = sum(finals[BASELINE]) / len(finals[BASELINE])
    rows = []
    for label, seeds in curves.items():
        mean, low, high = t_interval(finals[label])
        if label == BASELINE:  # its own final loss: reached at its end
            reached = [curve[-1][::2] for curve in seeds.values()]
        else:
            reached = [reach(curve, target) for curve in seeds.values()]
        steps = sum(r[0] for r in reached) / len(reached)
        seconds = sum(r[1] for r in reached) / len(reached)
        if step_ms is None:
            last = [curve[-1] for curve in seeds.values()]
            ms = 1000 * sum(s / step for step, _, s in last) / len(last)
        else:
            ms = step_ms[label]
            seconds = steps * ms / 1000
        rows.append(
            {
                "recipe": label,
                "seeds": len(seeds),
                "val": mean,
                "val_lo": low,
                "val_hi": high,
                "steps_to_target": steps,
                "seconds_to_target": seconds,
                "parameters": parameters[label],
                "ms_per_step": ms,
            }
        )
    return rows


def time_figure(curves: dict, labels: list[str], ax, step_ms=None):
    """Mean validation loss over seeds against training seconds (steps ×
    ``step_ms[label]`` / 1000, or the sweep's logged seconds), one curve
    per recipe in ``labels``, with the baseline's final loss as a dashed
    line; returns ``ax``."""
    for label in labels:
        seeds = list(curves[label].values())
        points = list(zip(*seeds))  # one tuple per evaluation
        seconds = [sum(p[2] for p in ev) / len(ev) for ev in points]
        if step_ms is not None:
            seconds = [ev[0][0] * step_ms[label] / 1000 for ev in points]
        losses = [sum(p[1] for p in ev) / len(ev) for ev in points]
        ax.plot(seconds, losses, "o-", ms=3, label=label)
    base = [c[-1][1] for c in curves[BASELINE].values()]
    mean = sum(base) / len(base)
    ax.axhline(
        mean, color="black", ls="--", lw=1, label=f"{BASELINE}: {mean:.3f}"
    )
    ax.set(xlabel="training time (s, one thread)", ylabel="validation loss")
    ax.legend(fontsize=8)
    return ax
