"""A Vision Transformer: attention on image patches, and two small baselines.

Dosovitskiy et al. (2021, "An Image is Worth 16x16 Words") read an image as
a sentence. Cut it into N squares of P×P pixels
(:func:`~annotated.tasks.digits.patches`), map each square to a token by
one linear layer, add a position per patch, put a learned **class token**
in front, and run the transformer encoder over the N + 1 tokens::

    z₀ = [x_cls; x₁E; …; x_N E] + [0; p₁; …; p_N]
    logits = W · Encoder(z₀)[0]

The encoder here is the library's own: a non-causal, pre-norm
:class:`~annotated.models.stack.Stack` built from a
:class:`~annotated.models.config.ModelConfig`, with no positional encoding
of its own (``positional="nope"``): the patch positions are added here.
Attention treats its tokens as a set, so without positions the class
token's output does not change when the patches are shuffled.

Positions are a learned vector per patch (``"learned"``, as the paper), or
a learned row vector plus a learned column vector (``"2d"``, the paper's
2-D variant, which it found no better), or none (``"none"``). The class
token needs none: it is learned already. Left out: dropout on the
embeddings, the paper's MLP head for pre-training, image channels (the
digits are grey).

:func:`cnn_baseline` and :func:`mlp_baseline` are the small models it is
compared with on the same split.

Legend: B images, P patch side, G patches per side, N = G² patches, C
d_model, H heads, K classes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from annotated.core.fields import check_choice
from annotated.models.config import ModelConfig
from annotated.models.stack import Stack
from annotated.models.transformer import ModelOutput
from annotated.tasks.digits import (
    IMAGE_SIZE,
    N_CLASSES,
    check_patch_size,
    patches,
)

POSITIONS = ("learned", "2d", "none")
# ModelConfig fields set here, or read only by token models
NOT_OPTIONS = (
    *("arch", "vocab_size", "positional", "max_len", "n_classes"),
    *("tie_weights", "embedding_scale", "pad_id", "n_token_types"),
    "zero_init_residual",
)


class VisionTransformer(nn.Module):
    """Patches → tokens (+ positions) → [class token; tokens] → encoder →
    a linear head on the class token. ``options`` are further
    :class:`ModelConfig` fields of the encoder (``d_ff``, ``dropout``,
    ``activation``, ``norm_type``, …)."""

    def __init__(
        self,
        *,
        patch_size: int = 2,
        image_size: int = IMAGE_SIZE,
        n_classes: int = N_CLASSES,
        positions: str = "learned",
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        **options,
    ):
        super().__init__()
        check_choice("positions", positions, POSITIONS)
        if refused := sorted(set(options) & set(NOT_OPTIONS)):
            raise ValueError(
                f"{refused}: the Vision Transformer sets these itself or "
                "has no use for them; leave them out"
            )
        # the check patches() makes, once here: does P tile the image?
        check_patch_size(torch.zeros(1, image_size, image_size), patch_size)
        g = image_size // patch_size
        self.patch_size, self.grid, self.positions = patch_size, g, positions
        self.config = ModelConfig(
            arch="encoder",
            vocab_size=1,  # unused: patches are embedded by a linear map
            positional="nope",  # positions are added here, per patch
            max_len=g * g + 1,
            n_classes=n_classes,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            **options,
        )
        # P·P pixels → C
        self.patch_embedding = nn.Linear(patch_size**2, d_model)
        # "learned": one vector per patch; "2d": one per row, one per column
        learned, two_d = positions == "learned", positions == "2d"
        self.patch_positions = _learned(g * g if learned else 0, d_model)
        self.row_positions = _learned(g if two_d else 0, d_model)  # (G, C)
        self.col_positions = _learned(g if two_d else 0, d_model)  # (G, C)
        self.class_token = _learned(1, d_model)  # (1, C)
        self.encoder = Stack(self.config, causal=False)
        self.head = nn.Linear(d_model, n_classes)  # C → K
        for module in self.modules():  # GPT-2 / ViT: N(0, 0.02), zero bias
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def position_table(self) -> torch.Tensor | None:
        """Each patch's position vector ``(N, C)``, patches row by row."""
        if self.positions == "none":
            return None
        if self.positions == "learned":
            return self.patch_positions  # (N, C)
        # (G, 1, C) + (1, G, C) → (G, G, C): row r, column c gets p_r + q_c
        grid = self.row_positions[:, None] + self.col_positions[None, :]
        return grid.reshape(self.grid**2, -1)  # (N, C)

    def forward(self, images, *, need_weights: bool = False) -> ModelOutput:
        """``images (B, S, S)`` → class logits ``(B, K)``; with
        ``need_weights`` one ``(B, H, N+1, N+1)`` attention per layer,
        token 0 the class token."""
        side = self.grid * self.patch_size
        if images.dim() != 3 or images.shape[1:] != (side, side):
            raise ValueError(
                f"images must be (B, {side}, {side}), got shape "
                f"{tuple(images.shape)}"
            )
        # (B, N, P·P) → (B, N, C)
        x = self.patch_embedding(patches(images, self.patch_size))
        if (table := self.position_table()) is not None:
            x = x + table  # (B, N, C) + (N, C)
        cls = self.class_token.expand(len(x), 1, -1)  # (B, 1, C)
        h, attentions, _ = self.encoder(
            torch.cat([cls, x], dim=1), need_weights=need_weights
        )  # (B, N+1, C)
        return ModelOutput(self.head(h[:, 0]), attentions)  # (B, K)

    @torch.no_grad()
    def class_attention(self, images, layer: int = -1) -> torch.Tensor:
        """How much the class token attends to each patch in ``layer``:
        ``(B, H, N)``, row 0 of its attention without the class token's
        own column (so a row sums to at most 1)."""
        attentions = self(images, need_weights=True).attentions
        return attentions[layer][:, :, 0, 1:]


def _learned(rows: int, d_model: int) -> nn.Parameter | None:
    """A learned table ``(rows, C)`` drawn from N(0, 0.02); None if empty."""
    return nn.Parameter(torch.randn(rows, d_model) * 0.02) if rows else None


def cnn_baseline(n_classes: int = N_CLASSES, channels: int = 16):
    """Two 3×3 convolutions, a 2×2 max-pool, a linear head:
    ``(B, 8, 8)`` → ``(B, K)``."""
    return nn.Sequential(
        nn.Unflatten(1, (1, IMAGE_SIZE)),  # (B, 1, 8, 8): one channel
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 2·channels, 4, 4)
        nn.Flatten(),
        nn.Linear(2 * channels * (IMAGE_SIZE // 2) ** 2, n_classes),
    )


def mlp_baseline(n_classes: int = N_CLASSES, hidden: int = 128):
    """The 64 pixels through one hidden layer: ``(B, 8, 8)`` → ``(B, K)``."""
    return nn.Sequential(
        nn.Flatten(),  # (B, 64)
        nn.Linear(IMAGE_SIZE**2, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )
