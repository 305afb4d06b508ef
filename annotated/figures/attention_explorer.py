"""An interactive figure to browse a model's attention weights.

The reader chooses the layer, the head (or their mean), the example and the
query.

It is an :class:`~annotated.figures.widgets.InteractiveFigure`: live
controls in JupyterLab and Colab, the static PNG of the current choice in
the rendered book.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.patches as patches
import torch

from annotated.figures.viz import attention_heatmap, attention_row_bars
from annotated.figures.widgets import InteractiveFigure

MEAN = "mean"  # the head choice that averages the weights over all heads


def _is_index(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_labels(
    labels, n_examples: int, length: int, what: str
) -> list[list[str]]:
    """``labels`` as one list of ``length`` strings per example.

    A single flat list is taken for a batch of 1."""
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise ValueError(
            f"{what} must be a list of token lists (one list of str per "
            f"example), got {type(labels).__name__}"
        )
    if labels and all(isinstance(t, str) for t in labels):
        labels = [labels]  # one example given as a flat list
    labels = [list(map(str, example)) for example in labels]
    if len(labels) != n_examples:
        raise ValueError(
            f"{what} has {len(labels)} examples but the attention weights "
            f"have batch size {n_examples}; pass one token list per example"
        )
    for b, example in enumerate(labels):
        if len(example) != length:
            raise ValueError(
                f"{what}[{b}] has {len(example)} tokens but the weights "
                f"have {length} positions on that axis; pass one label per "
                "position (pad with e.g. '<pad>')"
            )
    return labels


class AttentionExplorer:
    """Browse a model's attention: layer, head (or mean), example, query.

    The left panel is the heatmap of the chosen ``(Tq, Tk)`` matrix with token
    labels on both axes and the chosen query row outlined; the right panel
    shows that row's distribution over the keys as bars.

    Args:
        attentions: one tensor ``(B, H, Tq, Tk)`` per layer — what a model
            returns with ``need_weights=True`` (a single 4-D tensor is taken
            as one layer). All layers must share one shape.
        tokens: token labels, one list of str per example; they label the
            queries, and the keys too unless ``key_tokens`` is given.
        key_tokens: separate key labels (cross-attention, or a KV cache where
            Tk > Tq).
        layer, head, example, query: the initial choice; ``head="mean"``
            averages over heads and ``query=None`` picks the last query.
        layer_names: labels for the layer menu (default ``layer 0``,
            ``layer 1``, …).

    Legend: L layers, B examples, H heads, Tq queries, Tk keys.
    """

    def __init__(
        self,
        attentions,
        tokens,
        *,
        key_tokens=None,
        layer: int = 0,
        head: int | str = MEAN,
        example: int = 0,
        query: int | None = None,
        layer_names: Sequence[str] | None = None,
        figsize=(10, 4.2),
        description: str = "attention explorer",
    ):
        self.weights = self._stack_layers(attentions)  # (L, B, H, Tq, Tk)
        n_layers, n_examples, n_heads, t_q, t_k = self.weights.shape
        if key_tokens is None and t_q != t_k:
            raise ValueError(
                f"the weights have {t_q} queries but {t_k} keys; pass "
                f"key_tokens= with {t_k} labels per example"
            )
        self.query_tokens = _check_labels(tokens, n_examples, t_q, "tokens")
        self.key_tokens = (
            self.query_tokens
            if key_tokens is None
            else _check_labels(key_tokens, n_examples, t_k, "key_tokens")
        )
        names = (
            [f"layer {i}" for i in range(n_layers)]
            if layer_names is None
            else list(layer_names)
        )
        if len(names) != n_layers:
            raise ValueError(
                f"{len(names)} layer_names for {n_layers} layers"
            )
        query = t_q - 1 if query is None else query
        self._check_choice(layer, head, example, query)
        controls = {
            "layer": widgets.Dropdown(
                options=list(zip(names, range(n_layers))),
                value=layer,
                description="layer",
            ),
            "head": widgets.Dropdown(
                options=[("mean over heads", MEAN)]
                + [(f"head {h}", h) for h in range(n_heads)],
                value=head,
                description="head",
            ),
            "example": widgets.IntSlider(
                value=example,
                min=0,
                max=n_examples - 1,
                description="example",
                disabled=n_examples == 1,
            ),
            "query": widgets.IntSlider(
                value=query, min=0, max=t_q - 1, description="query row"
            ),
        }
        self.layer_names = names
        self.figure = InteractiveFigure(
            self.draw, controls, figsize=figsize, description=description
        )
        self.controls, self.image, self.widget = (
            self.figure.controls,
            self.figure.image,
            self.figure.widget,
        )

    @staticmethod
    def _stack_layers(attentions) -> torch.Tensor:
        if isinstance(attentions, torch.Tensor):
            attentions = [attentions]
        if not isinstance(attentions, Sequence) or not attentions:
            raise ValueError(
                "attentions must be a non-empty list with one (B, H, Tq, Tk) "
                "tensor per layer"
            )
        layers = []
        for i, w in enumerate(attentions):
            if w is None:
                raise ValueError(
                    f"layer {i} has no attention weights (None); run the "
                    "model with need_weights=True"
                )
            w = torch.as_tensor(w).detach().float().cpu()
            if w.dim() != 4:
                raise ValueError(
                    f"layer {i}: attention weights must be (B, H, Tq, Tk), "
                    f"got shape {tuple(w.shape)}"
                )
            if layers and w.shape != layers[0].shape:
                raise ValueError(
                    f"layer {i} has weights of shape {tuple(w.shape)} but "
                    f"layer 0 has {tuple(layers[0].shape)}; explore layers "
                    "of different shapes separately"
                )
            layers.append(w)
        return torch.stack(layers)  # (L, B, H, Tq, Tk)

    def _check_choice(self, layer, head, example, query=0) -> None:
        n_layers, n_examples, n_heads, t_q, _ = self.weights.shape
        for name, value, size in (
            ("layer", layer, n_layers),
            ("example", example, n_examples),
            ("query", query, t_q),
        ):
            if not _is_index(value) or not 0 <= value < size:
                raise ValueError(
                    f"{name} must be an index in 0..{size - 1}, got {value!r}"
                )
        if head != MEAN and (not _is_index(head) or not 0 <= head < n_heads):
            raise ValueError(
                "head must be 'mean' or an index in "
                f"0..{n_heads - 1}, got {head!r}"
            )

    def selected_weights(
        self, layer: int, head: int | str, example: int
    ) -> torch.Tensor:
        """The ``(Tq, Tk)`` matrix shown for this choice.

        One head's weights, or their mean over heads."""
        self._check_choice(layer, head, example)
        w = self.weights[layer, example]  # (H, Tq, Tk)
        return w.mean(0) if head == MEAN else w[head]

    def draw(self, fig, *, layer, head, example, query) -> None:
        """Draw the heatmap and the chosen query's bars onto empty ``fig``."""
        w = self.selected_weights(layer, head, example)  # (Tq, Tk)
        q_labels, k_labels = (
            self.query_tokens[example],
            self.key_tokens[example],
        )
        ax_map, ax_bars = fig.subplots(
            1, 2, gridspec_kw={"width_ratios": [3, 2]}
        )
        which = "mean over heads" if head == MEAN else f"head {head}"
        attention_heatmap(
            w,
            ax_map,
            query_labels=q_labels,
            key_labels=k_labels,
            colorbar=False,
            title=f"{self.layer_names[layer]}, {which}, example {example}",
        )
        ax_map.add_patch(
            patches.Rectangle(
                (-0.5, query - 0.5),
                w.shape[1],
                1,
                fill=False,
                edgecolor="red",
                lw=2,
            )
        )
        attention_row_bars(
            w[query],
            ax_bars,
            key_labels=k_labels,
            title=f"query {query} ({q_labels[query]!r}): "
            "weights over the keys",
        )

    @property
    def values(self) -> dict:
        return self.figure.values

    def render_png(self, **overrides) -> bytes:
        return self.figure.render_png(**overrides)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.figure._repr_mimebundle_(include, exclude)
