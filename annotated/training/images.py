"""Training an image classifier: shuffled mini-batches, AdamW, a cosine
schedule, accuracy after every epoch.

The recipe of :mod:`annotated.training.loop`, cut down to labelled images
(:class:`~annotated.tasks.digits.DigitsData`): cross-entropy on the class
logits; AdamW (Loshchilov & Hutter 2019) decaying only the weights of linear
and convolution layers; a linear warm-up over the first epoch, then cosine
decay to zero; gradient norms clipped at 1. ``shift`` > 0 moves each
training image by up to that many pixels in each direction (zeros fill the
edge): random translation, the simplest augmentation (on an 8×8 image
one pixel is an eighth of its width).

A model returns class logits ``(B, K)``, bare or as the ``logits`` of a
:class:`~annotated.models.transformer.ModelOutput`. Nothing is printed;
``progress=True`` shows a ``tqdm.auto`` bar. The batch order, the shifts
and dropout are seeded from ``seed`` (seed the model's initialisation
before building it); the caller's global RNG is left as it was. Runs on
the device the model's parameters are on.

Legend: B batch, S image side, K classes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from annotated.tasks.digits import DigitsData, ImageSplit

DECAYED = (nn.Linear, nn.Conv2d)  # their ``weight`` decays; nothing else


@dataclass
class ClassifierHistory:
    """One row per epoch (``epoch``, ``loss``, ``lr``, ``accuracy`` and
    ``correct`` on the evaluated split, ``seconds`` since the start) and
    ``meta`` (split, its size, parameter count, threads, wall and CPU
    seconds)."""

    epochs: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def series(self, key: str) -> list[float]:
        return [float(row[key]) for row in self.epochs]

    @property
    def final(self) -> dict:
        """The last epoch's row."""
        return self.epochs[-1]


def class_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``(B, K)`` logits of a model that returns them bare or as
    ``.logits``."""
    out = model(images)
    return out.logits if hasattr(out, "logits") else out


@torch.no_grad()
def count_correct(
    model: nn.Module, split: ImageSplit, batch_size: int = 512
) -> int:
    """How many of ``split``'s images ``model`` labels right (eval mode)."""
    was_training, device = model.training, _device(model)
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        images = split.images[start : start + batch_size].to(device)
        labels = split.labels[start : start + batch_size].to(device)
        guess = class_logits(model, images).argmax(-1)  # (B,)
        correct += int((guess == labels).sum())
    model.train(was_training)
    return correct


def random_shift(images: torch.Tensor, shift: int, generator) -> torch.Tensor:
    """Move each image ``(B, S, S)`` by a random (dy, dx) in
    [-shift, shift]², filling with zeros."""
    b, s, _ = images.shape
    padded = F.pad(images, (shift,) * 4)  # (B, S + 2·shift, S + 2·shift)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, b, 1), generator=generator)
    rows = (dy + torch.arange(s)).to(images.device)  # (B, S)
    cols = (dx + torch.arange(s)).to(images.device)  # (B, S)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]]  # (B, S, S)


def decay_groups(model: nn.Module) -> list[dict]:
    """AdamW's two groups: the weights of ``DECAYED`` layers, the rest
    (biases, norms, class token, position tables) without decay."""
    decayed = {
        id(m.weight) for m in model.modules() if isinstance(m, DECAYED)
    }
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in decayed]},
        {
            "params": [p for p in params if id(p) not in decayed],
            "weight_decay": 0.0,
        },
    ]


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """The learning-rate factor: linear to 1 over ``warmup`` steps, then
    cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_classifier(
    model: nn.Module,
    data: DigitsData,
    *,
    epochs: int = 60,
    lr: float = 5e-4,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 0.05,
    shift: int = 0,
    eval_split: str = "test",
    progress: bool = False,
) -> ClassifierHistory:
    """Train ``model`` on ``data.train`` for ``epochs``; after each epoch
    count its right answers on ``data.<eval_split>`` ("test" or "val")."""
    held_out = getattr(data, eval_split, None) if eval_split else None
    if eval_split not in ("test", "val") or held_out is None:
        raise ValueError(
            f"eval_split must name a split data has ('test', or 'val' when "
            f"made with val_size > 0), got {eval_split!r}"
        )
    if epochs < 1 or batch_size < 1 or shift < 0:
        raise ValueError(
            f"need epochs ≥ 1, batch_size ≥ 1 and shift ≥ 0, got "
            f"{epochs}, {batch_size}, {shift}"
        )
    device, train = _device(model), data.train
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(
        decay_groups(model), lr=lr, weight_decay=weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    history = ClassifierHistory()
    start_wall, start_cpu, step = time.perf_counter(), time.process_time(), 0
    bar = tqdm(total=epochs, disable=not progress, desc="train")
    # dropout draws from the global RNG: seed it, keep the caller's intact
    with bar, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train()
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(train), generator=generator)
            losses = []
            for rows in order.split(batch_size):
                images = train.images[rows]  # (B, S, S)
                if shift:
                    images = random_shift(images, shift, generator)
                factor = warmup_cosine(step, total, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr * factor
                logits = class_logits(model, images.to(device))  # (B, K)
                loss = F.cross_entropy(logits, train.labels[rows].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                losses.append(loss.item())
                step += 1
            correct = count_correct(model, held_out)
            history.epochs.append(
                {
                    "epoch": epoch,
                    "loss": sum(losses) / len(losses),
                    "lr": lr * factor,
                    "correct": correct,
                    "accuracy": correct / len(held_out),
                    "seconds": time.perf_counter() - start_wall,
                }
            )
            bar.update()
            bar.set_postfix(
                loss=f"{history.final['loss']:.3f}",
                acc=f"{history.final['accuracy']:.3f}",
            )
    model.eval()
    history.meta = {
        "eval_split": eval_split,
        "n_eval": len(held_out),
        "n_train": len(train),
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "wall_seconds": time.perf_counter() - start_wall,
        "cpu_seconds": time.process_time() - start_cpu,
    }
    return history


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
