"""Training: the loop, its state, the optimiser and evaluation.

- ``loop``: :func:`~annotated.training.loop.train`, which reads on one
  screen, and :func:`~annotated.training.loop.stop_rule`;
- ``state`` and ``steps``: the run's state object and the pieces of a step;
- ``config``: :class:`~annotated.training.config.TrainConfig`;
- ``optim``: AdamW with decay groups and the learning-rate schedule;
- ``evaluation``: exact match and loss at many lengths, with intervals;
- ``history``: what a run records.
"""
