"""Inside a trained model: head-role scores, head ablations and attention rollout.

- ``scores``: :func:`head_scores` (previous-token, same-character, delimiter, first-position,
  mean distance, induction) and :func:`label_heads`
- ``ablation``: :func:`ablate_head` (zero or mean), :func:`ablation_table` per character class
- ``rollout``: :func:`attention_rollout` (Abnar and Zuidema 2020)

Each reads a model from :mod:`annotated.models`; none trains one. Chapter 8 uses them all.
"""

from annotated.interpret.ablation import (
    ABLATIONS,
    ablate_head,
    ablation_table,
    attention_layers,
    class_of_positions,
    head_means,
    loss_change,
    token_losses,
)
from annotated.interpret.rollout import attention_rollout
from annotated.interpret.scores import (
    ROLE_SCORES,
    SCORES,
    attention_weights,
    character_classes,
    delimiter_mask,
    head_scores,
    induction_scores,
    label_heads,
    window_scores,
)

__all__ = [
    "ABLATIONS",
    "ROLE_SCORES",
    "SCORES",
    "ablate_head",
    "ablation_table",
    "attention_layers",
    "attention_rollout",
    "attention_weights",
    "character_classes",
    "class_of_positions",
    "delimiter_mask",
    "head_means",
    "head_scores",
    "induction_scores",
    "label_heads",
    "loss_change",
    "token_losses",
    "window_scores",
]
