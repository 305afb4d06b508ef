"""The optimiser: AdamW, and a linear warm-up followed by cosine decay of the learning rate.

AdamW (Loshchilov & Hutter 2019) decays weights apart from the gradient step. The learning rate
warms up linearly, then follows a cosine to ``lr · min_lr_ratio`` (Loshchilov & Hutter 2017,
SGDR; Vaswani et al. 2017 warm up too):

    lr(s) = lr · (s + 1) / W                                   for s < W (warm-up)
    lr(s) = lr · (r + (1 − r) · ½ (1 + cos(π · p)))           after,  p = (s − W) / (S − W)

with ``S`` steps, ``W`` warm-up steps and ``r = min_lr_ratio``.
"""

from __future__ import annotations

import math

import torch

from annotated.train_config import TrainConfig


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW, decaying only matrices: biases, norms and embedding tables are not pulled to zero (nanoGPT)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            is_embedding = "emb" in name or "table" in name
            (decay if param.dim() >= 2 and not is_embedding else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def learning_rate(step: int, config: TrainConfig) -> float:
    """The learning rate at ``step`` (0-based): linear warm-up, then cosine to ``lr * min_lr_ratio``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * ratio
