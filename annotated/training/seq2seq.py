"""An encoder-decoder in the training loop: source and answer side by side.

The loop of :mod:`annotated.training.loop` trains on :class:`Batch` rows,
one sequence each, read as ``model(inputs)``; an encoder-decoder
(:class:`~annotated.models.transformer.EncoderDecoder`) reads two. Here a
translation task's pairs are laid out as one row, source first::

    inputs   s₁ … s_S   BOS  y₁ … y_{A−1}     (the decoder's inputs)
    targets  PAD … PAD  y₁   y₂ … y_A
    scored   0  …  0    1    1  …  1

and :class:`PairedEncoderDecoder` splits the row again: the last A
columns go to the decoder, the rest (right-padded with PAD, which a model
built with ``pad_id`` hides) to the encoder. Its logits for the source
columns are zeros and never scored. It has exactly the weights of an
EncoderDecoder, under the same names, so the run's model.pt loads with
:func:`~annotated.models.transformer.load_model`.

With these rows the loop's exact match is the greedy decoder's: a row
counts when every answer token is the argmax after the right prefix, and
then greedy decoding, which feeds back its own argmax, writes exactly that
answer; when one token is wrong, greedy writes that wrong token too.

A task qualifies when it gives ``seq2seq`` pairs, ``decoder_inputs``
(BOS, then the answer shifted right) and ``answer_len``, as
:class:`~annotated.tasks.dates.DateTask` does.

Legend: B batch, S source length, A answer length, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from annotated.models.config import ModelConfig
from annotated.models.transformer import EncoderDecoder, ModelOutput
from annotated.tasks.base import Batch, Task

__all__ = ["PairedBatches", "PairedEncoderDecoder", "check_paired_task"]


def check_paired_task(task: Task) -> None:
    """Refuse a task an encoder-decoder cannot be trained on here."""
    if not all(
        hasattr(task, name) for name in ("decoder_inputs", "answer_len")
    ) or not getattr(task, "supports_seq2seq", False):
        raise ValueError(
            f"an encoder-decoder needs a task of source → answer pairs with "
            f"a start token (decoder_inputs, answer_len), such as 'dates'; "
            f"{task!r} has none: set model.arch to 'decoder'"
        )


class PairedBatches(Task):
    """``task``'s (source, answer) pairs as one row each: source, then the
    decoder's inputs; only the answer is scored (see the module)."""

    def __init__(self, task: Task):
        check_paired_task(task)
        self.task = task
        self.token_names = task.token_names
        self.min_length, self.max_length = task.min_length, task.max_length
        self.eval_splits = getattr(task, "eval_splits", ())

    def check_length(self, length: int) -> None:
        self.task.check_length(length)

    def seq_len(self, length: int) -> int:
        return self.task.seq_len(length)

    def answer_len(self, length: int) -> int:
        return self.task.answer_len(length)

    def sample(
        self, batch_size: int, length: int, generator, *, split="train"
    ) -> Batch:
        """A batch of rows (B, S + A): the task's own split names apply."""
        src, answer = self.task.seq2seq(  # (B, S), (B, A)
            batch_size, length, generator, split=split
        )
        inputs = torch.cat([src, self.task.decoder_inputs(answer)], 1)
        targets = torch.cat([torch.full_like(src, self.pad_id), answer], 1)
        scored = torch.cat(  # (B, S + A): the answer only
            [
                src.new_zeros(src.shape, dtype=torch.bool),
                answer.new_ones(answer.shape, dtype=torch.bool),
            ],
            1,
        )
        return Batch(inputs, targets, scored)

    def __repr__(self) -> str:
        return f"PairedBatches({self.task!r})"


class PairedEncoderDecoder(EncoderDecoder):
    """An EncoderDecoder that reads :class:`PairedBatches` rows:
    ``forward(idx (B, S + A))`` → logits (B, S + A, V), zeros for the
    source columns. Returns no attention weights."""

    def __init__(self, config: ModelConfig, answer_len: int):
        super().__init__(config)
        self.answer_len = answer_len

    @classmethod
    def from_model(cls, model: EncoderDecoder, answer_len: int):
        """The same weights, reading paired rows."""
        paired = cls(model.config, answer_len)
        paired.load_state_dict(model.state_dict())
        return paired.to(next(model.parameters()).device)

    def forward(self, idx, *, need_weights=False) -> ModelOutput:
        a = self.answer_len
        src, tgt_in = idx[:, :-a], idx[:, -a:]  # (B, S), (B, A)
        logits = super().forward(src, tgt_in).logits  # (B, A, V)
        return ModelOutput(F.pad(logits, (0, 0, src.shape[1], 0)))
