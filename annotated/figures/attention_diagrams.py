"""Diagrams of how attention computes.

Scaled dot-product attention with every operand's shape, heads split and
joined, and block-wise (flash) attention's tiles.

Drawn with :mod:`annotated.figures.drawing`; each function returns a
``Figure`` not registered with pyplot.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from annotated.figures.drawing import (
    K_COLOR,
    O_COLOR,
    Q_COLOR,
    S_COLOR,
    V_COLOR,
    arrow,
    box,
    canvas,
)


def qkv_diagram() -> Figure:
    """Scaled dot-product attention, every operand's shape, left to right."""
    fig, ax = canvas(9.0, 2.6, (-0.3, 19.0), (-0.9, 4.6))
    box(ax, 0, 1.0, 1.0, 2.4, "Q", color=Q_COLOR, shape="(Tq, d_k)")
    ax.text(1.5, 2.2, "·", ha="center", va="center", fontsize=20)
    box(ax, 2.0, 1.8, 2.8, 0.8, "Kᵀ", color=K_COLOR, shape="(d_k, Tk)")
    arrow(ax, (5.0, 2.2), (7.0, 2.2), "÷ √d_k, + mask")
    box(ax, 7.2, 1.0, 2.8, 2.4, "scores S", color=S_COLOR, shape="(Tq, Tk)")
    arrow(ax, (10.2, 2.2), (12.2, 2.2), "softmax\nover keys")
    box(
        ax,
        12.4,
        1.0,
        2.8,
        2.4,
        "weights A\nrows sum to 1",
        color=S_COLOR,
        shape="(Tq, Tk)",
        fontsize=9,
    )
    ax.text(15.6, 2.2, "·", ha="center", va="center", fontsize=20)
    box(ax, 16.0, 0.8, 0.9, 2.8, "V", color=V_COLOR, shape="(Tk, d_v)")
    arrow(ax, (17.0, 2.2), (17.7, 2.2))
    box(
        ax,
        17.8,
        1.0,
        0.9,
        2.4,
        "out",
        color=O_COLOR,
        shape="(Tq, d_v)",
        fontsize=9,
    )
    ax.text(
        9.3,
        4.2,
        "Attention(Q, K, V) = softmax(QKᵀ/√d_k + B) V",
        ha="center",
        fontsize=11,
    )
    return fig


def heads_diagram(n_heads: int = 4) -> Figure:
    """One (B, T, C) input split into H heads, attended apart, joined.

    Each head has size D = C / H."""
    fig, ax = canvas(9.5, 3.6, (-0.3, 19.5), (-1.2, 6.2))
    box(ax, 0, 1.5, 1.2, 3.0, "x", color="0.9", shape="(B, T, C)")
    for i, (name, color) in enumerate(
        (("q", Q_COLOR), ("k", K_COLOR), ("v", V_COLOR))
    ):
        y = 4.6 - 1.9 * i
        arrow(ax, (1.3, 3.0), (2.7, y - 0.5))
        box(
            ax,
            2.8,
            y - 1.2,
            1.6,
            1.4,
            f"{name} = x W_{name}",
            color=color,
            fontsize=8,
        )
    ax.text(
        3.6, -0.9, "each (B, T, C)", ha="center", fontsize=8, color="0.25"
    )
    arrow(ax, (4.6, 3.0), (6.2, 3.0), "view, transpose")
    width = 0.55
    for h in range(n_heads):
        x = 6.4 + h * (width + 0.25)
        box(ax, x, 1.5, width, 3.0, f"h{h + 1}", color=S_COLOR, fontsize=8)
    ax.text(
        6.4 + n_heads * (width + 0.25) / 2,
        1.0,
        "(B, H, T, D)",
        ha="center",
        fontsize=8,
        color="0.25",
    )
    x_attend = 6.6 + n_heads * (width + 0.25)
    arrow(ax, (x_attend - 0.2, 3.0), (x_attend + 2.0, 3.0), "attend per head")
    x_out = x_attend + 2.2
    for h in range(n_heads):
        box(ax, x_out + h * width, 1.5, width, 3.0, "", color=O_COLOR)
    ax.text(
        x_out + n_heads * width / 2,
        1.0,
        "(B, H, T, D)",
        ha="center",
        fontsize=8,
        color="0.25",
    )
    arrow(
        ax,
        (x_out + n_heads * width + 0.1, 3.0),
        (x_out + n_heads * width + 1.7, 3.0),
        "join, W_o",
    )
    box(
        ax,
        x_out + n_heads * width + 1.8,
        1.5,
        1.2,
        3.0,
        "out",
        color=O_COLOR,
        shape="(B, T, C)",
    )
    ax.text(
        9.5,
        5.7,
        f"H = {n_heads} heads of size D = C / H: "
        "the same parameters as one head of size C",
        ha="center",
        fontsize=10,
    )
    return fig


def tiling_diagram(n_blocks: int = 4, causal: bool = True) -> Figure:
    """Block-wise (flash) attention visits the score matrix tile by tile.

    One query block (highlighted row) streams over the key blocks left to
    right, keeping a running maximum m, a running sum l and an accumulator;
    tiles above the causal diagonal are skipped, and no (Tq, Tk) matrix is
    ever held.
    """
    fig, ax = canvas(9.0, 3.6, (-1.8, 19.0), (-1.4, 7.4))
    size = 1.4
    for i in range(n_blocks):
        for j in range(n_blocks):
            skipped = causal and j > i
            color = "white" if skipped else ("#fd8d3c" if i == 2 else S_COLOR)
            x, y = j * size, (n_blocks - 1 - i) * size
            ax.add_patch(
                Rectangle(
                    (x, y),
                    size,
                    size,
                    facecolor=color,
                    edgecolor="0.3",
                    lw=1,
                    hatch="//" if skipped else None,
                )
            )
    top = n_blocks * size
    ax.text(
        top / 2,
        top + 0.4,
        "key blocks (Tk / block) →",
        ha="center",
        fontsize=9,
    )
    ax.text(
        -0.3, top / 2, "query\nblocks", ha="right", va="center", fontsize=9
    )
    ax.text(
        top / 2,
        -0.7,
        "hatched: above the causal diagonal, never computed",
        ha="center",
        fontsize=8,
        color="0.3",
    )
    steps = [
        "for each key block j of query block i:",
        "  s = q_i · k_jᵀ / √D  (+ score_mod, mask_mod per tile)",
        "  m_new = max(m, rowmax(s))",
        "  l = l·exp(m − m_new) + rowsum(exp(s − m_new))",
        "  acc = acc·exp(m − m_new) + exp(s − m_new) · v_j",
        "out_i = acc / l      memory O(T · block), not O(T²)",
    ]
    for k, line in enumerate(steps):
        ax.text(
            7.2,
            top - 0.3 - k * 0.95,
            line,
            fontsize=9,
            family="monospace",
            va="top",
        )
    return fig
