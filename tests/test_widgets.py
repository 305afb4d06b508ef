"""Interactive figures redraw when a control moves and carry a static PNG; the attention explorer
shows the weights it is given and rejects inputs that do not fit."""

import base64

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from conftest import seeded
from matplotlib.figure import Figure

from annotated.figures.attention_explorer import AttentionExplorer
from annotated.figures.widgets import InteractiveFigure


def _line(fig, slope):
    ax = fig.subplots()
    ax.plot([0, 1], [0, slope])
    ax.set_ylim(0, 2)


def test_redraws_on_change_and_bundle_has_static_png():
    slider = widgets.FloatSlider(value=0.5, min=0, max=2)
    fig = InteractiveFigure(_line, {"slope": slider}, description="line")
    before = fig.image.value
    slider.value = 1.5
    assert fig.image.value != before
    bundle = fig._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == "<line: slope=1.5>"


def test_needs_a_control():
    with pytest.raises(ValueError, match="at least one control"):
        InteractiveFigure(_line, {})


# --- AttentionExplorer --------------------------------------------------------------------------


def _attentions(n_layers=2, b=2, h=3, t_q=4, t_k=4, seed=0):
    g = seeded(seed)
    return [
        torch.softmax(torch.randn(b, h, t_q, t_k, generator=g) * 2, dim=-1)
        for _ in range(n_layers)
    ]


TOKENS = [["a", "b", "c", "d"], ["w", "x", "y", "z"]]


def test_explorer_controls_change_the_image():
    explorer = AttentionExplorer(_attentions(), TOKENS)
    assert set(explorer.controls) == {"layer", "head", "example", "query"}
    assert explorer.values == {
        "layer": 0,
        "head": "mean",
        "example": 0,
        "query": 3,
    }
    seen = {explorer.image.value}
    for name, value in (
        ("layer", 1),
        ("head", 2),
        ("example", 1),
        ("query", 0),
    ):
        explorer.controls[name].value = value
        assert explorer.image.value not in seen, (
            f"moving {name} did not redraw"
        )
        seen.add(explorer.image.value)
    bundle = explorer._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == explorer.image.value
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert (
        bundle["text/plain"]
        == "<attention explorer: layer=1, head=2, example=1, query=0>"
    )


def test_explorer_mean_over_heads_is_the_mean_and_the_figure_shows_it():
    attentions = _attentions()
    explorer = AttentionExplorer(attentions, TOKENS)
    expected = attentions[1][0].mean(0)  # (Tq, Tk)
    torch.testing.assert_close(
        explorer.selected_weights(1, "mean", 0), expected
    )
    torch.testing.assert_close(
        explorer.selected_weights(0, 2, 1), attentions[0][1, 2]
    )
    fig = Figure()
    explorer.draw(fig, layer=1, head="mean", example=0, query=2)
    heatmap, bars = fig.axes
    np.testing.assert_allclose(
        heatmap.images[0].get_array(), expected.numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        [p.get_height() for p in bars.patches[:4]],
        expected[2].numpy(),
        rtol=1e-6,
    )
    assert [t.get_text() for t in heatmap.get_yticklabels()] == TOKENS[0]


def test_explorer_cross_attention_labels_and_single_tensor():
    w = _attentions(n_layers=1, b=1, t_q=2, t_k=5)[0]
    explorer = AttentionExplorer(
        w, ["q0", "q1"], key_tokens=["k0", "k1", "k2", "k3", "k4"], head=1
    )
    fig = Figure()
    explorer.draw(fig, **explorer.values)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "k0",
        "k1",
        "k2",
        "k3",
        "k4",
    ]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "q0",
        "q1",
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"tokens": [["a", "b", "c"], ["w", "x", "y", "z"]]},
            r"tokens\[0\] has 3 tokens",
        ),
        (
            {"tokens": [["a", "b", "c", "d"]]},
            "1 examples but .* batch size 2",
        ),
        ({"layer": 2}, "layer must be an index in 0..1"),
        ({"head": 3}, "head must be 'mean' or an index in 0..2"),
        ({"example": -1}, "example must be an index"),
        ({"query": 4}, "query must be an index in 0..3"),
        (
            {"key_tokens": [["k"] * 3, ["k"] * 3]},
            r"key_tokens\[0\] has 3 tokens",
        ),
    ],
)
def test_explorer_bad_inputs_raise(kwargs, message):
    args = {"tokens": TOKENS, **kwargs}
    with pytest.raises(ValueError, match=message):
        AttentionExplorer(_attentions(), args.pop("tokens"), **args)


def test_explorer_bad_weights_raise():
    with pytest.raises(ValueError, match="need_weights=True"):
        AttentionExplorer([_attentions(1)[0], None], TOKENS)
    with pytest.raises(ValueError, match=r"\(B, H, Tq, Tk\)"):
        AttentionExplorer([torch.ones(4, 4)], TOKENS)
    with pytest.raises(ValueError, match="layer 1 has weights of shape"):
        AttentionExplorer([_attentions(1)[0], _attentions(1, h=2)[0]], TOKENS)
    with pytest.raises(ValueError, match="pass key_tokens"):
        AttentionExplorer(_attentions(t_k=6), TOKENS)
    with pytest.raises(ValueError, match="non-empty list"):
        AttentionExplorer([], TOKENS)
    explorer = AttentionExplorer(_attentions(), TOKENS)
    with pytest.raises(ValueError, match="layer must be an index"):
        explorer.selected_weights(5, "mean", 0)
