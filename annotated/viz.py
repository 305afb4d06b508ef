"""Matplotlib figures used across the chapters.

Every function draws onto axes it is given (or makes its own figure) and returns the
figure or axes, so notebooks stay short and the widgets can redraw off-screen.
Nothing here is drawn at import time.
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
        raise ValueError(f"attention_heatmap needs a 2-D (Tq, Tk) matrix, got shape {w.shape}")
    im = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    if key_labels is not None:
        ax.set_xticks(range(len(key_labels)), labels=list(key_labels), rotation=90 if len(key_labels) > 8 else 0)
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), labels=list(query_labels))
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    if annotate:
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if w[i, j] < 0.6 * (vmax or w.max()) else "black")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def mask_heatmap(mask, ax, *, title: str | None = None, labels=None):
    """Draw a boolean mask: dark = may attend, light = hidden."""
    m = _to_numpy(mask).astype(float)
    if m.ndim != 2:
        raise ValueError(f"mask_heatmap needs a 2-D (Tq, Tk) mask, got shape {m.shape}")
    ax.imshow(m, cmap="Greys", vmin=0, vmax=1)
    ticks = [str(t) for t in (labels if labels is not None else range(m.shape[1]))]
    ax.set_xticks(range(m.shape[1]), labels=ticks, rotation=45 if max(map(len, ticks)) > 2 else 0)
    ax.set_yticks(range(m.shape[0]), labels=list(labels) if labels is not None else range(m.shape[0]))
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


def new_figure(*args, **kwargs) -> Figure:
    """A figure that is not registered with pyplot (safe to build in widgets and threads)."""
    fig = Figure(*args, **kwargs)
    FigureCanvasAgg(fig)
    return fig
