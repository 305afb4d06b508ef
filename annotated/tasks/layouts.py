"""The two ways a task lays out its problems as a :class:`Batch`.

Both are for decoder-only models with next-token supervision.

``Batch(inputs, targets, target_mask)``, each (B, T): ``targets[b, i]`` is the
token the model must output at position ``i`` having read
``inputs[b, :i+1]``; loss and accuracy count only where ``target_mask`` is
True.

* :class:`PromptAnswerTask` (copy, reverse, sort, addition, parity,
  contains-pattern, long-range match, associative recall) writes one
  sequence ``s = prompt SEP answer`` and trains as a language model:
  ``inputs = s[:-1]``, ``targets = s[1:]``, scored only where the target is
  an answer token, i.e. from the SEP position on (Kazemnejad et al. 2023;
  Ruoss et al. 2023). The answer positions are teacher-forced, so "every
  scored position right" is the same event as "greedy decoding after SEP
  writes the whole answer". ``task.seq2seq(...)`` gives
  ``(prompt, answer)`` for an encoder-decoder model instead.
* :class:`LabellingTask` (modular running sum, k-back) puts one label on
  each input position: ``inputs = x``, ``targets = labels``; unscored
  targets hold PAD.

Legend: B batch, T sequence length, n problem length, P prompt length, A
answer length.
"""

from __future__ import annotations

import torch

from annotated.tasks.base import SEP, Batch, Task, as_generator, check_count


def as_problem(problem: torch.Tensor, task: Task) -> torch.Tensor:
    """Problems as a (B, P) long tensor of ``task``'s token ids.

    One (P,) problem becomes a batch of 1; anything else raises ValueError."""
    problem = torch.as_tensor(problem, dtype=torch.long)
    problem = problem[None] if problem.dim() == 1 else problem  # (B, P)
    if problem.dim() != 2 or problem.numel() == 0:
        raise ValueError(
            "a problem must be a non-empty (B, P) tensor of token ids, "
            f"got shape {tuple(problem.shape)}"
        )
    if problem.min() < 0 or problem.max() >= task.vocab_size:
        raise ValueError(
            f"token ids must lie in [0, {task.vocab_size}) for {task!r}"
        )
    return problem


class PromptAnswerTask(Task):
    """``prompt SEP answer`` laid out for next-token training.

    Subclasses give ``draw`` and ``solve``."""

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
        """Prompts (B, P) and answers (B, A), for an encoder-decoder model."""
        check_count("batch_size", batch_size, 1)
        self.check_length(length)
        prompt = self.draw(batch_size, length, as_generator(generator))
        return prompt, self.solve(prompt)


class LabellingTask(Task):
    """One label per input position; subclasses give ``draw``, ``label``."""

    def seq_len(self, length: int) -> int:
        self.check_length(length)
        return length

    def label(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels (B, n) and which are scored (B, n) for inputs (B, n)."""
        raise NotImplementedError

    def batch_from(self, problem: torch.Tensor) -> Batch:
        x = as_problem(problem, self)
        labels, scored = self.label(x)
        return Batch(x, torch.where(scored, labels, self.pad_id), scored)
