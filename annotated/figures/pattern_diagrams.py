"""Diagrams of who attends to whom, as grids of cells.

Rows are queries, columns keys: the masks of GPT, BERT and T5, and the pattern
each head score rewards.

Drawn with :mod:`annotated.figures.drawing`; each function returns a
``Figure`` not registered with pyplot.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from annotated.figures.drawing import canvas, cell_grid


def architecture_masks_diagram(n: int = 5) -> Figure:
    """Which query may see which key in GPT, BERT and T5.

    T5 has three: encoder, decoder and cross-attention."""
    fig, ax = canvas(10.0, 2.8, (-0.5, 31.5), (-2.0, 7.3))
    causal = [[j <= i for j in range(n)] for i in range(n)]
    full = [[True] * n for _ in range(n)]
    panels = [
        ("GPT (decoder-only)", "causal", causal),
        ("BERT (encoder-only)", "bidirectional", full),
        ("T5 encoder", "bidirectional", full),
        ("T5 decoder self", "causal", causal),
        ("T5 cross-attention", "decoder → encoder", full),
    ]
    for p, (title, subtitle, keep) in enumerate(panels):
        x = p * 6.4
        color = "#3182bd" if p < 2 else "#e6550d"
        cell_grid(ax, x, 0.0, 1.0, keep, on=color)
        ax.text(x + n / 2, n + 1.4, title, ha="center", fontsize=9)
        ax.text(
            x + n / 2, n + 0.5, subtitle, ha="center", fontsize=8, color="0.3"
        )
    ax.text(
        15.5,
        -1.3,
        "rows: queries (top = first token); columns: keys; "
        "filled: may attend",
        ha="center",
        fontsize=9,
        color="0.2",
    )
    return fig


def head_roles_diagram(text: str = "to be to be") -> Figure:
    """The attention pattern each head score rewards, on one short text.

    Query rows, key columns; filled: where the score counts the weight."""
    chars = list(text)
    n = len(chars)
    same = [
        [j < i and chars[j] == chars[i] for j in range(n)] for i in range(n)
    ]
    panels = [
        (
            "previous token",
            [[j == i - 1 for j in range(n)] for i in range(n)],
        ),
        ("same character", same),
        (
            "delimiter",
            [
                [j <= i and chars[j] == " " for j in range(n)]
                for i in range(n)
            ],
        ),
        ("first position", [[j == 0 for j in range(n)] for i in range(n)]),
        (
            "induction",
            [
                [
                    j >= 1 and j < i and chars[j - 1] == chars[i]
                    for j in range(n)
                ]
                for i in range(n)
            ],
        ),
    ]
    cell = 0.5
    shown = [c if c != " " else "␣" for c in chars]  # a space made visible
    fig, ax = canvas(
        10.0, 3.0, (-0.6, 5 * (n * cell + 1.2)), (-1.4, n * cell + 1.4)
    )
    for p, (title, keep) in enumerate(panels):
        x = p * (n * cell + 1.2)
        cell_grid(ax, x, 0.0, cell, keep, on="#3182bd")
        for k, char in enumerate(shown):  # keys along the top, queries left
            ax.text(x + (k + 0.5) * cell, n * cell + 0.08, char,
                    ha="center", va="bottom", fontsize=6.5)  # fmt: skip
            ax.text(x - 0.08, (n - 0.5 - k) * cell, char,
                    ha="right", va="center", fontsize=6.5)  # fmt: skip
        ax.text(
            x + n * cell / 2, n * cell + 0.75, title, ha="center", fontsize=9
        )
    ax.text(
        5 * (n * cell + 1.2) / 2 - 0.6,
        -0.9,
        f"the text {text!r} (␣ = space): rows are queries, columns keys; "
        "filled = the score counts that weight",
        ha="center",
        fontsize=8.5,
        color="0.2",
    )
    return fig
