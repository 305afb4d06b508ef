"""The parts the chapters' diagrams are drawn with.

A blank canvas, labelled boxes, arrows and grids of cells, and one colour per
operand.

Every diagram (:mod:`annotated.figures.attention_diagrams`,
:mod:`~annotated.figures.pattern_diagrams`,
:mod:`~annotated.figures.position_diagrams`,
:mod:`~annotated.figures.task_diagrams`) returns a matplotlib ``Figure``
that is not registered with pyplot (a notebook shows it as a cell's last
value, or through :func:`~annotated.figures.viz.figure_image`;
:func:`~annotated.figures.viz.figure_png` renders it anywhere). The shapes
they write follow the book's legend: B batch, T time, H heads, D head dim,
C model dim; scores are (B, H, Tq, Tk). Nothing is drawn at import time.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from annotated.figures.viz import new_figure

# queries, keys, values, scores (and weights), outputs
Q_COLOR, K_COLOR, V_COLOR, S_COLOR, O_COLOR = (
    "#9ecae1",
    "#fdae6b",
    "#a1d99b",
    "#dadaeb",
    "#fcbba1",
)


def canvas(
    width: float, height: float, xlim: tuple, ylim: tuple
) -> tuple[Figure, object]:
    """A ``width`` × ``height`` inch figure, one frameless axes filling it.

    The axes have equal aspect and data limits ``xlim`` and ``ylim``."""
    fig = new_figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax, x, y, w, h, label="", *, color="white", shape="", fontsize=10):
    """A rectangle at (x, y), its label inside and its shape below.

    (x, y) is the lower-left corner."""
    ax.add_patch(
        Rectangle((x, y), w, h, facecolor=color, edgecolor="0.2", lw=1)
    )
    if label:
        ax.text(
            x + w / 2,
            y + h / 2,
            label,
            ha="center",
            va="center",
            fontsize=fontsize,
        )
    if shape:
        ax.text(
            x + w / 2,
            y - 0.25,
            shape,
            ha="center",
            va="top",
            fontsize=max(fontsize - 2, 8),
            color="0.25",
        )


def arrow(ax, start, end, label="", *, fontsize=8):
    """An arrow from ``start`` to ``end``, its label above the middle."""
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=12, color="0.3", lw=1
        )
    )
    if label:
        ax.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 + 0.15,
            label,
            ha="center",
            va="bottom",
            fontsize=fontsize,
            color="0.2",
        )


def cell_grid(ax, x, y, cell, keep, *, on="0.25", off="white", edge="0.6"):
    """Draw a boolean matrix ``keep[i][j]`` as cells of side ``cell``.

    Rows are queries, top to bottom; (x, y) is the lower-left corner."""
    rows = len(keep)
    for i, row in enumerate(keep):
        for j, visible in enumerate(row):
            ax.add_patch(
                Rectangle(
                    (x + j * cell, y + (rows - 1 - i) * cell),
                    cell,
                    cell,
                    facecolor=on if visible else off,
                    edgecolor=edge,
                    lw=0.5,
                )
            )
