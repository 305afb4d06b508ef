"""Sequence tasks: copy, reverse and sort a prompt of symbols after SEP.

The answer is as long as the prompt, so every answer position is scored and
the task asks the model to find, for each output position, the right input
position: by offset (copy), by mirrored offset (reverse) or by rank (sort).
Layout: :class:`~annotated.tasks.layouts.PromptAnswerTask`.

Legend: B batch, n problem length.
"""

from __future__ import annotations

import torch

from annotated.tasks.base import PAD, SEP, check_count, digit_names
from annotated.tasks.layouts import PromptAnswerTask


class _SymbolSequenceTask(PromptAnswerTask):
    def __init__(self, n_symbols: int = 10):
        check_count("n_symbols", n_symbols, 2)
        self.n_symbols = n_symbols
        self.token_names = digit_names(n_symbols) + (SEP, PAD)

    def draw(self, batch_size, length, generator):
        # (B, n)
        return torch.randint(
            0, self.n_symbols, (batch_size, length), generator=generator
        )


class CopyTask(_SymbolSequenceTask):
    """Copy the prompt after SEP (Graves et al. 2014).

    Length 3, prompt ``4 1 7``::

        s        4 1 7 SEP 4 1 7
        inputs   4  1  7    SEP  4  1
        targets  1  7  SEP  4    1  7
        scored   .  .  .    x    x  x
    """

    def __init__(self, n_symbols: int = 10):
        super().__init__(n_symbols)
        self.chance_accuracy = 1 / n_symbols

    def solve(self, prompt):
        return prompt.clone()


class ReverseTask(_SymbolSequenceTask):
    """Write the prompt backwards after SEP.

    Length 3: ``4 1 7 SEP`` → answer ``7 1 4``."""

    def __init__(self, n_symbols: int = 10):
        super().__init__(n_symbols)
        self.chance_accuracy = 1 / n_symbols

    def solve(self, prompt):
        return prompt.flip(1)


class SortTask(_SymbolSequenceTask):
    """Sort integers ascending (repeats kept).

    Length 5: ``3 0 3 9 1 SEP`` → answer ``0 1 3 3 9``. No chance level:
    sorted outputs are not uniform per position."""

    def solve(self, prompt):
        return prompt.sort(dim=1).values
