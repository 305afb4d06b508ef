"""Training: the loop, its state, the optimiser and evaluation.

- ``loop``: :func:`~annotated.training.loop.train`, which reads on one
  screen, and :func:`~annotated.training.loop.stop_rule`;
- ``state`` and ``steps``: the run's state object and the pieces of a step;
- ``distributed`` and ``torchrun``: data-parallel training (DDP), N ranks
  × batch b as one process × batch N·b; joining torchrun's ranks;
- ``config``: :class:`~annotated.training.config.TrainConfig`;
- ``memory``: the memory a run needs, estimated before anything is built;
- ``divergence``: what to change after a run diverged, with values to try;
- ``optim``: AdamW with decay groups (or Muon for the blocks' matrices
  beside it) and the learning-rate schedule;
- ``evaluation``: exact match and loss at many lengths, with intervals;
- ``history``: what a run records.
"""
