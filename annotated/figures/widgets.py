"""Interactive figures for the notebooks (ipywidgets).

The idea: a control (slider, dropdown, …) redraws a matplotlib figure. The
figure is rendered off-screen to PNG and shown in an ``ipywidgets.Image``,
which works the same in JupyterLab, classic Jupyter and Colab (after
``enable_custom_widget_manager``). :mod:`annotated.figures.attention_explorer`
builds one to browse a model's attention.

Where no widget front end exists — the rendered book, GitHub's notebook
viewer, a terminal — the same object also offers a static PNG of its current
state in its MIME bundle, so the reader still sees the figure.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import ipywidgets as widgets

from annotated.figures.viz import figure_png, new_figure


class InteractiveFigure:
    """A figure redrawn whenever one of its controls changes.

    Args:
        draw: ``draw(fig, **values)`` draws onto an empty figure, where
            ``values`` maps each control's name to its current value.
        controls: ``{name: ipywidgets value widget}``.
        figsize: figure size in inches.
        description: the plain-text representation (shown where neither
            widgets nor images can be displayed).
    """

    def __init__(
        self,
        draw: Callable,
        controls: dict,
        *,
        figsize=(6, 4),
        description: str = "interactive figure",
    ):
        if not controls:
            raise ValueError(
                "InteractiveFigure needs at least one control, "
                "e.g. {'scale': FloatSlider(...)}"
            )
        self.draw = draw
        self.controls = dict(controls)
        self.figsize = figsize
        self.description = description
        self.image = widgets.Image(format="png")
        self.widget = widgets.VBox(
            [widgets.HBox(list(self.controls.values())), self.image]
        )
        for control in self.controls.values():
            control.observe(lambda _change: self.redraw(), names="value")
        self.redraw()

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def render_png(self, **overrides) -> bytes:
        """The figure's PNG bytes for the control values or ``overrides``."""
        fig = new_figure(figsize=self.figsize)
        self.draw(fig, **{**self.values, **overrides})
        return figure_png(fig)

    def redraw(self) -> None:
        self.image.value = self.render_png()

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_()
        bundle["image/png"] = base64.b64encode(self.image.value).decode(
            "ascii"
        )
        values = ", ".join(f"{k}={v}" for k, v in self.values.items())
        bundle["text/plain"] = f"<{self.description}: {values}>"
        return bundle
