"""Conceptual diagrams, one per chapter, drawn by code so they are versioned
and re-drawable.

Each function returns a matplotlib ``Figure`` that is not registered with
pyplot (a notebook shows it as a cell's last value; ``viz.figure_png`` renders
it anywhere). The shapes follow the book's legend: B batch, T time, H heads, D
head dim, C model dim; scores are (B, H, Tq, Tk). Nothing is drawn at import
time.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from annotated.figures.viz import new_figure

Q_COLOR, K_COLOR, V_COLOR, S_COLOR, O_COLOR = (
    "#9ecae1",
    "#fdae6b",
    "#a1d99b",
    "#dadaeb",
    "#fcbba1",
)


def _canvas(
    width: float, height: float, xlim: tuple, ylim: tuple
) -> tuple[Figure, object]:
    fig = new_figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _box(ax, x, y, w, h, label="", *, color="white", shape="", fontsize=10):
    """A rectangle with its lower-left corner at (x, y), a label inside and a
    shape below."""
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


def _arrow(ax, start, end, label="", *, fontsize=8):
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


def _grid(ax, x, y, cell, keep, *, on="0.25", off="white", edge="0.6"):
    """Draw a boolean matrix ``keep[i][j]`` (rows = queries, top to bottom) as
    cells."""
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


def qkv_diagram() -> Figure:
    """Week 1: scaled dot-product attention with every operand's shape, left
    to right."""
    fig, ax = _canvas(9.0, 2.6, (-0.3, 19.0), (-0.9, 4.6))
    _box(ax, 0, 1.0, 1.0, 2.4, "Q", color=Q_COLOR, shape="(Tq, d_k)")
    ax.text(1.5, 2.2, "·", ha="center", va="center", fontsize=20)
    _box(ax, 2.0, 1.8, 2.8, 0.8, "Kᵀ", color=K_COLOR, shape="(d_k, Tk)")
    _arrow(ax, (5.0, 2.2), (7.0, 2.2), "÷ √d_k, + mask")
    _box(ax, 7.2, 1.0, 2.8, 2.4, "scores S", color=S_COLOR, shape="(Tq, Tk)")
    _arrow(ax, (10.2, 2.2), (12.2, 2.2), "softmax\nover keys")
    _box(
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
    _box(ax, 16.0, 0.8, 0.9, 2.8, "V", color=V_COLOR, shape="(Tk, d_v)")
    _arrow(ax, (17.0, 2.2), (17.7, 2.2))
    _box(
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
    """Week 2: one (B, T, C) input split into H heads of size D = C / H,
    attended apart, joined."""
    fig, ax = _canvas(9.5, 3.6, (-0.3, 19.5), (-1.2, 6.2))
    _box(ax, 0, 1.5, 1.2, 3.0, "x", color="0.9", shape="(B, T, C)")
    for i, (name, color) in enumerate(
        (("q", Q_COLOR), ("k", K_COLOR), ("v", V_COLOR))
    ):
        y = 4.6 - 1.9 * i
        _arrow(ax, (1.3, 3.0), (2.7, y - 0.5))
        _box(
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
    _arrow(ax, (4.6, 3.0), (6.2, 3.0), "view, transpose")
    width = 0.55
    for h in range(n_heads):
        x = 6.4 + h * (width + 0.25)
        _box(ax, x, 1.5, width, 3.0, f"h{h + 1}", color=S_COLOR, fontsize=8)
    ax.text(
        6.4 + n_heads * (width + 0.25) / 2,
        1.0,
        "(B, H, T, D)",
        ha="center",
        fontsize=8,
        color="0.25",
    )
    x_attend = 6.6 + n_heads * (width + 0.25)
    _arrow(
        ax, (x_attend - 0.2, 3.0), (x_attend + 2.0, 3.0), "attend per head"
    )
    x_out = x_attend + 2.2
    for h in range(n_heads):
        _box(ax, x_out + h * width, 1.5, width, 3.0, "", color=O_COLOR)
    ax.text(
        x_out + n_heads * width / 2,
        1.0,
        "(B, H, T, D)",
        ha="center",
        fontsize=8,
        color="0.25",
    )
    _arrow(
        ax,
        (x_out + n_heads * width + 0.1, 3.0),
        (x_out + n_heads * width + 1.7, 3.0),
        "join, W_o",
    )
    _box(
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
        f"H = {n_heads} heads of size D = C / H: the same parameters as one head of size C",
        ha="center",
        fontsize=10,
    )
    return fig


def positional_diagram() -> Figure:
    """Week 3: the place in a layer where each positional encoding acts."""
    fig, ax = _canvas(9.5, 3.0, (-0.3, 19.3), (0.0, 6.4))
    stages = [
        ("token\nembedding", 0.0),
        ("q, k, v\nprojections", 4.6),
        ("scores\nq·k / √D", 9.2),
        ("softmax,\n· v", 13.8),
    ]
    for label, x in stages:
        _box(ax, x, 2.2, 3.0, 1.6, label, color="0.92", fontsize=9)
    for (_, x0), (_, x1) in zip(stages, stages[1:]):
        _arrow(ax, (x0 + 3.05, 3.0), (x1 - 0.05, 3.0))
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
        _arrow(ax, (x, 4.45), (x, 3.85))
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
        "absolute encodings act on x before the layer; relative ones act inside attention",
        ha="center",
        fontsize=9.5,
        color="0.2",
    )
    return fig


def architecture_masks_diagram(n: int = 5) -> Figure:
    """Week 4: which query may see which key in GPT, BERT and T5 (encoder,
    decoder, cross)."""
    fig, ax = _canvas(10.0, 2.8, (-0.5, 31.5), (-2.0, 7.3))
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
        _grid(ax, x, 0.0, 1.0, keep, on="#3182bd" if p < 2 else "#e6550d")
        ax.text(x + n / 2, n + 1.4, title, ha="center", fontsize=9)
        ax.text(
            x + n / 2, n + 0.5, subtitle, ha="center", fontsize=8, color="0.3"
        )
    ax.text(
        15.5,
        -1.3,
        "rows: queries (top = first token); columns: keys; filled: may attend",
        ha="center",
        fontsize=9,
        color="0.2",
    )
    return fig


def next_character_diagram(text: str = "ROMEO:\nWhat") -> Figure:
    """Week 5: a window of characters and its targets, the same window shifted
    by one."""
    shown = [c if c != "\n" else "\\n" for c in text]
    n = len(shown) - 1
    fig, ax = _canvas(9.0, 2.8, (-2.6, n * 1.1 + 0.6), (-1.9, 3.6))
    for t in range(n):
        x = t * 1.1
        _box(ax, x, 1.6, 1.0, 1.0, shown[t], color=Q_COLOR)
        _box(ax, x, -0.6, 1.0, 1.0, shown[t + 1], color=O_COLOR)
        _arrow(ax, (x + 0.5, 1.55), (x + 0.5, 0.45))
    ax.text(-0.3, 2.1, "input x₁…x_T", ha="right", va="center", fontsize=9)
    ax.text(
        -0.3, -0.1, "target x₂…x_T+1", ha="right", va="center", fontsize=9
    )
    ax.text(
        n * 0.55,
        3.2,
        "every position predicts the next character from those up to it (causal mask)",
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


def tiling_diagram(n_blocks: int = 4, causal: bool = True) -> Figure:
    """Week 7: block-wise (flash) attention visits the score matrix tile by
    tile.

    One query block (highlighted row) streams over the key blocks left to
    right, keeping a running maximum m, a running sum l and an accumulator;
    tiles above the causal diagonal are skipped, and no (Tq, Tk) matrix is
    ever held.
    """
    fig, ax = _canvas(9.0, 3.6, (-1.8, 19.0), (-1.4, 7.4))
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


def protocol_diagram(high: int = 8, positions: int = 32) -> Figure:
    """Week 6: the papers' protocol — lengths drawn from 1…L in training,
    every length to 2L in testing, positions either 0…T−1 or a sorted random
    draw from a longer range (randomized)."""
    import torch

    from annotated.positional.randomized import sample_sorted_positions

    fig, ax = _canvas(10.0, 2.9, (-4.2, 2 * high + 1.0), (-2.1, 3.6))
    for n in range(1, 2 * high + 1):
        trained = n <= high
        _box(
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
        f"training: n drawn from 1…{high} every step,\nuntil held-out exact match ≥ target",
        ha="center",
        fontsize=9,
    )
    ax.text(
        high + (high + 1) / 2,
        2.6,
        f"testing: every n up to {2 * high},\n512 fresh problems each, Wilson intervals",
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
            _box(ax, t + 0.55, y, 0.9, 0.9, str(i), color="white", fontsize=8)
    ax.text(
        high + 1.2,
        -0.85,
        "positions of one sequence of 8 tokens:\nrandomized draws them again for\nevery "
        "sequence, in training and test",
        va="center",
        fontsize=8.5,
        color="0.2",
    )
    return fig


def position_ids_diagram(a: int = 472, b: int = 351) -> Figure:
    """Week 6, part 2: three ways to number the tokens of ``a + b``, reversed
    and end-marked (the ids are the tasks' own: ``0 … T−1``, Abacus places and
    coupled significances)."""
    import torch

    from annotated.tasks.extrapolation import (
        ReversedAdditionTask,
        digit_places,
    )

    task = ReversedAdditionTask(end_marker=True, position_ids="coupled")
    n = len(str(max(a, b)))
    marker, plus, equals = (task.token_id(k) for k in ("$", "+", "="))
    prompt = torch.tensor(
        [
            [int(c) for c in str(a).zfill(n)[::-1]]
            + [0, marker, plus]
            # (1, P)
            + [int(c) for c in str(b).zfill(n)[::-1]]
            + [0, marker]
        ]
    )
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
    fig, ax = _canvas(10.0, 2.7, (-2.4, width + 0.1), (-2.6, 2.5))
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
        _box(ax, t, 1.0, 0.9, 0.9, name, color="0.92", fontsize=9)
    ax.text(-0.3, 1.45, "token", ha="right", va="center", fontsize=9)
    for r, (label, ids) in enumerate(rows):
        y = -0.2 - r * 1.1
        ax.text(-0.3, y + 0.45, label, ha="right", va="center", fontsize=9)
        for t, i in enumerate(ids):
            color = (
                palette[i % len(palette)] if label == "coupled" else "white"
            )
            _box(ax, t, y, 0.9, 0.9, str(i), color=color, fontsize=8)
    ax.text(
        width / 2,
        2.15,
        f"{a} + {b} = {a + b}, every number least significant digit first, an end marker per operand",
        ha="center",
        fontsize=9.5,
    )
    return fig


def head_roles_diagram(text: str = "to be to be") -> Figure:
    """Week 8: the attention pattern each head score rewards, on one short
    text (query rows, key columns; filled: where the score counts the
    weight)."""
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
    fig, ax = _canvas(
        10.0, 2.7, (-0.6, 5 * (n * cell + 1.2)), (-1.4, n * cell + 1.3)
    )
    for p, (title, keep) in enumerate(panels):
        x = p * (n * cell + 1.2)
        _grid(ax, x, 0.0, cell, keep, on="#3182bd")
        ax.text(
            x + n * cell / 2, n * cell + 0.45, title, ha="center", fontsize=9
        )
    ax.text(
        5 * (n * cell + 1.2) / 2 - 0.6,
        -0.9,
        f"the text {text!r}: rows are queries (top = first character), "
        "columns keys; filled = the score counts that weight",
        ha="center",
        fontsize=8.5,
        color="0.2",
    )
    return fig


DIAGRAMS = {
    "01_attention": qkv_diagram,
    "02_multi_head": heads_diagram,
    "03_positional_encodings": positional_diagram,
    "04_architectures": architecture_masks_diagram,
    "05_language_model": next_character_diagram,
    "06_length_generalization": protocol_diagram,
    "07_efficient_attention": tiling_diagram,
    "08_inside_the_model": head_roles_diagram,
    "09_making_transformers_extrapolate": position_ids_diagram,
}
