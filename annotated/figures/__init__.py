"""What the chapters show: plots, diagrams, widgets and the library's code.

- ``viz`` and ``curves``: attention maps and training curves (matplotlib);
- ``palette``: one colour per positional encoding, used by every figure;
- ``*_diagrams`` with ``drawing``: the chapters' diagrams, drawn from the
  library's own objects (``diagrams.DIAGRAMS`` maps chapters to them);
- ``widgets``, ``attention_explorer``, ``dashboard``: interactive figures;
- ``showcode``: :func:`~annotated.figures.showcode.show_source`, the
  library's source on a chapter's page.
"""
