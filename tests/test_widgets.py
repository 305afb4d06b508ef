"""The interactive figure redraws when a control moves and carries a static PNG."""

import base64

import ipywidgets as widgets
import pytest

from annotated.widgets import InteractiveFigure


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
