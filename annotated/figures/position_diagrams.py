"""Diagrams of positions.

Where each positional encoding acts in a layer, and three ways to number the
tokens of an addition.

Drawn with :mod:`annotated.figures.drawing`; each function returns a
``Figure`` not registered with pyplot.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from annotated.figures.drawing import (
    K_COLOR,
    Q_COLOR,
    V_COLOR,
    arrow,
    box,
    canvas,
)


def positional_diagram() -> Figure:
    """The place in a layer where each positional encoding acts."""
    fig, ax = canvas(9.5, 3.0, (-0.3, 19.3), (0.0, 6.4))
    stages = [
        ("token\nembedding", 0.0),
        ("q, k, v\nprojections", 4.6),
        ("scores\nq·k / √D", 9.2),
        ("softmax,\n· v", 13.8),
    ]
    for label, x in stages:
        box(ax, x, 2.2, 3.0, 1.6, label, color="0.92", fontsize=9)
    for (_, x0), (_, x1) in zip(stages, stages[1:]):
        arrow(ax, (x0 + 3.05, 3.0), (x1 - 0.05, 3.0))
    notes = [
        (
            1.5,
            "+ p(position)\nsinusoidal, learned,\nrandomized, Abacus",
            Q_COLOR,
        ),
        (6.1, "rotate q and k\nby their position\nRoPE", K_COLOR),
        (10.7, "+ b(m − n) per head\nALiBi, T5 bias\n(a score_mod)", V_COLOR),
    ]
    for x, text, color in notes:
        ax.text(
            x,
            5.2,
            text,
            ha="center",
            va="center",
            fontsize=8.5,
            bbox={
                "boxstyle": "round",
                "facecolor": color,
                "edgecolor": "0.4",
            },
        )
        arrow(ax, (x, 4.45), (x, 3.85))
    ax.text(
        15.3,
        5.2,
        "NoPE: nothing —\nonly the causal mask\ntells order",
        ha="center",
        va="center",
        fontsize=8.5,
        bbox={
            "boxstyle": "round",
            "facecolor": "white",
            "edgecolor": "0.4",
            "ls": "--",
        },
    )
    ax.text(
        9.6,
        0.6,
        "absolute encodings act on x before the layer; "
        "relative ones act inside attention",
        ha="center",
        fontsize=9.5,
        color="0.2",
    )
    return fig


def position_ids_diagram(a: int = 472, b: int = 351) -> Figure:
    """Three ways to number the tokens of ``a + b``.

    The numbers are reversed and end-marked; the ids are the tasks' own:
    ``0 … T−1``, Abacus places and coupled significances."""
    import torch

    from annotated.tasks.extrapolation import (
        ReversedAdditionTask,
        digit_places,
    )

    task = ReversedAdditionTask(end_marker=True, position_ids="coupled")
    n = len(str(max(a, b)))
    marker, plus, equals = (task.token_id(k) for k in ("$", "+", "="))
    a_rev, b_rev = ([int(c) for c in str(x).zfill(n)[::-1]] for x in (a, b))
    # (1, P): a_rev 0 $ + b_rev 0 $
    prompt = torch.tensor([a_rev + [0, marker, plus] + b_rev + [0, marker]])
    # (1, L): the whole sequence
    s = torch.cat(
        [prompt, torch.tensor([[equals]]), task.solve(prompt)], dim=1
    )
    names = [task.token_names[i] for i in s[0].tolist()]
    rows = [
        ("0 … T−1", list(range(len(names)))),
        (
            "Abacus",
            digit_places(s, torch.arange(task.vocab_size) < 10)[0].tolist(),
        ),
        ("coupled", task.ids(s)[0].tolist()),
    ]
    width = len(names)
    fig, ax = canvas(10.0, 2.7, (-2.4, width + 0.1), (-2.6, 2.5))
    palette = [
        "#f0f0f0",
        "#9ecae1",
        "#fdae6b",
        "#a1d99b",
        "#dadaeb",
        "#fcbba1",
        "#c6dbef",
    ]
    for t, name in enumerate(names):
        box(ax, t, 1.0, 0.9, 0.9, name, color="0.92", fontsize=9)
    ax.text(-0.3, 1.45, "token", ha="right", va="center", fontsize=9)
    for r, (label, ids) in enumerate(rows):
        y = -0.2 - r * 1.1
        ax.text(-0.3, y + 0.45, label, ha="right", va="center", fontsize=9)
        for t, i in enumerate(ids):
            color = (
                palette[i % len(palette)] if label == "coupled" else "white"
            )
            box(ax, t, y, 0.9, 0.9, str(i), color=color, fontsize=8)
    ax.text(
        width / 2,
        2.15,
        f"{a} + {b} = {a + b}, every number least significant digit first, "
        "an end marker per operand",
        ha="center",
        fontsize=9.5,
    )
    return fig
