"""The 8×8 handwritten digits, and images cut into patches.

scikit-learn ships a small image set: 1,797 handwritten digits 0–9, each an
8×8 grid of pixel counts 0…16 (the UCI "optical recognition of handwritten
digits" data, Alpaydin & Kaynak 1998). It needs no download, and a model
that reads it trains on a laptop CPU in seconds. :func:`load_digits_data`
scales the pixels to [0, 1] and splits the images once, seeded and
stratified: every split holds each digit in the proportion the whole set
does.

A Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16
Words") reads an image as a sequence: :func:`patches` cuts it into P×P
squares, left to right and top to bottom, and flattens each square into one
token of P·P numbers. :func:`unpatches` puts the squares back, which is how
a value per patch (an attention weight) is drawn on the image.

Legend: B images, H × W pixels, P patch side, G patches per side (H / P),
N = G² patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from annotated.tasks.base import as_generator

IMAGE_SIZE = 8  # pixels per side
N_CLASSES = 10
MAX_PIXEL = 16  # load_digits counts 0…16 pixels of a 32×32 bitmap per cell


@dataclass(frozen=True)
class ImageSplit:
    """``images (B, 8, 8)`` float in [0, 1], ``labels (B,)`` long, and
    ``rows (B,)``: where each image sits in ``load_digits()``."""

    images: torch.Tensor
    labels: torch.Tensor
    rows: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DigitsData:
    """The three splits; ``val`` is None when none was asked for."""

    train: ImageSplit
    test: ImageSplit
    val: ImageSplit | None = None


def stratified_order(labels: torch.Tensor, generator) -> torch.Tensor:
    """A seeded order of ``range(len(labels))`` in which every prefix holds
    each class in its share of the whole, to within about one.

    Each class is shuffled, and its j-th of n members gets the key
    (j + ½) / n: the classes interleave evenly, so cutting the order anywhere
    makes a stratified split.

    >>> labels = torch.tensor([0, 0, 0, 0, 1, 1])
    >>> labels[stratified_order(labels, 0)[:3]].sort().values
    tensor([0, 0, 1])
    """
    generator = as_generator(generator)
    keys = torch.empty(len(labels))
    for c in labels.unique():
        members = (labels == c).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        keys[members] = (torch.arange(len(members)) + 0.5) / len(members)
    # ties between classes broken at random too
    tiebreak = torch.randperm(len(labels), generator=generator)
    return tiebreak[keys[tiebreak].argsort(stable=True)]


def load_digits_data(
    *, test_size: int = 360, val_size: int = 0, seed: int = 0
) -> DigitsData:
    """scikit-learn's digits, pixels / 16, split into test, val and train
    (the rest) by :func:`stratified_order` with ``seed``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    # (1797, 8, 8), (1797,)
    images = torch.tensor(digits.images, dtype=torch.float32) / MAX_PIXEL
    labels = torch.tensor(digits.target, dtype=torch.long)
    if test_size < 1 or val_size < 0 or test_size + val_size >= len(labels):
        raise ValueError(
            f"need test_size ≥ 1, val_size ≥ 0 and test_size + val_size < "
            f"{len(labels)} images, got test_size={test_size}, "
            f"val_size={val_size}"
        )
    order = stratified_order(labels, seed)
    cuts = order.split(
        [test_size, val_size, len(labels) - test_size - val_size]
    )

    def split(rows: torch.Tensor) -> ImageSplit:
        rows = rows.sort().values
        return ImageSplit(images[rows], labels[rows], rows)

    test, val, train = cuts
    return DigitsData(
        split(train), split(test), split(val) if val_size else None
    )


def patches(images: torch.Tensor, size: int) -> torch.Tensor:
    """``images (B, H, W)`` → ``(B, N, size·size)``: size × size squares,
    row by row, each flattened row by row.

    >>> patches(torch.arange(16.0).reshape(1, 4, 4), 2)[0]
    tensor([[ 0.,  1.,  4.,  5.],
            [ 2.,  3.,  6.,  7.],
            [ 8.,  9., 12., 13.],
            [10., 11., 14., 15.]])
    """
    check_patch_size(images, size)
    b, h, w = images.shape
    # (B, G_rows, P, G_cols, P): split each axis into (patch, pixel in it)
    x = images.reshape(b, h // size, size, w // size, size)
    # (B, G_rows, G_cols, P, P): the two patch axes first
    x = x.permute(0, 1, 3, 2, 4)
    return x.reshape(b, -1, size * size)  # (B, N, P·P)


def unpatches(tokens: torch.Tensor, size: int) -> torch.Tensor:
    """The inverse of :func:`patches` for square images: ``(B, N, size·size)``
    → ``(B, H, W)`` with H = W = √N · size."""
    if tokens.dim() != 3 or tokens.shape[2] != size * size:
        raise ValueError(
            f"need patches of shape (B, N, {size * size}) for size={size}, "
            f"got {tuple(tokens.shape)}"
        )
    b, n, _ = tokens.shape
    g = round(n**0.5)
    if g * g != n:
        raise ValueError(f"{n} patches do not tile a square image")
    # (B, G, G, P, P) → (B, G, P, G, P) → (B, H, W)
    x = tokens.reshape(b, g, g, size, size).permute(0, 1, 3, 2, 4)
    return x.reshape(b, g * size, g * size)


def patch_map(values: torch.Tensor, size: int) -> torch.Tensor:
    """One number per patch ``(B, N)`` → an image ``(B, H, W)`` that
    repeats it over the patch's pixels (to draw attention on an image)."""
    # (B, N) → (B, N, P·P)
    return unpatches(values[..., None].expand(-1, -1, size * size), size)


def check_patch_size(images: torch.Tensor, size: int) -> None:
    """Refuse images that are not ``(B, H, W)`` or a size that does not
    tile them."""
    if images.dim() != 3:
        raise ValueError(
            f"images must be (B, H, W), got shape {tuple(images.shape)}; "
            "add a batch axis with images[None]"
        )
    h, w = images.shape[1:]
    if not isinstance(size, int) or size < 1 or h % size or w % size:
        fits = [p for p in range(1, min(h, w) + 1) if h % p == w % p == 0]
        raise ValueError(
            f"patch size {size!r} does not tile {h}×{w} images; choose one "
            f"of {fits}"
        )
