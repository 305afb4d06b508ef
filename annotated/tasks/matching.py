"""Matching tasks: compare tokens at chosen distances, or find one by its key.

k-back compares each token with the one ``k`` before it, long-range match the
first with the last, contains-pattern looks for a fixed pattern at any offset,
and associative recall finds the value bound to a queried key (an
induction-head task). Binary answers are drawn balanced, so chance accuracy is
½.

Legend: B batch, n problem length, p pattern length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from annotated.tasks.base import (
    PAD,
    SEP,
    check_count,
    digit_names,
    fair_coin,
    letter_names,
)
from annotated.tasks.layouts import LabellingTask, PromptAnswerTask


class KBackTask(LabellingTask):
    """Label ``1`` where ``x_i == x_{i-k}``, else ``0``.

    The first ``k`` positions are not scored. k = 2: ``a b a b c b`` →
    ``PAD PAD 1 1 0 1``. Each scored label is drawn 1 with probability ½."""

    def __init__(self, k: int = 2, n_symbols: int = 4):
        check_count("k", k, 1)
        check_count("n_symbols", n_symbols, 2)
        self.k, self.n_symbols = k, n_symbols
        self.token_names = letter_names(n_symbols) + ("0", "1", PAD)
        self.min_length = k + 1
        self.chance_accuracy = 0.5

    def draw(self, batch_size, length, generator):
        shape, k, v = (batch_size, length), self.k, self.n_symbols
        x = torch.randint(0, v, shape, generator=generator)  # (B, n)
        repeat, other = (
            fair_coin(shape, generator),
            torch.randint(1, v, shape, generator=generator),
        )
        # left to right: x[i - k] is final when x[i] is set
        for i in range(k, length):
            x[:, i] = torch.where(
                repeat[:, i],
                x[:, i - self.k],
                (x[:, i - k] + other[:, i]) % v,
            )
        return x

    def label(self, x):
        match = torch.zeros_like(x, dtype=torch.bool)
        match[:, self.k :] = x[:, self.k :] == x[:, : -self.k]
        scored = (torch.arange(x.shape[1]) >= self.k).expand_as(x)  # (B, n)
        return match.long() + self.token_id("0"), scored


class ContainsPatternTask(PromptAnswerTask):
    """Does a fixed pattern occur anywhere in the prompt?

    One label per sequence, the same at any offset (shift-invariant). Pattern
    ``abc``: ``d a b c a a SEP`` → ``1``, ``a b d c a b SEP`` → ``0``.
    Negatives contain no occurrence; positives get one planted at a uniform
    offset (half each)."""

    def __init__(
        self, pattern: str | Sequence[int] = "abc", n_symbols: int = 4
    ):
        check_count("n_symbols", n_symbols, 2)
        names = letter_names(n_symbols)
        ids = (
            [names.index(c) if c in names else -1 for c in pattern]
            if isinstance(pattern, str)
            else list(pattern)
        )
        if not ids or min(ids) < 0 or max(ids) >= n_symbols:
            raise ValueError(
                "pattern must be a non-empty sequence of symbols among "
                f"{''.join(names)}, got {pattern!r}"
            )
        self.pattern, self.n_symbols = pattern, n_symbols
        self._pattern = torch.tensor(ids, dtype=torch.long)  # (p,)
        self.token_names = names + ("0", "1", SEP, PAD)
        self.min_length = len(ids)
        self.chance_accuracy = 0.5

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        p, v, pattern = len(self._pattern), self.n_symbols, self._pattern
        # (B, n)
        x = torch.randint(0, v, (batch_size, length), generator=generator)
        bump = torch.randint(1, v, (batch_size, length), generator=generator)
        positive = fair_coin((batch_size,), generator)
        # (B, 1)
        offset = torch.randint(
            0, length - p + 1, (batch_size, 1), generator=generator
        )
        # erase every occurrence: change the symbol that would complete one
        for i in range(p - 1, length):
            hit = (x[:, i - p + 1 : i + 1] == pattern).all(dim=1)
            x[:, i] = torch.where(hit, (x[:, i] + bump[:, i]) % v, x[:, i])
        # (B, n): position relative to the planted copy
        rel = torch.arange(length) - offset
        plant = (rel >= 0) & (rel < p) & positive[:, None]
        return torch.where(plant, pattern[rel.clamp(0, p - 1)], x)

    def solve(self, prompt):
        windows = prompt.unfold(1, len(self._pattern), 1)  # (B, n - p + 1, p)
        # (B, 1)
        found = (
            (windows == self._pattern).all(dim=-1).any(dim=-1, keepdim=True)
        )
        return found.long() + self.token_id("0")


class LongRangeMatchTask(PromptAnswerTask):
    """Is the first token equal to the last? ``c a d b c SEP`` → ``1``.

    Half the sequences match."""

    def __init__(self, n_symbols: int = 4):
        check_count("n_symbols", n_symbols, 2)
        self.n_symbols = n_symbols
        self.token_names = letter_names(n_symbols) + ("0", "1", SEP, PAD)
        self.min_length = 2
        self.chance_accuracy = 0.5

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        # (B, n)
        x = torch.randint(
            0, self.n_symbols, (batch_size, length), generator=generator
        )
        same = fair_coin((batch_size,), generator)
        other = (
            x[:, 0]
            + torch.randint(
                1, self.n_symbols, (batch_size,), generator=generator
            )
        ) % self.n_symbols
        x[:, -1] = torch.where(same, x[:, 0], other)
        return x

    def solve(self, prompt):
        # (B, 1)
        return (prompt[:, :1] == prompt[:, -1:]).long() + self.token_id("0")


class AssociativeRecallTask(PromptAnswerTask):
    """Key–value pairs, then a query key: answer its value.

    ``length`` pairs with distinct keys (Ba et al. 2016; Olsson et al. 2022).
    Length 3: ``c 7 a 2 f 7 a SEP`` → ``2``. Keys are letters (``n_keys`` ≥
    length), values digits."""

    def __init__(self, n_keys: int = 32, n_values: int = 10):
        check_count("n_keys", n_keys, 1)
        check_count("n_values", n_values, 2)
        self.n_keys, self.n_values = n_keys, n_values
        self.token_names = (
            letter_names(n_keys) + digit_names(n_values) + (SEP, PAD)
        )
        self.max_length = n_keys
        self.chance_accuracy = 1 / n_values

    def prompt_len(self, length):
        return 2 * length + 1

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        # (B, n) distinct
        keys = torch.rand(
            batch_size, self.n_keys, generator=generator
        ).argsort(dim=1)[:, :length]
        values = torch.randint(
            self.n_keys,
            self.n_keys + self.n_values,
            (batch_size, length),
            generator=generator,
        )
        # (B, 1)
        query = keys.gather(
            1, torch.randint(0, length, (batch_size, 1), generator=generator)
        )
        # (B, 2n): k v k v …
        pairs = torch.stack([keys, values], dim=2).reshape(
            batch_size, 2 * length
        )
        return torch.cat([pairs, query], dim=1)  # (B, 2n + 1)

    def solve(self, prompt):
        # (B, n), (B, n), (B, 1)
        keys, values, query = (
            prompt[:, 0:-1:2],
            prompt[:, 1:-1:2],
            prompt[:, -1:],
        )
        hit = keys == query  # (B, n)
        if prompt.shape[1] % 2 == 0 or not hit.any(dim=1).all():
            raise ValueError(
                "an associative-recall prompt is key value pairs "
                "then one of those keys"
            )
        # latest binding wins
        last = (hit * torch.arange(1, hit.shape[1] + 1)).argmax(
            dim=1, keepdim=True
        )
        return values.gather(1, last)  # (B, 1)
