"""The diagram each chapter shows, by the chapter's notebook name.

The diagrams are drawn by code, so they are versioned and re-drawable; they
live by family in :mod:`annotated.figures.attention_diagrams`,
:mod:`~annotated.figures.pattern_diagrams`,
:mod:`~annotated.figures.position_diagrams` and
:mod:`~annotated.figures.task_diagrams`.
"""

from __future__ import annotations

from annotated.figures.attention_diagrams import (
    heads_diagram,
    qkv_diagram,
    tiling_diagram,
)
from annotated.figures.pattern_diagrams import (
    architecture_masks_diagram,
    head_roles_diagram,
)
from annotated.figures.position_diagrams import (
    position_ids_diagram,
    positional_diagram,
)
from annotated.figures.task_diagrams import (
    next_character_diagram,
    protocol_diagram,
)

__all__ = ["DIAGRAMS", "chapter_diagram"]

#: chapter (notebook name) → the function drawing its diagram
DIAGRAMS = {
    "01_attention": qkv_diagram,
    "02_multi_head": heads_diagram,
    "03_positional_encodings": positional_diagram,
    "04_architectures": architecture_masks_diagram,
    "05_language_model": next_character_diagram,
    "06_length_generalization": protocol_diagram,
    "07_efficient_attention": tiling_diagram,
    "08_inside_the_model": head_roles_diagram,
    "06b_making_transformers_extrapolate": position_ids_diagram,
}


def chapter_diagram(chapter: str):
    """Draw the diagram of ``chapter`` (a notebook name such as
    ``"01_attention"``); returns its matplotlib figure."""
    if chapter not in DIAGRAMS:
        raise ValueError(
            f"no diagram for chapter {chapter!r}; the chapters with one are "
            f"{sorted(DIAGRAMS)}"
        )
    return DIAGRAMS[chapter]()
