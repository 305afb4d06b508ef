"""Curves of a training run, and accuracy against length.

The run's history is an :class:`annotated.training.history.History`:
``.steps`` and ``.evals``, lists of dicts (one per logged step, one per
evaluated length and step). Every function draws onto the axes it is given
and returns them. Nothing here is drawn at import time.
"""

from __future__ import annotations

from annotated.figures.palette import encoding_color


def _rows_series(rows, key: str, **where):
    """Steps and values of ``key`` in the rows that match ``where``."""
    rows = [
        r
        for r in rows
        if r.get(key) is not None
        and all(r.get(k) == v for k, v in where.items())
    ]
    return [r["step"] for r in rows], [float(r[key]) for r in rows]


def loss_curves(history, ax, *, title: str | None = "loss"):
    """Training loss per step, held-out loss per length (log scale)."""
    ax.plot(
        *_rows_series(history.steps, "loss"), color="0.6", lw=1, label="train"
    )
    for length in sorted({r["length"] for r in history.evals}):
        ax.plot(
            *_rows_series(history.evals, "loss", length=length),
            marker="o",
            ms=3,
            label=f"eval n={length}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def accuracy_curves(
    history, ax, *, metric: str = "exact_match", title: str | None = None
):
    """Held-out ``metric`` against step, one line per length.

    ``metric`` is ``exact_match`` or ``token_accuracy``."""
    for length in sorted({r["length"] for r in history.evals}):
        ax.plot(
            *_rows_series(history.evals, metric, length=length),
            marker="o",
            ms=3,
            label=f"n={length}",
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or metric.replace("_", " "))
    ax.legend(fontsize=8)
    return ax


def grad_norm_curves(
    history, ax, *, title: str | None = "gradient norm (before clipping)"
):
    """Total and per-layer gradient norms against step (log scale)."""
    ax.plot(
        *_rows_series(history.steps, "grad_norm"),
        color="black",
        lw=1.5,
        label="total",
    )
    layers = [
        k
        for k in (history.steps[0] if history.steps else {})
        if k.startswith("grad_norm/")
    ]
    for key in layers:
        ax.plot(
            *_rows_series(history.steps, key),
            lw=0.8,
            label=key.split("/", 1)[1],
        )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖g‖₂")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return ax


def accuracy_vs_length(
    curves: dict,
    ax,
    *,
    train_length: int | None = None,
    ylabel: str = "exact match",
    title: str | None = "accuracy vs length",
):
    """Accuracy against problem length, one line per label.

    ``curves``: ``{label: (lengths, values)}`` or
    ``{label: (lengths, means, stds)}`` (error bars). A dashed line marks the
    training length: left of it is in distribution, right is extrapolation.
    """
    for label, curve in curves.items():
        lengths, values = curve[0], curve[1]
        errors = curve[2] if len(curve) > 2 else None
        ax.errorbar(
            lengths,
            values,
            yerr=errors,
            marker="o",
            ms=4,
            capsize=3,
            label=str(label),
            color=encoding_color(label, default=None),
        )
    if train_length is not None:
        ax.axvline(
            train_length, color="0.5", ls="--", lw=1, label="train length"
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("problem length n")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
