"""The task API: a :class:`Batch` and the :class:`Task` base class.

Each task is a pure function of ``(batch_size, length, generator)``, the task
API of Delétang et al. (2023) and Ruoss et al. (2023, randomized positional
encodings): the same generator state gives the same batch and nothing global
is read or written. ``length`` is the *problem size* (number of input items,
digits or key–value pairs), so a model trained at one length can be tested at
longer ones; ``task.seq_len(length)`` says how many positions that takes, to
choose a model's ``max_len``. A task lays its problems out as a batch in one
of two ways (:mod:`annotated.tasks.layouts`): prompt → answer, or one label
per input position.

Batches are made on the CPU (``Batch.to(device)`` moves them). ``generator``
is a ``torch.Generator`` (advanced by the call) or an int seed. Every
vocabulary ends with PAD. ``chance_accuracy`` is the token accuracy, at the
scored positions, of the best guess that ignores the input (None where no
simple value exists). Binary labels are drawn balanced.

Legend: B batch, T sequence length, n problem length, P prompt length, A
answer length.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import torch

SEP, PAD = "SEP", "PAD"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Batch:
    """One batch: ``inputs``, ``targets`` and ``target_mask``, each (B, T).

    ``inputs`` and ``targets`` are long, ``target_mask`` bool (True = scored).

    ``positions`` (B, T) long, optional: the position id of each token, for
    task formats that number tokens themselves (position coupling, Abacus);
    ``None`` = 0…T−1 (or the model's own rule). Training and evaluation pass
    it to the model as ``model(inputs, positions=positions)``."""

    inputs: torch.Tensor
    targets: torch.Tensor
    target_mask: torch.Tensor
    positions: torch.Tensor | None = None

    def __post_init__(self):
        if (
            self.inputs.dim() != 2
            or self.inputs.shape != self.targets.shape
            or self.inputs.shape != self.target_mask.shape
        ):
            raise ValueError(
                "inputs, targets and target_mask must share one (B, T) "
                f"shape; got {tuple(self.inputs.shape)}, "
                f"{tuple(self.targets.shape)}, "
                f"{tuple(self.target_mask.shape)}"
            )
        if (
            self.inputs.dtype != torch.long
            or self.targets.dtype != torch.long
            or self.target_mask.dtype != torch.bool
        ):
            raise ValueError(
                "inputs and targets must be torch.long "
                "and target_mask torch.bool"
            )
        if self.positions is not None and (
            self.positions.shape != self.inputs.shape
            or self.positions.dtype != torch.long
        ):
            raise ValueError(
                "positions must be a torch.long tensor of the inputs' shape "
                f"{tuple(self.inputs.shape)}; "
                f"got {self.positions.dtype} {tuple(self.positions.shape)}"
            )

    def to(self, device) -> Batch:
        positions = (
            None if self.positions is None else self.positions.to(device)
        )
        return Batch(
            self.inputs.to(device),
            self.targets.to(device),
            self.target_mask.to(device),
            positions,
        )


def digit_names(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(n))


def letter_names(n: int) -> tuple[str, ...]:
    letters = string.ascii_lowercase + string.ascii_uppercase
    return tuple(
        letters[i] if i < len(letters) else f"s{i}" for i in range(n)
    )


def as_generator(generator) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise TypeError(
        "generator must be a torch.Generator or an int seed, "
        f"got {type(generator).__name__}"
    )


def fair_coin(size, generator: torch.Generator) -> torch.Tensor:
    """Booleans of shape ``size``, each True with probability ½.

    For balanced binary labels."""
    return torch.rand(size, generator=generator) < 0.5  # fair coin per entry


def check_count(name: str, value, minimum: int) -> None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")


class Task:
    """Base class of every task.

    Subclass it and give ``token_names``, ``seq_len`` and ``draw`` +
    ``batch_from`` (or override ``sample`` as a whole); register an instance
    with :func:`~annotated.tasks.registry.register_task`."""

    token_names: tuple[str, ...] = ()
    chance_accuracy: float | None = None
    min_length: int = 1
    # largest problem length the vocabulary allows; None = unbounded
    max_length: int | None = None
    supports_seq2seq: bool = False

    @property
    def vocab_size(self) -> int:
        return len(self.token_names)

    @property
    def pad_id(self) -> int:
        return self.token_names.index(PAD)

    def token_id(self, name: str) -> int:
        if name not in self.token_names:
            raise ValueError(
                f"{name!r} is not a token of {self!r}; "
                f"tokens: {' '.join(self.token_names)}"
            )
        return self.token_names.index(name)

    def encode(self, tokens: str | Sequence[str]) -> torch.Tensor:
        """Token names (a space-separated string or a list) → ids (T,)."""
        names = tokens.split() if isinstance(tokens, str) else list(tokens)
        return torch.tensor(
            [self.token_id(t) for t in names], dtype=torch.long
        )

    def decode(self, ids) -> str:
        """Ids (T,) → space-separated token names."""
        return " ".join(
            self.token_names[i] for i in torch.as_tensor(ids).tolist()
        )

    def check_length(self, length: int) -> None:
        check_count("length", length, self.min_length)
        if self.max_length is not None and length > self.max_length:
            raise ValueError(
                f"{self!r} supports lengths up to {self.max_length}, "
                f"got {length}; enlarge its vocabulary"
            )

    def seq_len(self, length: int) -> int:
        raise NotImplementedError

    def draw(
        self, batch_size: int, length: int, generator: torch.Generator
    ) -> torch.Tensor:
        """The random part of a batch: prompts or labelled inputs.

        Prompts (B, P) or labelled inputs (B, n)."""
        raise NotImplementedError

    def batch_from(self, problem: torch.Tensor) -> Batch:
        """Lay out given problems as a :class:`Batch`; deterministic.

        Problems (B, P), or one (P,)."""
        raise NotImplementedError

    def sample(
        self, batch_size: int, length: int, generator, *, split: str = "train"
    ) -> Batch:
        """A batch of ``batch_size`` problems of size ``length``.

        For algorithmic tasks ``split`` changes nothing (every batch is fresh;
        held-out data = another generator seed)."""
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.batch_from(
            self.draw(batch_size, length, as_generator(generator))
        )

    def __call__(
        self, batch_size: int, length: int, generator, *, split: str = "train"
    ) -> Batch:
        return self.sample(batch_size, length, generator, split=split)

    def seq2seq(
        self, batch_size: int, length: int, generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError(
            f"{self!r} has no prompt/answer split; "
            "use sample() (inputs, targets, target_mask)"
        )

    def __repr__(self) -> str:
        skip = {"token_names", "chance_accuracy", "min_length", "max_length"}
        params = ", ".join(
            f"{k}={v!r}"
            for k, v in vars(self).items()
            if k not in skip and not k.startswith("_")
        )
        return f"{type(self).__name__}({params})"
