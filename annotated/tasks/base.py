"""The task API: a :class:`Batch`, the :class:`Task` base class and its two
layouts.

Each task is a pure function of ``(batch_size, length, generator)``, the task
API of Delétang et al. (2023) and Ruoss et al. (2023, randomized positional
encodings): the same generator state gives the same batch and nothing global
is read or written. ``length`` is the *problem size* (number of input items,
digits or key–value pairs), so a model trained at one length can be tested at
longer ones; ``task.seq_len(length)`` says how many positions that takes, to
choose a model's ``max_len``.

Batch layout (decoder-only models, next-token supervision)
    ``Batch(inputs, targets, target_mask)``, each (B, T). ``targets[b, i]`` is
    the token the model must output at position ``i`` having read
    ``inputs[b, :i+1]``; loss and accuracy count only where ``target_mask`` is
    True.

    * Prompt → answer tasks (copy, reverse, sort, addition, parity, contains-pattern,
      long-range match, associative recall) write one sequence ``s = prompt SEP answer`` and
      train as a language model: ``inputs = s[:-1]``, ``targets = s[1:]``, scored only where
      the target is an answer token, i.e. from the SEP position on (Kazemnejad et al. 2023;
      Ruoss et al. 2023). The answer positions are teacher-forced, so "every scored position
      right" is the same event as "greedy decoding after SEP writes the whole answer".
      ``task.seq2seq(...)`` gives ``(prompt, answer)`` for an encoder-decoder model instead.
    * Labelling tasks (modular running sum, k-back) put one label on each input position:
      ``inputs = x``, ``targets = labels``; unscored targets hold PAD.

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
    """One batch: ``inputs`` and ``targets`` (B, T) long, ``target_mask`` (B,
    T) bool (True = scored).

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
                "inputs, targets and target_mask must share one (B, T) shape; got "
                f"{tuple(self.inputs.shape)}, {tuple(self.targets.shape)}, {tuple(self.target_mask.shape)}"
            )
        if (
            self.inputs.dtype != torch.long
            or self.targets.dtype != torch.long
            or self.target_mask.dtype != torch.bool
        ):
            raise ValueError(
                "inputs and targets must be torch.long and target_mask torch.bool"
            )
        if self.positions is not None and (
            self.positions.shape != self.inputs.shape
            or self.positions.dtype != torch.long
        ):
            raise ValueError(
                f"positions must be a torch.long tensor of the inputs' shape {tuple(self.inputs.shape)}; "
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
        f"generator must be a torch.Generator or an int seed, got {type(generator).__name__}"
    )


def fair_coin(size, generator: torch.Generator) -> torch.Tensor:
    """Booleans of shape ``size``, each True with probability ½ (balanced
    binary labels)."""
    return torch.rand(size, generator=generator) < 0.5  # fair coin per entry


def check_count(name: str, value, minimum: int) -> None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")


class Task:
    """Base class. Subclass it and give ``token_names``, ``seq_len`` and
    ``draw`` + ``batch_from`` (or override ``sample`` as a whole); register an
    instance with :func:`~annotated.tasks.registry.register_task`."""

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
                f"{name!r} is not a token of {self!r}; tokens: {' '.join(self.token_names)}"
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
                f"{self!r} supports lengths up to {self.max_length}, got {length}; enlarge its vocabulary"
            )

    def seq_len(self, length: int) -> int:
        raise NotImplementedError

    def draw(
        self, batch_size: int, length: int, generator: torch.Generator
    ) -> torch.Tensor:
        """The random part of a batch: prompts (B, P) or labelled inputs (B,
        n)."""
        raise NotImplementedError

    def batch_from(self, problem: torch.Tensor) -> Batch:
        """Lay out given problems (B, P) or one (P,) as a :class:`Batch`;
        deterministic."""
        raise NotImplementedError

    def sample(
        self, batch_size: int, length: int, generator, *, split: str = "train"
    ) -> Batch:
        """A batch of ``batch_size`` problems of size ``length``. For
        algorithmic tasks ``split`` changes nothing (every batch is fresh;
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
            f"{self!r} has no prompt/answer split; use sample() (inputs, targets, target_mask)"
        )

    def __repr__(self) -> str:
        skip = {"token_names", "chance_accuracy", "min_length", "max_length"}
        params = ", ".join(
            f"{k}={v!r}"
            for k, v in vars(self).items()
            if k not in skip and not k.startswith("_")
        )
        return f"{type(self).__name__}({params})"


def as_problem(problem: torch.Tensor, task: Task) -> torch.Tensor:
    problem = torch.as_tensor(problem, dtype=torch.long)
    problem = problem[None] if problem.dim() == 1 else problem  # (B, P)
    if problem.dim() != 2 or problem.numel() == 0:
        raise ValueError(
            f"a problem must be a non-empty (B, P) tensor of token ids, got shape {tuple(problem.shape)}"
        )
    if problem.min() < 0 or problem.max() >= task.vocab_size:
        raise ValueError(
            f"token ids must lie in [0, {task.vocab_size}) for {task!r}"
        )
    return problem


class PromptAnswerTask(Task):
    """``prompt SEP answer`` laid out for next-token training; subclasses give
    ``draw`` and ``solve``."""

    supports_seq2seq = True
    sep_name = SEP

    @property
    def sep_id(self) -> int:
        return self.token_id(self.sep_name)

    def prompt_len(self, length: int) -> int:
        return length

    def answer_len(self, length: int) -> int:
        return length

    def seq_len(self, length: int) -> int:
        self.check_length(length)
        # s has P + 1 + A tokens, inputs drop the last
        return self.prompt_len(length) + self.answer_len(length)

    def solve(self, prompt: torch.Tensor) -> torch.Tensor:
        """The correct answers (B, A) to prompts (B, P)."""
        raise NotImplementedError

    def layout(self, prompt: torch.Tensor, answer: torch.Tensor) -> Batch:
        batch_size, prompt_len = prompt.shape
        sep = prompt.new_full((batch_size, 1), self.sep_id)
        s = torch.cat([prompt, sep, answer], dim=1)  # (B, P + 1 + A)
        # (T,): SEP and the answer tokens but the last
        scored = torch.arange(s.shape[1] - 1) >= prompt_len
        return Batch(
            s[:, :-1], s[:, 1:], scored.expand(batch_size, -1).clone()
        )

    def batch_from(self, problem: torch.Tensor) -> Batch:
        prompt = as_problem(problem, self)
        return self.layout(prompt, self.solve(prompt))

    def seq2seq(
        self, batch_size: int, length: int, generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Source prompts (B, P) and target answers (B, A), for an
        encoder-decoder model."""
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        prompt = self.draw(batch_size, length, as_generator(generator))
        return prompt, self.solve(prompt)


class LabellingTask(Task):
    """One label per input position; subclasses give ``draw`` and
    ``label``."""

    def seq_len(self, length: int) -> int:
        self.check_length(length)
        return length

    def label(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels (B, n) and which of them are scored (B, n) for inputs (B,
        n)."""
        raise NotImplementedError

    def batch_from(self, problem: torch.Tensor) -> Batch:
        x = as_problem(problem, self)
        labels, scored = self.label(x)
        return Batch(x, torch.where(scored, labels, self.pad_id), scored)
