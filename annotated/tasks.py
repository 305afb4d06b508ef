"""Algorithmic tasks: pure, seeded generators of training batches, and their registry.

Each task is a pure function of ``(batch_size, length, generator)``, the task API of
Delétang et al. (2023) and Ruoss et al. (2023, randomized positional encodings): the same
generator state gives the same batch and nothing global is read or written. ``length`` is
the *problem size* (number of input items, digits or key–value pairs), so a model trained
at one length can be tested at longer ones; ``task.seq_len(length)`` says how many
positions that takes, to choose a model's ``max_len``.

Batch layout (decoder-only models, next-token supervision)
    ``Batch(inputs, targets, target_mask)``, each (B, T). ``targets[b, i]`` is the token the
    model must output at position ``i`` having read ``inputs[b, :i+1]``; loss and accuracy
    count only where ``target_mask`` is True.

    * Prompt → answer tasks (copy, reverse, sort, addition, parity, contains-pattern,
      long-range match, associative recall) write one sequence ``s = prompt SEP answer`` and
      train as a language model: ``inputs = s[:-1]``, ``targets = s[1:]``, scored only where
      the target is an answer token, i.e. from the SEP position on (Kazemnejad et al. 2023;
      Ruoss et al. 2023). The answer positions are teacher-forced, so "every scored position
      right" is the same event as "greedy decoding after SEP writes the whole answer".
      ``task.seq2seq(...)`` gives ``(prompt, answer)`` for an encoder-decoder model instead.
    * Labelling tasks (modular running sum, k-back) put one label on each input position:
      ``inputs = x``, ``targets = labels``; unscored targets hold PAD.

Batches are made on the CPU (``Batch.to(device)`` moves them). ``generator`` is a
``torch.Generator`` (advanced by the call) or an int seed. Every vocabulary ends with PAD.
``chance_accuracy`` is the token accuracy, at the scored positions, of the best guess that
ignores the input (None where no simple value exists). Binary labels are drawn balanced.

Legend: B batch, T sequence length, n problem length, P prompt length, A answer length.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

import torch

SEP, PAD = "SEP", "PAD"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Batch:
    """One batch: ``inputs`` and ``targets`` (B, T) long, ``target_mask`` (B, T) bool (True = scored)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    target_mask: torch.Tensor

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
        if self.inputs.dtype != torch.long or self.targets.dtype != torch.long or self.target_mask.dtype != torch.bool:
            raise ValueError("inputs and targets must be torch.long and target_mask torch.bool")

    def to(self, device) -> Batch:
        return Batch(self.inputs.to(device), self.targets.to(device), self.target_mask.to(device))


def digit_names(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(n))


def letter_names(n: int) -> tuple[str, ...]:
    letters = string.ascii_lowercase + string.ascii_uppercase
    return tuple(letters[i] if i < len(letters) else f"s{i}" for i in range(n))


def as_generator(generator) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise TypeError(f"generator must be a torch.Generator or an int seed, got {type(generator).__name__}")


def _coin(size, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(size, generator=generator) < 0.5  # fair coin per entry


def check_count(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")


class Task:
    """Base class. Subclass it and give ``token_names``, ``seq_len`` and ``draw`` + ``batch_from``
    (or override ``sample`` as a whole); register an instance with :func:`register_task`."""

    token_names: tuple[str, ...] = ()
    chance_accuracy: float | None = None
    min_length: int = 1
    max_length: int | None = None  # largest problem length the vocabulary allows; None = unbounded
    supports_seq2seq: bool = False

    @property
    def vocab_size(self) -> int:
        return len(self.token_names)

    @property
    def pad_id(self) -> int:
        return self.token_names.index(PAD)

    def token_id(self, name: str) -> int:
        if name not in self.token_names:
            raise ValueError(f"{name!r} is not a token of {self!r}; tokens: {' '.join(self.token_names)}")
        return self.token_names.index(name)

    def encode(self, tokens: str | Sequence[str]) -> torch.Tensor:
        """Token names (a space-separated string or a list) → ids (T,)."""
        names = tokens.split() if isinstance(tokens, str) else list(tokens)
        return torch.tensor([self.token_id(t) for t in names], dtype=torch.long)

    def decode(self, ids) -> str:
        """Ids (T,) → space-separated token names."""
        return " ".join(self.token_names[i] for i in torch.as_tensor(ids).tolist())

    def check_length(self, length: int) -> None:
        check_count("length", length, self.min_length)
        if self.max_length is not None and length > self.max_length:
            raise ValueError(f"{self!r} supports lengths up to {self.max_length}, got {length}; enlarge its vocabulary")

    def seq_len(self, length: int) -> int:
        raise NotImplementedError

    def draw(self, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """The random part of a batch: prompts (B, P) or labelled inputs (B, n)."""
        raise NotImplementedError

    def batch_from(self, problem: torch.Tensor) -> Batch:
        """Lay out given problems (B, P) or one (P,) as a :class:`Batch`; deterministic."""
        raise NotImplementedError

    def sample(self, batch_size: int, length: int, generator, *, split: str = "train") -> Batch:
        """A batch of ``batch_size`` problems of size ``length``. For algorithmic tasks ``split``
        changes nothing (every batch is fresh; held-out data = another generator seed)."""
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.batch_from(self.draw(batch_size, length, as_generator(generator)))

    def __call__(self, batch_size: int, length: int, generator, *, split: str = "train") -> Batch:
        return self.sample(batch_size, length, generator, split=split)

    def seq2seq(self, batch_size: int, length: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError(f"{self!r} has no prompt/answer split; use sample() (inputs, targets, target_mask)")

    def __repr__(self) -> str:
        skip = {"token_names", "chance_accuracy", "min_length", "max_length"}
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k not in skip and not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def _as_problem(problem: torch.Tensor, task: Task) -> torch.Tensor:
    problem = torch.as_tensor(problem, dtype=torch.long)
    problem = problem[None] if problem.dim() == 1 else problem  # (B, P)
    if problem.dim() != 2 or problem.numel() == 0:
        raise ValueError(f"a problem must be a non-empty (B, P) tensor of token ids, got shape {tuple(problem.shape)}")
    if problem.min() < 0 or problem.max() >= task.vocab_size:
        raise ValueError(f"token ids must lie in [0, {task.vocab_size}) for {task!r}")
    return problem


class PromptAnswerTask(Task):
    """``prompt SEP answer`` laid out for next-token training; subclasses give ``draw`` and ``solve``."""

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
        return self.prompt_len(length) + self.answer_len(length)  # s has P + 1 + A tokens, inputs drop the last

    def solve(self, prompt: torch.Tensor) -> torch.Tensor:
        """The correct answers (B, A) to prompts (B, P)."""
        raise NotImplementedError

    def layout(self, prompt: torch.Tensor, answer: torch.Tensor) -> Batch:
        batch_size, prompt_len = prompt.shape
        sep = prompt.new_full((batch_size, 1), self.sep_id)
        s = torch.cat([prompt, sep, answer], dim=1)  # (B, P + 1 + A)
        scored = torch.arange(s.shape[1] - 1) >= prompt_len  # (T,): SEP and the answer tokens but the last
        return Batch(s[:, :-1], s[:, 1:], scored.expand(batch_size, -1).clone())

    def batch_from(self, problem: torch.Tensor) -> Batch:
        prompt = _as_problem(problem, self)
        return self.layout(prompt, self.solve(prompt))

    def seq2seq(self, batch_size: int, length: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Source prompts (B, P) and target answers (B, A), for an encoder-decoder model."""
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        prompt = self.draw(batch_size, length, as_generator(generator))
        return prompt, self.solve(prompt)


class LabellingTask(Task):
    """One label per input position; subclasses give ``draw`` and ``label``."""

    def seq_len(self, length: int) -> int:
        self.check_length(length)
        return length

    def label(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels (B, n) and which of them are scored (B, n) for inputs (B, n)."""
        raise NotImplementedError

    def batch_from(self, problem: torch.Tensor) -> Batch:
        x = _as_problem(problem, self)
        labels, scored = self.label(x)
        return Batch(x, torch.where(scored, labels, self.pad_id), scored)


class _SymbolSequenceTask(PromptAnswerTask):
    def __init__(self, n_symbols: int = 10):
        check_count("n_symbols", n_symbols, 2)
        self.n_symbols = n_symbols
        self.token_names = digit_names(n_symbols) + (SEP, PAD)

    def draw(self, batch_size, length, generator):
        return torch.randint(0, self.n_symbols, (batch_size, length), generator=generator)  # (B, n)


class CopyTask(_SymbolSequenceTask):
    """Copy the prompt after SEP (Graves et al. 2014). Length 3, prompt ``4 1 7``::

    s       4 1 7 SEP 4 1 7
    inputs  4 1 7 SEP 4 1        targets 1 7 SEP 4 1 7        scored . . . x x x
    """

    def __init__(self, n_symbols: int = 10):
        super().__init__(n_symbols)
        self.chance_accuracy = 1 / n_symbols

    def solve(self, prompt):
        return prompt.clone()


class ReverseTask(_SymbolSequenceTask):
    """Write the prompt backwards after SEP. Length 3: ``4 1 7 SEP`` → answer ``7 1 4``."""

    def __init__(self, n_symbols: int = 10):
        super().__init__(n_symbols)
        self.chance_accuracy = 1 / n_symbols

    def solve(self, prompt):
        return prompt.flip(1)


class SortTask(_SymbolSequenceTask):
    """Sort integers ascending (repeats kept). Length 5: ``3 0 3 9 1 SEP`` → answer ``0 1 3 3 9``.
    No chance level: sorted outputs are not uniform per position."""

    def solve(self, prompt):
        return prompt.sort(dim=1).values


class AdditionTask(PromptAnswerTask):
    """Add two ``length``-digit numbers (leading zeros allowed); the sum has ``length + 1`` digits.

    ``reverse_digits=False`` writes every number most-significant digit first, as on paper:
    length 3, ``4 7 2 + 3 5 1 =`` → ``0 8 2 3``. ``reverse_digits=True`` writes all three
    least-significant first (``2 7 4 + 1 5 3 =`` → ``3 2 8 0``), so a left-to-right model
    meets each carry before it needs it: the easier order (Lee et al. 2023; Zhou et al. 2024).
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
        digits = torch.randint(0, 10, (batch_size, 2 * length), generator=generator)  # (B, 2n)
        plus = digits.new_full((batch_size, 1), self.token_id("+"))
        return torch.cat([digits[:, :length], plus, digits[:, length:]], dim=1)  # (B, 2n + 1)

    def solve(self, prompt):
        n = (prompt.shape[1] - 1) // 2
        a, b = prompt[:, :n], prompt[:, n + 1 :]  # (B, n) each
        if prompt.shape[1] % 2 == 0 or (prompt[:, n] != self.token_id("+")).any() or a.max() > 9 or b.max() > 9:
            raise ValueError("an addition prompt is n digits, '+', n digits")
        if self.reverse_digits:
            a, b = a.flip(1), b.flip(1)  # most-significant first from here on
        total = torch.zeros(prompt.shape[0], n + 1, dtype=torch.long)  # (B, n + 1)
        carry = torch.zeros(prompt.shape[0], dtype=torch.long)
        for i in range(n - 1, -1, -1):  # school addition, right to left
            column = a[:, i] + b[:, i] + carry
            total[:, i + 1], carry = column % 10, column // 10
        total[:, 0] = carry
        return total.flip(1) if self.reverse_digits else total


class ModularRunningSumTask(LabellingTask):
    """Label ``y_i = (x_0 + … + x_i) mod base``: the sum *including* ``x_i``, which position ``i``
    has read, so every position is scored. Base 10: ``3 9 4`` → ``3 2 6``. Base 2 = running parity."""

    def __init__(self, base: int = 10):
        check_count("base", base, 2)
        self.base = base
        self.token_names = digit_names(base) + (PAD,)
        self.chance_accuracy = 1 / base

    def draw(self, batch_size, length, generator):
        return torch.randint(0, self.base, (batch_size, length), generator=generator)  # (B, n)

    def label(self, x):
        return torch.cumsum(x, dim=1) % self.base, torch.ones_like(x, dtype=torch.bool)


class ParityTask(PromptAnswerTask):
    """Is the number of ones odd? Length 4: ``1 0 1 1 SEP`` → ``1``; only that position is scored."""

    token_names = ("0", "1", SEP, PAD)
    chance_accuracy = 0.5

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        return torch.randint(0, 2, (batch_size, length), generator=generator)  # (B, n); parity is a fair coin

    def solve(self, prompt):
        return prompt.sum(dim=1, keepdim=True) % 2  # (B, 1); ids of '0' and '1' are 0 and 1


class KBackTask(LabellingTask):
    """Label ``1`` where ``x_i == x_{i-k}``, else ``0``; the first ``k`` positions are not scored.
    k = 2: ``a b a b c b`` → ``PAD PAD 1 1 0 1``. Each scored label is drawn 1 with probability ½."""

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
        repeat, other = _coin(shape, generator), torch.randint(1, v, shape, generator=generator)
        for i in range(k, length):  # left to right: x[i - k] is final when x[i] is set
            x[:, i] = torch.where(repeat[:, i], x[:, i - self.k], (x[:, i - k] + other[:, i]) % v)
        return x

    def label(self, x):
        match = torch.zeros_like(x, dtype=torch.bool)
        match[:, self.k :] = x[:, self.k :] == x[:, : -self.k]
        scored = (torch.arange(x.shape[1]) >= self.k).expand_as(x)  # (B, n)
        return match.long() + self.token_id("0"), scored


class ContainsPatternTask(PromptAnswerTask):
    """Does a fixed pattern occur anywhere in the prompt? One label per sequence, the same at any
    offset (shift-invariant). Pattern ``abc``: ``d a b c a a SEP`` → ``1``, ``a b d c a b SEP`` → ``0``.
    Negatives contain no occurrence; positives get one planted at a uniform offset (half each)."""

    def __init__(self, pattern: str | Sequence[int] = "abc", n_symbols: int = 4):
        check_count("n_symbols", n_symbols, 2)
        names = letter_names(n_symbols)
        ids = [names.index(c) if c in names else -1 for c in pattern] if isinstance(pattern, str) else list(pattern)
        if not ids or min(ids) < 0 or max(ids) >= n_symbols:
            raise ValueError(f"pattern must be a non-empty sequence of symbols among {''.join(names)}, got {pattern!r}")
        self.pattern, self.n_symbols = pattern, n_symbols
        self._pattern = torch.tensor(ids, dtype=torch.long)  # (p,)
        self.token_names = names + ("0", "1", SEP, PAD)
        self.min_length = len(ids)
        self.chance_accuracy = 0.5

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        p, v, pattern = len(self._pattern), self.n_symbols, self._pattern
        x = torch.randint(0, v, (batch_size, length), generator=generator)  # (B, n)
        bump = torch.randint(1, v, (batch_size, length), generator=generator)
        positive = _coin((batch_size,), generator)
        offset = torch.randint(0, length - p + 1, (batch_size, 1), generator=generator)  # (B, 1)
        for i in range(p - 1, length):  # erase every occurrence: change the symbol that would complete one
            hit = (x[:, i - p + 1 : i + 1] == pattern).all(dim=1)
            x[:, i] = torch.where(hit, (x[:, i] + bump[:, i]) % v, x[:, i])
        rel = torch.arange(length) - offset  # (B, n): position relative to the planted copy
        plant = (rel >= 0) & (rel < p) & positive[:, None]
        return torch.where(plant, pattern[rel.clamp(0, p - 1)], x)

    def solve(self, prompt):
        windows = prompt.unfold(1, len(self._pattern), 1)  # (B, n - p + 1, p)
        found = (windows == self._pattern).all(dim=-1).any(dim=-1, keepdim=True)  # (B, 1)
        return found.long() + self.token_id("0")


class LongRangeMatchTask(PromptAnswerTask):
    """Is the first token equal to the last? ``c a d b c SEP`` → ``1``. Half the sequences match."""

    def __init__(self, n_symbols: int = 4):
        check_count("n_symbols", n_symbols, 2)
        self.n_symbols = n_symbols
        self.token_names = letter_names(n_symbols) + ("0", "1", SEP, PAD)
        self.min_length = 2
        self.chance_accuracy = 0.5

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        x = torch.randint(0, self.n_symbols, (batch_size, length), generator=generator)  # (B, n)
        same = _coin((batch_size,), generator)
        other = (x[:, 0] + torch.randint(1, self.n_symbols, (batch_size,), generator=generator)) % self.n_symbols
        x[:, -1] = torch.where(same, x[:, 0], other)
        return x

    def solve(self, prompt):
        return (prompt[:, :1] == prompt[:, -1:]).long() + self.token_id("0")  # (B, 1)


class AssociativeRecallTask(PromptAnswerTask):
    """``length`` key–value pairs with distinct keys, then a query key; answer its value
    (Ba et al. 2016; Olsson et al. 2022). Length 3: ``c 7 a 2 f 7 a SEP`` → ``2``.
    Keys are letters (``n_keys`` ≥ length), values digits."""

    def __init__(self, n_keys: int = 32, n_values: int = 10):
        check_count("n_keys", n_keys, 1)
        check_count("n_values", n_values, 2)
        self.n_keys, self.n_values = n_keys, n_values
        self.token_names = letter_names(n_keys) + digit_names(n_values) + (SEP, PAD)
        self.max_length = n_keys
        self.chance_accuracy = 1 / n_values

    def prompt_len(self, length):
        return 2 * length + 1

    def answer_len(self, length):
        return 1

    def draw(self, batch_size, length, generator):
        keys = torch.rand(batch_size, self.n_keys, generator=generator).argsort(dim=1)[:, :length]  # (B, n) distinct
        values = torch.randint(self.n_keys, self.n_keys + self.n_values, (batch_size, length), generator=generator)
        query = keys.gather(1, torch.randint(0, length, (batch_size, 1), generator=generator))  # (B, 1)
        pairs = torch.stack([keys, values], dim=2).reshape(batch_size, 2 * length)  # (B, 2n): k v k v …
        return torch.cat([pairs, query], dim=1)  # (B, 2n + 1)

    def solve(self, prompt):
        keys, values, query = prompt[:, 0:-1:2], prompt[:, 1:-1:2], prompt[:, -1:]  # (B, n), (B, n), (B, 1)
        hit = keys == query  # (B, n)
        if prompt.shape[1] % 2 == 0 or not hit.any(dim=1).all():
            raise ValueError("an associative-recall prompt is key value pairs then one of those keys")
        last = (hit * torch.arange(1, hit.shape[1] + 1)).argmax(dim=1, keepdim=True)  # latest binding wins
        return values.gather(1, last)  # (B, 1)


TASKS: dict[str, Task] = {}


def register_task(name: str, task=None, *, replace: bool = False):
    """Add a task under ``name``: ``register_task("mine", MyTask())``, or as a decorator on a
    ``Task`` subclass (instantiated with no arguments): ``@register_task("mine")``.
    A taken name raises ValueError unless ``replace=True``."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ValueError(f"a task name is letters, digits, '_' or '-', got {name!r}")

    def add(obj):
        instance = obj() if isinstance(obj, type) else obj
        if not isinstance(instance, Task):
            raise TypeError(f"register_task needs a Task instance or subclass, got {type(instance).__name__}")
        if name in TASKS and not replace:
            raise ValueError(
                f"a task named {name!r} is already registered; choose another name (taken: {', '.join(sorted(TASKS))}) "
                "or pass replace=True"
            )
        TASKS[name] = instance
        return obj

    return add if task is None else add(task)


def get_task(name: str | Task) -> Task:
    """The registered task called ``name`` (a Task instance is returned as is)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid names: {', '.join(sorted(TASKS))}")
    return TASKS[name]


register_task("copy", CopyTask())
register_task("reverse", ReverseTask())
register_task("sort", SortTask())
register_task("addition", AdditionTask())
register_task("addition_reversed", AdditionTask(reverse_digits=True))
register_task("running_sum", ModularRunningSumTask())
register_task("parity", ParityTask())
register_task("k_back", KBackTask())
register_task("contains_pattern", ContainsPatternTask())
register_task("long_range_match", LongRangeMatchTask())
register_task("associative_recall", AssociativeRecallTask())

# The character-level corpus lives in annotated/text.py; importing it registers "tiny_shakespeare".
from annotated import text as _text  # noqa: E402,F401
