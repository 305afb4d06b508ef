"""Diagrams of what a model is trained and tested on.

Next-character prediction, and the length-generalisation protocol.

Drawn with :mod:`annotated.figures.drawing`; each function returns a
``Figure`` not registered with pyplot.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from annotated.figures.drawing import (
    O_COLOR,
    Q_COLOR,
    arrow,
    box,
    canvas,
)


def next_character_diagram(text: str = "ROMEO:\nWhat") -> Figure:
    """A window of characters, and its targets: the window shifted by one."""
    shown = [c if c != "\n" else "\\n" for c in text]
    n = len(shown) - 1
    fig, ax = canvas(9.0, 2.8, (-2.6, n * 1.1 + 0.6), (-1.9, 3.6))
    for t in range(n):
        x = t * 1.1
        box(ax, x, 1.6, 1.0, 1.0, shown[t], color=Q_COLOR)
        box(ax, x, -0.6, 1.0, 1.0, shown[t + 1], color=O_COLOR)
        arrow(ax, (x + 0.5, 1.55), (x + 0.5, 0.45))
    ax.text(-0.3, 2.1, "input x₁…x_T", ha="right", va="center", fontsize=9)
    ax.text(
        -0.3, -0.1, "target x₂…x_T+1", ha="right", va="center", fontsize=9
    )
    ax.text(
        n * 0.55,
        3.2,
        "every position predicts the next character "
        "from those up to it (causal mask)",
        ha="center",
        fontsize=9.5,
    )
    ax.text(
        n * 0.55,
        -1.5,
        "loss = mean over positions of −ln p(target)  (nats)",
        ha="center",
        fontsize=9,
        color="0.2",
    )
    return fig


def protocol_diagram(high: int = 8, positions: int = 32) -> Figure:
    """The papers' protocol: train on short problems, test on longer ones.

    Lengths drawn from 1…L in training, every length to 2L in testing,
    positions either 0…T−1 or a sorted random draw from a longer range
    (randomized)."""
    import torch

    from annotated.positional.randomized import sample_sorted_positions

    fig, ax = canvas(10.0, 2.9, (-4.2, 2 * high + 1.0), (-2.1, 3.6))
    for n in range(1, 2 * high + 1):
        trained = n <= high
        box(
            ax,
            n - 0.45,
            1.2,
            0.9,
            0.9,
            str(n),
            color=Q_COLOR if trained else O_COLOR,
            fontsize=9,
        )
    ax.text(-0.2, 1.65, "length n", ha="right", va="center", fontsize=9)
    ax.text(
        (high + 1) / 2,
        2.6,
        f"training: n drawn from 1…{high} every step,\n"
        "until held-out exact match ≥ target",
        ha="center",
        fontsize=9,
    )
    ax.text(
        high + (high + 1) / 2,
        2.6,
        f"testing: every n up to {2 * high},\n"
        "512 fresh problems each, Wilson intervals",
        ha="center",
        fontsize=9,
    )
    ax.plot([high + 0.5, high + 0.5], [0.9, 3.4], color="0.4", ls="--", lw=1)
    draw = sample_sorted_positions(
        1, high, positions, torch.Generator().manual_seed(0)
    )[0].tolist()
    for row, (label, ids) in enumerate(
        [
            ("0 … T−1", list(range(high))),
            (f"randomized, from range({positions})", draw),
        ]
    ):
        y = -0.4 - row * 1.25
        ax.text(-0.2, y + 0.45, label, ha="right", va="center", fontsize=9)
        for t, i in enumerate(ids):
            box(ax, t + 0.55, y, 0.9, 0.9, str(i), color="white", fontsize=8)
    ax.text(
        high + 1.2,
        -0.85,
        "positions of one sequence of 8 tokens:\n"
        "randomized draws them again for\n"
        "every sequence, in training and test",
        va="center",
        fontsize=8.5,
        color="0.2",
    )
    return fig
