"""Arithmetic tasks: multi-digit addition, modular running sum, parity.

Each answer is a function of *all* the digits read so far, carried left to
right: the carry of school addition, the running sum modulo a base, the count
of ones modulo 2.

Legend: B batch, n problem length (digits per number).
"""

from __future__ import annotations

import torch

from annotated.tasks.base import PAD, SEP, check_count, digit_names
from annotated.tasks.layouts import LabellingTask, PromptAnswerTask


class AdditionTask(PromptAnswerTask):
    """Add two ``length``-digit numbers (leading zeros allowed).

    The sum has ``length + 1`` digits.

    ``reverse_digits=False`` writes every number most-significant digit first,
    as on paper: length 3, ``4 7 2 + 3 5 1 =`` → ``0 8 2 3``.
    ``reverse_digits=True`` writes all three least-significant first
    (``2 7 4 + 1 5 3 =`` → ``3 2 8 0``), so a left-to-right model meets each
    carry before it needs it: the easier order (Lee et al. 2023; Zhou et al.
    2024).
    """

    sep_name = "="

    def __init__(self, reverse_digits: bool = False):
        self.reverse_digits = reverse_digits
        self.token_names = digit_names(10) + ("+", "=", PAD)

    def prompt_len(self, length):
        return 2 * length + 1

    def answer_len(self, length):
        return length + 1

    def draw(self, batch_size, length, generator):
        # (B, 2n)
        digits = torch.randint(
            0, 10, (batch_size, 2 * length), generator=generator
        )
        plus = digits.new_full((batch_size, 1), self.token_id("+"))
        # (B, 2n + 1)
        return torch.cat(
            [digits[:, :length], plus, digits[:, length:]], dim=1
        )

    def solve(self, prompt):
        n = (prompt.shape[1] - 1) // 2
        a, b = prompt[:, :n], prompt[:, n + 1 :]  # (B, n) each
        if (
            prompt.shape[1] % 2 == 0
            or (prompt[:, n] != self.token_id("+")).any()
            or a.max() > 9
            or b.max() > 9
        ):
            raise ValueError("an addition prompt is n digits, '+', n digits")
        if self.reverse_digits:
            a, b = a.flip(1), b.flip(1)  # most-significant first from here on
        # (B, n + 1)
        total = torch.zeros(prompt.shape[0], n + 1, dtype=torch.long)
        carry = torch.zeros(prompt.shape[0], dtype=torch.long)
        for i in range(n - 1, -1, -1):  # school addition, right to left
            column = a[:, i] + b[:, i] + carry
            total[:, i + 1], carry = column % 10, column // 10
        total[:, 0] = carry
        return total.flip(1) if self.reverse_digits else total


class ModularRunningSumTask(LabellingTask):
    """Label ``y_i = (x_0 + … + x_i) mod base``, the running sum.

    The sum *includes* ``x_i``, which position ``i`` has read, so every
    position is scored. Base 10: ``3 9 4`` → ``3 2 6``. Base 2 = running
    parity."""

    def __init__(self, base: int = 10):
        check_count("base", base, 2)
        self.base = base
        self.token_names = digit_names(base) + (PAD,)
        self.chance_accuracy = 1 / base

    def draw(self, batch_size, length, generator):
        # (B, n)
        return torch.randint(
            0, self.base, (batch_size, length), generator=generator
        )

    def label(self, x):
        return torch.cumsum(x, dim=1) % self.base, torch.ones_like(
            x, dtype=torch.bool
        )


class ParityTask(PromptAnswerTask):
    """Is the number of ones odd? ``1 0 1 1 SEP`` → ``1``.

    Length 4 in the example; only the answer position is scored."""

    token_names = ("0", "1", SEP, PAD)
    chance_accuracy = 0.5

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        # (B, n); parity is a fair coin
        return torch.randint(0, 2, (batch_size, length), generator=generator)

    def solve(self, prompt):
        # (B, 1); ids of '0' and '1' are 0 and 1
        return prompt.sum(dim=1, keepdim=True) % 2
