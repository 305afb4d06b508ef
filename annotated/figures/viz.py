"""Matplotlib figures of attention, and off-screen rendering.

Every plot draws onto axes it is given (or makes its own figure) and returns
the figure, axes or image, so notebooks stay short and the widgets can
redraw off-screen. The curves of a training run are in
:mod:`annotated.figures.curves`. Nothing here is drawn at import time.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _to_numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def attention_heatmap(
    weights,
    ax,
    *,
    query_labels=None,
    key_labels=None,
    title: str | None = None,
    annotate: bool = False,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    colorbar: bool = True,
):
    """Draw one attention matrix (Tq, Tk): rows are queries, columns are keys.

    ``annotate=True`` writes each weight in its cell (for small matrices).
    Returns the image so callers can add a shared colour bar.
    """
    w = _to_numpy(weights)
    if w.ndim != 2:
        raise ValueError(
            "attention_heatmap needs a 2-D (Tq, Tk) matrix, "
            f"got shape {w.shape}"
        )
    im = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    if key_labels is not None:
        ax.set_xticks(
            range(len(key_labels)),
            labels=list(key_labels),
            rotation=90 if len(key_labels) > 8 else 0,
        )
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), labels=list(query_labels))
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    if annotate:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{w[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white"
                    if w[i, j] < 0.6 * (vmax or w.max())
                    else "black",
                )
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def mask_heatmap(mask, ax, *, title: str | None = None, labels=None):
    """Draw a boolean mask: dark = may attend, light = hidden."""
    m = _to_numpy(mask).astype(float)
    if m.ndim != 2:
        raise ValueError(
            f"mask_heatmap needs a 2-D (Tq, Tk) mask, got shape {m.shape}"
        )
    ax.imshow(m, cmap="Greys", vmin=0, vmax=1)
    ticks = [
        str(t) for t in (labels if labels is not None else range(m.shape[1]))
    ]
    ax.set_xticks(
        range(m.shape[1]),
        labels=ticks,
        rotation=45 if max(map(len, ticks)) > 2 else 0,
    )
    ax.set_yticks(
        range(m.shape[0]),
        labels=list(labels) if labels is not None else range(m.shape[0]),
    )
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    return ax


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes without touching pyplot's global state."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def figure_image(fig: Figure, dpi: int = 100):
    """A figure as an ``IPython.display.Image``, shown by any backend.

    A figure made with :func:`new_figure` is not known to pyplot, so a
    notebook would not draw it by itself; the chapters show the diagrams of
    :mod:`annotated.figures.diagrams` this way.
    """
    from IPython.display import Image

    return Image(figure_png(fig, dpi=dpi))


def new_figure(*args, **kwargs) -> Figure:
    """A figure not registered with pyplot: safe in widgets and threads."""
    fig = Figure(*args, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def attention_row_bars(
    row,
    ax,
    *,
    key_labels=None,
    title: str | None = None,
    color: str = "tab:blue",
):
    """Draw one query's weights over the keys (Tk,) as vertical bars.

    The bars sit in the same left-to-right order as the heatmap's columns, so
    the two can be read side by side; the largest weight is drawn in a darker
    shade.
    """
    w = _to_numpy(row)
    if w.ndim != 1:
        raise ValueError(
            "attention_row_bars needs one row of weights (Tk,), "
            f"got shape {w.shape}"
        )
    bars = ax.bar(range(len(w)), w, color=color)
    if len(w):
        bars[int(w.argmax())].set_color("navy")
    if key_labels is not None:
        if len(key_labels) != len(w):
            raise ValueError(
                f"{len(key_labels)} key labels for a row of {len(w)} "
                "weights; pass one label per key"
            )
        ax.set_xticks(
            range(len(w)),
            labels=list(key_labels),
            rotation=90 if len(w) > 8 else 0,
        )
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.6, len(w) - 0.4)
    ax.set_xlabel("key")
    ax.set_ylabel("weight")
    if title:
        ax.set_title(title)
    return ax


def head_grid(
    weights,
    *,
    query_labels=None,
    key_labels=None,
    titles=None,
    ncols: int | None = None,
    figsize=None,
    annotate: bool = False,
    fig=None,
):
    """One heatmap per head of ``(H, Tq, Tk)``, sharing one colour bar.

    ``fig``: draw onto this (empty) figure instead of a new pyplot one — the
    widgets pass an off-screen figure. Returns the figure.
    """
    w = _to_numpy(weights)
    if w.ndim != 3:
        raise ValueError(
            "head_grid needs a stack of attention matrices (H, Tq, Tk), "
            f"got shape {w.shape}"
        )
    n = w.shape[0]
    ncols = min(n, 4) if ncols is None else ncols
    nrows = -(-n // ncols)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize or (3.2 * ncols + 0.8, 3.0 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    titles = (
        [f"head {h}" for h in range(n)] if titles is None else list(titles)
    )
    im = None
    for h, ax in enumerate(axes):
        if h >= n:
            ax.axis("off")
            continue
        im = attention_heatmap(
            w[h],
            ax,
            query_labels=query_labels,
            key_labels=key_labels,
            title=titles[h],
            annotate=annotate,
            colorbar=False,
        )
        if h % ncols:
            ax.set_ylabel("")
    fig.colorbar(im, ax=list(axes[:n]), fraction=0.03, pad=0.02)
    return fig


def signed_heatmap(
    matrix,
    ax,
    *,
    title: str | None = None,
    xlabel: str = "",
    ylabel: str = "",
    cmap: str = "RdBu_r",
    colorbar: bool = True,
    symmetric: bool = True,
):
    """Draw any real matrix with a diverging colour map; returns the image.

    For positional encodings, biases, similarities: centred on 0
    (``symmetric=True``) or spanning the matrix's range."""
    m = _to_numpy(matrix)
    if m.ndim != 2:
        raise ValueError(
            f"signed_heatmap needs a 2-D matrix, got shape {m.shape}"
        )
    if symmetric:
        lim = float(np.abs(m).max()) or 1.0
        im = ax.imshow(
            m,
            cmap=cmap,
            vmin=-lim,
            vmax=lim,
            aspect="auto",
            interpolation="nearest",
        )
    else:
        im = ax.imshow(m, cmap=cmap, aspect="auto", interpolation="nearest")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im
