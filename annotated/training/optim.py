"""The optimiser: AdamW with weight decay chosen by module type, and warm-up +
cosine decay.

AdamW (Loshchilov & Hutter 2019) decays weights apart from the gradient step.
Which tensors it decays follows minGPT's ``configure_optimizers``
(karpathy/minGPT, ``mingpt/model.py``): the matrices of whitelisted modules
are pulled towards zero, and nothing else is.

- the ``weight`` of an ``nn.Linear`` decays: minGPT's whitelist, the layers'
  matrices;
- no ``bias`` decays: a shift, not a scale;
- no parameter of ``nn.LayerNorm`` / ``nn.RMSNorm`` decays: minGPT's
  blacklist, gains should stay near 1;
- no parameter of an ``nn.Embedding`` decays: minGPT's blacklist, token
  tables (and the learned position and T5 bucket tables);
- no parameter held by a positional encoding itself decays: a position table
  as a bare ``nn.Parameter`` is an embedding indexed by position (minGPT's
  first GPT: ``no_decay.add('pos_emb')``);
- a matrix tied to an embedding (the output head) does not decay: the
  embedding wins, as in nanoGPT, whose decay set leaves out
  ``lm_head.weight`` because it *is* ``wte.weight``;
- anything else raises a ``ValueError`` naming it: no silent guess.

Every trainable tensor lands in exactly one group (a tied tensor, reached from
two modules, once). Frozen parameters (``requires_grad=False``) are left out
of the optimiser.

The learning rate warms up linearly, then follows a cosine to
``lr · min_lr_ratio`` (Loshchilov & Hutter 2017, SGDR; Vaswani et al. 2017
warm up too):

    lr(s) = lr · (s + 1) / W                           for s < W (warm-up)
    lr(s) = lr · (r + (1 − r) · ½ (1 + cos(π · p)))   for s ≥ W

with ``p = (s − W) / (S − W)``, ``S`` steps, ``W`` warm-up steps and
``r = min_lr_ratio``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from annotated.positional import PositionalEncoding
from annotated.training.config import TrainConfig

DECAYED_WEIGHTS = (nn.Linear,)  # minGPT's whitelist: their ``weight`` decays
# minGPT's blacklist + position tables
NOT_DECAYED = (nn.LayerNorm, nn.RMSNorm, nn.Embedding, PositionalEncoding)


def _decays(module: nn.Module, name: str) -> bool | None:
    """Whether ``module``'s own parameter ``name`` decays; ``None`` when the
    rule does not say."""
    if name.endswith("bias") or isinstance(module, NOT_DECAYED):
        return False
    if name == "weight" and isinstance(module, DECAYED_WEIGHTS):
        return True
    return None


def decay_groups(
    model: nn.Module,
) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """``(decay, no_decay)``: every trainable parameter of ``model`` by its
    name, in exactly one.

    A tensor reached from several modules (a tied output head) is named as
    ``named_parameters`` names it and decays only if every module holding it
    says so. Raises ``ValueError`` for a parameter the rule above does not
    cover.
    """
    # id(tensor) -> what each module holding it says
    verdicts: dict[int, list[bool]] = {}
    for module_name, module in model.named_modules(remove_duplicate=False):
        for name, param in module.named_parameters(recurse=False):
            verdict = _decays(module, name)
            if verdict is None and param.requires_grad:
                full = f"{module_name}.{name}" if module_name else name
                raise ValueError(
                    f"no weight-decay rule for parameter {full!r} of a "
                    f"{type(module).__name__}: decay covers nn.Linear "
                    "weights; biases and every parameter of nn.LayerNorm, "
                    "nn.RMSNorm, nn.Embedding and positional encodings are "
                    "not decayed. Build the layer from those modules, or "
                    "set weight_decay=0 and call torch.optim.AdamW yourself"
                )
            verdicts.setdefault(id(param), []).append(bool(verdict))
    decay, no_decay = {}, {}
    # each tensor once, under its first name
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if all(verdicts[id(param)]) else no_decay)[name] = param
    return decay, no_decay


def make_optimizer(
    model: nn.Module, config: TrainConfig
) -> torch.optim.AdamW:
    """AdamW over :func:`decay_groups`: ``config.weight_decay`` on the first
    group, 0 on the second."""
    decay, no_decay = decay_groups(model)
    groups = [
        {"params": list(decay.values()), "weight_decay": config.weight_decay},
        {"params": list(no_decay.values()), "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def learning_rate(step: int, config: TrainConfig) -> float:
    """The learning rate at ``step`` (0-based): linear warm-up, then cosine to
    ``lr * min_lr_ratio``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * progress)
    )
    return config.lr * ratio
