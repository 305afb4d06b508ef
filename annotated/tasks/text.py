"""Character-level text: a tokenizer and random training windows.

A character-level language model (Karpathy's char-rnn, 2015; nanoGPT)
predicts the next character: the vocabulary is the set of characters in the
corpus, ids in sorted order. :class:`TextDataset` is a
:class:`~annotated.tasks.base.Task` whose ``length`` is the context length,
so the training loop treats text like any algorithmic task; the registry
(:mod:`annotated.tasks.registry`) names it ``"tiny_shakespeare"``, and it
reads the corpus (:mod:`annotated.tasks.corpus`) on first use, not at
import.

Legend: B batch, T context length, N characters in a split.
"""

from __future__ import annotations

import torch

from annotated.tasks.base import (
    SPLITS,
    Batch,
    Task,
    as_generator,
    check_count,
)


class CharTokenizer:
    """Characters ↔ ids; the vocabulary is ``sorted(set(text))``.

    >>> tok = CharTokenizer("hello")
    >>> tok.vocab_size, tok.encode("hole").tolist(), tok.decode([3, 1])
    (4, [1, 3, 2, 0], 'oh')
    """

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError(
                "CharTokenizer needs a non-empty string "
                "to take its characters from"
            )
        self.chars = "".join(sorted(set(text)))
        self._ids = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def token_names(self) -> tuple[str, ...]:
        """Printable names for plots: newline → ``\\n``, space → ``␣``."""
        readable = {"\n": "\\n", " ": "␣", "\t": "\\t"}
        return tuple(readable.get(c, c) for c in self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - self._ids.keys())
        if unknown:
            raise ValueError(
                f"characters not in the vocabulary: {unknown[:10]!r}; "
                "build the tokenizer from a text holding them"
            )
        # (N,)
        return torch.tensor([self._ids[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        ids = torch.as_tensor(ids).reshape(-1).tolist()
        if any(i < 0 or i >= self.vocab_size for i in ids):
            raise ValueError(f"ids must lie in [0, {self.vocab_size})")
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, state: dict) -> CharTokenizer:
        if state.get("kind") != "char" or not isinstance(
            state.get("chars"), str
        ):
            raise ValueError(
                "expected a dict made by CharTokenizer.to_dict(): "
                "{'kind': 'char', 'chars': ...}"
            )
        return cls(state["chars"])

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class TextDataset(Task):
    """Random windows of a text for next-character prediction.

    The windows come from a contiguous train/val split.

    ``sample(batch_size, length, generator, split="train")`` takes
    ``batch_size`` windows of ``length + 1`` characters at uniform random
    offsets of the split: ``inputs`` are the first ``length``, ``targets`` the
    last ``length`` (every position scored). The first ``1 - val_fraction`` of
    the text is ``"train"``, the rest ``"val"``. ``source`` is the text or a
    zero-argument function returning it, called on first use (e.g.
    :func:`load_tiny_shakespeare`). Text "hello world", length 4: a window
    ``o wo`` + ``r`` gives inputs ``o␣wo``, targets ``␣wor``.
    """

    def __init__(
        self,
        source,
        *,
        val_fraction: float = 0.1,
        tokenizer: CharTokenizer | None = None,
    ):
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(
                "val_fraction must lie strictly between 0 and 1, "
                f"got {val_fraction}"
            )
        self.source = (
            getattr(source, "__name__", "<callable>")
            if callable(source)
            else "<text>"
        )
        self.val_fraction = val_fraction
        self._text = None if callable(source) else source
        self._load = source if callable(source) else None
        self._tokenizer = tokenizer
        self._splits: dict[str, torch.Tensor] | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._load()
        return self._text

    @property
    def tokenizer(self) -> CharTokenizer:
        if self._tokenizer is None:
            self._tokenizer = CharTokenizer(self.text)
        return self._tokenizer

    @property
    def splits(self) -> dict[str, torch.Tensor]:
        """Token ids of each split.

        ``{"train": (N_train,), "val": (N_val,)}``."""
        if self._splits is None:
            ids = self.tokenizer.encode(self.text)
            cut = int(len(ids) * (1 - self.val_fraction))
            self._splits = {"train": ids[:cut], "val": ids[cut:]}
        return self._splits

    @property
    def token_names(self) -> tuple[str, ...]:
        return self.tokenizer.token_names

    def seq_len(self, length: int) -> int:
        self.check_length(length)
        return length

    def encode(self, tokens: str) -> torch.Tensor:
        return self.tokenizer.encode(tokens)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids)

    def sample(
        self, batch_size: int, length: int, generator, *, split: str = "train"
    ) -> Batch:
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        ids = self.splits[split]  # (N,)
        if len(ids) < length + 1:
            raise ValueError(
                f"the {split} split has {len(ids)} characters, a window of "
                f"length {length} needs {length + 1}; "
                "use a shorter length or a longer text"
            )
        # (B, 1)
        starts = torch.randint(
            0,
            len(ids) - length,
            (batch_size, 1),
            generator=as_generator(generator),
        )
        windows = ids[starts + torch.arange(length + 1)]  # (B, T + 1)
        inputs, targets = windows[:, :-1], windows[:, 1:]  # (B, T) each
        return Batch(
            inputs, targets, torch.ones_like(inputs, dtype=torch.bool)
        )
