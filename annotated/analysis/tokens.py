"""Comparing language models that cut text into different tokens.

A model's loss is a mean over *its* tokens: nats per character for a
character model, nats per subword for a BPE model. A subword model predicts
fewer, longer tokens, so its loss per token is larger even when it models
the text better; the two numbers measure different things. What both
models assign is a probability to the same text, and its negative log,
the total negative log-likelihood (NLL), does not depend on how the text
was cut. Divided by the text's length in characters, in bits:

    bits per character = total NLL (nats) / (characters · ln 2).

For a character model the total is its loss times the characters it
scored, so bits per character = loss / ln 2.

:func:`text_nll` scores every token of an encoded text but the first, in
consecutive windows of ``context`` tokens (each window starts afresh, so a
token sees between 0 and ``context − 1`` tokens before it).
:class:`SplitText` cuts a text at one character for every tokenizer, so
that models with different tokens train on the same characters, and
:func:`val_bits_per_character` scores them on the same characters.

Legend: N tokens of a text, B windows, T context, V vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from annotated.tasks.text import TextDataset

__all__ = [
    "SplitText",
    "bits_per_character",
    "text_nll",
    "val_bits_per_character",
]


def bits_per_character(nll_nats: float, n_chars: int) -> float:
    """Total NLL in nats of a text of ``n_chars`` characters, in bits per
    character: ``nll_nats / (n_chars · ln 2)``.

    >>> bits_per_character(10 * math.log(2), 5)  # 10 bits over 5 chars
    2.0
    """
    if n_chars <= 0:
        raise ValueError(f"n_chars must be positive, got {n_chars}")
    return nll_nats / (n_chars * math.log(2))


@torch.no_grad()
def text_nll(model, ids: torch.Tensor, context: int, batch_size=64):
    """Total NLL (nats) of ``ids[1:]`` given what comes before each, and
    the number of tokens scored (``N − 1``).

    Window ``w`` reads ``ids[w·T : w·T + T]`` and is scored on the next
    ``T`` ids, so every id after the first is scored exactly once; the
    last window may be shorter. ``model(x).logits`` is (B, T, V).
    """
    ids = torch.as_tensor(ids).reshape(-1)  # (N,)
    n = len(ids) - 1  # ids scored
    full = n // context
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, full, batch_size):
        rows = torch.arange(start, min(full, start + batch_size))  # (B,)
        index = rows[:, None] * context + torch.arange(context + 1)
        windows = ids[index].to(device)  # (B, T + 1)
        total += _nll(model, windows)
    if n % context:  # the last, shorter window
        total += _nll(model, ids[full * context :].to(device)[None])
    model.train(was_training)
    return total, n


def _nll(model, windows: torch.Tensor) -> float:
    logits = model(windows[:, :-1]).logits  # (B, T, V)
    nll = F.cross_entropy(
        logits.flatten(0, 1).double(),
        windows[:, 1:].flatten(),
        reduction="sum",
    )
    return nll.item()


class SplitText(TextDataset):
    """A :class:`TextDataset` whose split falls at the same character for
    every tokenizer: the first ``1 − val_fraction`` of the characters of
    ``text`` are ``"train"``, the rest ``"val"`` (``split_texts``), each
    encoded on its own, so no token straddles the cut.

    With a character tokenizer the splits equal ``TextDataset``'s own.
    """

    def __init__(self, text: str, tokenizer, val_fraction: float = 0.1):
        super().__init__(text, val_fraction=val_fraction, tokenizer=tokenizer)
        cut = int(len(text) * (1 - val_fraction))
        self.split_texts = {"train": text[:cut], "val": text[cut:]}

    @property
    def splits(self) -> dict[str, torch.Tensor]:
        """Token ids of each split: ``{"train": (N,), "val": (N,)}``."""
        if self._splits is None:
            self._splits = {
                name: self.tokenizer.encode(part)
                for name, part in self.split_texts.items()
            }
        return self._splits


def val_bits_per_character(model, task: SplitText, context: int, skip=1):
    """Bits per character of ``task``'s validation text after its first
    ``skip`` characters, which are context only; returns ``(bpc, total
    NLL in nats, characters scored)``.

    ``skip`` must end at a token boundary of ``task``'s tokenizer: give
    every model the length of the first token of the coarsest one, and
    all score exactly the same characters.
    """
    ids, text = task.splits["val"], task.split_texts["val"]
    m = next(  # the tokens that hold the first `skip` characters
        (m for m in range(1, skip + 1) if len(task.decode(ids[:m])) >= skip),
        None,
    )
    if m is None or len(task.decode(ids[:m])) != skip:
        raise ValueError(
            f"skip={skip} ends inside a token; use the length in "
            "characters of the first tokens of the validation text"
        )
    nll, _ = text_nll(model, ids[m - 1 :], context)
    n_chars = len(text) - skip
    return bits_per_character(nll, n_chars), nll, n_chars
