"""The optimiser: AdamW with weight decay chosen by module type, or Muon for
the blocks' matrices beside it; and warm-up + cosine decay.

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

With ``TrainConfig.optimizer="muon"`` the hidden matrices go to Muon (Jordan
et al. 2024, "Muon: An optimizer for hidden layers in neural networks";
PyTorch's ``torch.optim.Muon``), which replaces each update by
(approximately) the nearest semi-orthogonal matrix to its momentum, ``U Vᵀ``
of its SVD ``U S Vᵀ`` (five Newton–Schulz iterations), so that no direction
of a matrix dominates its step. Muon is for matrices that map one hidden
state to another, so by module type again (:func:`muon_groups`):

- the ``weight`` of an ``nn.Linear`` inside a
  :class:`~annotated.models.blocks.TransformerBlock` goes to Muon
  (attention's q, k, v and output projections, the feed-forward layers);
- everything else stays with AdamW and the decay rule above: embeddings,
  the output head (tied or not), a classifier, norms' gains and biases.

Muon takes ``muon_lr`` (its update is scaled by √max(1, rows/cols),
Jordan's "original" rule), ``muon_momentum`` and ``muon_weight_decay``; the
AdamW part keeps ``lr``. :class:`Optimizers` steps the two as one.

The learning rate warms up linearly, then follows a cosine to
``lr · min_lr_ratio`` (Loshchilov & Hutter 2017, SGDR; Vaswani et al. 2017
warm up too):

    lr(s) = lr · (s + 1) / W                           for s < W (warm-up)
    lr(s) = lr · (r + (1 − r) · ½ (1 + cos(π · p)))   for s ≥ W

with ``p = (s − W) / (S − W)``, ``S`` steps, ``W`` warm-up steps and
``r = min_lr_ratio``; :func:`set_learning_rates` puts every group on it,
Muon's scaled to ``muon_lr``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from annotated.models.blocks import TransformerBlock
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


def muon_groups(
    model: nn.Module,
) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """``(muon, rest)``: every trainable parameter of ``model`` by its name,
    in exactly one. A tensor goes to Muon when every module holding it is an
    ``nn.Linear`` inside a :class:`~annotated.models.blocks.TransformerBlock`
    and it is that layer's ``weight``."""
    in_blocks = {
        id(module)
        for block in model.modules()
        if isinstance(block, TransformerBlock)
        for module in block.modules()
    }
    verdicts: dict[int, list[bool]] = {}
    for _, module in model.named_modules(remove_duplicate=False):
        hidden = isinstance(module, nn.Linear) and id(module) in in_blocks
        for name, param in module.named_parameters(recurse=False):
            verdict = hidden and name == "weight" and param.dim() == 2
            verdicts.setdefault(id(param), []).append(verdict)
    muon, rest = {}, {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            (muon if all(verdicts[id(param)]) else rest)[name] = param
    return muon, rest


class Optimizers:
    """Several optimizers stepped as one, for the loop: ``param_groups``
    lists all their groups, ``step`` / ``zero_grad`` call each, and
    ``state_dict`` / ``load_state_dict`` hold one state per optimizer."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for o in self.optimizers for g in o.param_groups]

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        states = state.get("optimizers", [])
        if len(states) != len(self.optimizers):
            raise ValueError(
                f"the saved state holds {len(states)} optimizer(s), this "
                f"run has {len(self.optimizers)}: it was saved with another "
                "TrainConfig.optimizer"
            )
        for optimizer, saved in zip(self.optimizers, states, strict=True):
            optimizer.load_state_dict(saved)


def make_optimizer(
    model: nn.Module, config: TrainConfig
) -> torch.optim.AdamW | Optimizers:
    """AdamW over :func:`decay_groups`: ``config.weight_decay`` on the first
    group, 0 on the second. With ``config.optimizer="muon"``: Muon over the
    first part of :func:`muon_groups` (its group marked ``"muon"``) and
    AdamW, as above, over the rest, as one :class:`Optimizers`."""
    decay, no_decay = decay_groups(model)
    if config.optimizer == "muon":
        hidden, _ = muon_groups(model)
        decay = {k: p for k, p in decay.items() if k not in hidden}
        no_decay = {k: p for k, p in no_decay.items() if k not in hidden}
    groups = [
        {"params": list(decay.values()), "weight_decay": config.weight_decay},
        {"params": list(no_decay.values()), "weight_decay": 0.0},
    ]
    adamw = torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)
    if config.optimizer == "adamw":
        return adamw
    if not hidden:
        raise ValueError(
            "optimizer='muon' found no nn.Linear inside a TransformerBlock "
            "to optimise; use optimizer='adamw' for this model"
        )
    muon = torch.optim.Muon(
        [{"params": list(hidden.values()), "muon": True}],
        lr=config.muon_lr,
        momentum=config.muon_momentum,
        weight_decay=config.muon_weight_decay,
        adjust_lr_fn="original",
    )
    return Optimizers(adamw, muon)


def learning_rate(
    step: int, config: TrainConfig, peak: float | None = None
) -> float:
    """The learning rate at ``step`` (0-based): linear warm-up, then cosine to
    ``peak * min_lr_ratio``; ``peak`` is ``config.lr`` unless given."""
    peak = config.lr if peak is None else peak
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * progress)
    )
    return peak * ratio


def set_learning_rates(optimizer, step: int, config: TrainConfig) -> float:
    """Set every group's learning rate for ``step`` (0-based): the schedule
    of :func:`learning_rate` with peak ``config.muon_lr`` for Muon's group
    and ``config.lr`` for the others. Returns the latter."""
    lr = learning_rate(step, config)
    muon_lr = learning_rate(step, config, config.muon_lr)
    for group in optimizer.param_groups:
        group["lr"] = muon_lr if group.get("muon") else lr
    return lr
