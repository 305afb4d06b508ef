"""Task formats for length extrapolation.

Reversed addition with position ids, and copy with EOS.

The formats of the papers that made transformers extrapolate on these tasks:

* **Addition, every number least-significant digit first** (Lee et al.
  2023; McLeish et al. 2024), ``a_rev + b_rev = c_rev EOS`` with the answer
  padded to ``n + 1`` digits, so each answer digit needs only the operand
  digits of its own significance and the carry from the digit before.
  Optionally an **end marker** per operand (``a_rev 0 $ + b_rev 0 $ = c_rev
  EOS``): the padded ``0`` and the ``$`` give the carry-out digit and
  ``EOS`` keys of their own significance to read. The task numbers the
  tokens itself and returns the ids in :attr:`Batch.positions`:

  - ``position_ids="abacus"`` (McLeish et al. 2024, "Transformers Can Do
    Arithmetic with the Right Embeddings", §3): each digit gets its place
    within its own number, 1, 2, 3, …; every other token gets 0 (the
    reference code's ``helper``: runs of consecutive digit tokens, counted
    from 1);
  - ``position_ids="coupled"`` (Cho et al. 2024, "Position Coupling", §3):
    tokens of the same significance in the operands and the answer share
    one id: the digit of significance ``s`` (``s = 0`` least significant)
    gets ``s + 1``, ``+`` and ``=`` get 0 (as in the reference code, they
    sit one place below the least significant digit), ``$`` and ``EOS`` get
    ``n + 2`` (one place above the carry-out digit). Ids start at 0; a
    random start is the encoding's business.

  For reversed operands of equal length the two agree on every digit; they
  differ on the other tokens. Cho et al.'s code
  (``HanseulJo/position-coupling``) writes the operands most significant
  digit first and reverses only the answer by default; reversing all three,
  as here, is McLeish et al.'s format and one of Cho et al.'s ablations
  (``reverse_input=True``).

* **Copy with EOS** (Kazemnejad et al. 2023, "The Impact of Positional
  Encoding on Length Generalization in Transformers", their copy task):
  ``x_1 … x_n SEP x_1 … x_n EOS``, scored from SEP on, EOS included, so the
  model must also know *when to stop*. ``repeated=True`` is their copy with a
  repeated token (one symbol ``n`` times): trivial without EOS, a counting
  task with it.

Legend: B batch, n digits per operand (or symbols to copy), T sequence length.
"""

from __future__ import annotations

import torch

from annotated.tasks.base import PAD, SEP, Batch, check_count, digit_names
from annotated.tasks.layouts import PromptAnswerTask

EOS, END_MARKER = "EOS", "$"
POSITION_IDS = ("none", "abacus", "coupled")


def digit_places(ids: torch.Tensor, is_digit: torch.Tensor) -> torch.Tensor:
    """Abacus ids (McLeish et al. 2024): each digit's place in its number.

    Each digit's 1-based place within its run of consecutive digits, 0 for
    every other token. ``ids`` (B, T) token ids, ``is_digit`` (V,) bool per
    token id.

    >>> ids = torch.tensor([[1, 2, 10, 3, 4, 5]])
    >>> digit_places(ids, torch.arange(12) < 10).tolist()
    [[1, 2, 0, 1, 2, 3]]
    """
    digit = is_digit.to(ids.device)[ids]  # (B, T)
    # (B, T)
    index = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    # (B, T): the latest non-digit at or before
    last_other = torch.where(digit, -1, index).cummax(dim=1).values
    return torch.where(digit, index - last_other, 0)


class ReversedAdditionTask(PromptAnswerTask):
    """``a_rev + b_rev = c_rev EOS``: addition, least significant digit first.

    Two ``length``-digit numbers, sum padded to ``length + 1`` digits. Length
    3, 472 + 351 = 823 (module docstring for the options)::

        end_marker=False   2 7 4 + 1 5 3 = 3 2 8 0 EOS
          coupled ids      1 2 3 0 1 2 3 0 1 2 3 4 5
          abacus ids       1 2 3 0 1 2 3 0 1 2 3 4 0
        end_marker=True    2 7 4 0 $ + 1 5 3 0 $ = 3 2 8 0 EOS
          coupled ids      1 2 3 4 5 0 1 2 3 4 5 0 1 2 3 4 5

    ``Batch.positions`` holds the ids of the input tokens (the sequence
    without its last token); ``position_ids="none"`` leaves it None (the model
    numbers tokens 0…T−1).
    """

    sep_name = "="

    def __init__(
        self, *, end_marker: bool = False, position_ids: str = "coupled"
    ):
        if position_ids not in POSITION_IDS:
            raise ValueError(
                f"position_ids must be one of {POSITION_IDS}, "
                f"got {position_ids!r}"
            )
        self.end_marker, self.position_ids = end_marker, position_ids
        self.token_names = (
            digit_names(10)
            + ("+", "=")
            + ((END_MARKER,) if end_marker else ())
            + (EOS, PAD)
        )

    def operand_len(self, length: int) -> int:
        # digits, then the padded 0 and $
        return length + 2 if self.end_marker else length

    def prompt_len(self, length):
        return 2 * self.operand_len(length) + 1

    def answer_len(self, length):
        return length + 2  # n + 1 digits and EOS

    def draw(self, batch_size, length, generator):
        # (B, 2, n): a and b
        digits = torch.randint(
            0, 10, (batch_size, 2, length), generator=generator
        )
        if self.end_marker:
            # (B, 2, 2): 0 $
            tail = torch.tensor([0, self.token_id(END_MARKER)]).expand(
                batch_size, 2, 2
            )
            digits = torch.cat([digits, tail], dim=2)  # (B, 2, n + 2)
        plus = digits.new_full((batch_size, 1), self.token_id("+"))
        return torch.cat([digits[:, 0], plus, digits[:, 1]], dim=1)  # (B, P)

    def operands(
        self, prompt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two operands' digits (B, n) each, least significant first.

        The format is checked first."""
        width, p = (prompt.shape[1] - 1) // 2, prompt.shape[1]
        n = width - 2 if self.end_marker else width
        a, b = prompt[:, :width], prompt[:, width + 1 :]  # (B, width) each
        well_formed = (
            p % 2 == 1
            and n >= 1
            and bool((prompt[:, width] == self.token_id("+")).all())
        )
        if well_formed and self.end_marker:
            # (2, B, 2): must be "0 $"
            ends = torch.stack([a[:, n:], b[:, n:]])
            well_formed = bool(
                (ends[..., 0] == 0).all()
                and (ends[..., 1] == self.token_id(END_MARKER)).all()
            )
        a, b = a[:, :n], b[:, :n]
        if not well_formed or max(a.max(), b.max()) > 9:
            layout = (
                "n digits, 0, $, '+', n digits, 0, $"
                if self.end_marker
                else "n digits, '+', n digits"
            )
            raise ValueError(f"a prompt of {self!r} is {layout}")
        return a, b

    def solve(self, prompt):
        a, b = self.operands(prompt)
        # (B, n + 2): digits, EOS
        total = torch.zeros(prompt.shape[0], a.shape[1] + 2, dtype=torch.long)
        carry = torch.zeros(prompt.shape[0], dtype=torch.long)
        # school addition from the least significant digit, which comes first
        for s in range(a.shape[1]):
            column = a[:, s] + b[:, s] + carry
            total[:, s], carry = column % 10, column // 10
        total[:, -2], total[:, -1] = carry, self.token_id(EOS)
        return total

    def ids(self, s: torch.Tensor) -> torch.Tensor | None:
        """Position ids (B, L) of whole laid-out sequences ``s``.

        ``s`` holds the prompt, ``=``, the answer digits and EOS."""
        if self.position_ids == "abacus":
            return digit_places(s, torch.arange(self.vocab_size) < 10)
        if self.position_ids == "none":
            return None
        # s grows by 3 tokens a digit
        n = (s.shape[1] - self.prompt_len(0) - 1 - self.answer_len(0)) // 3
        # significance + 1
        operand = list(range(1, n + 1)) + (
            [n + 1, n + 2] if self.end_marker else []
        )
        # a, +, b, =, c, EOS
        row = operand + [0] + operand + [0] + list(range(1, n + 2)) + [n + 2]
        # (B, L)
        return (
            torch.tensor(row, device=s.device).expand(s.shape[0], -1).clone()
        )

    def layout(self, prompt, answer):
        batch = super().layout(prompt, answer)
        # (B, T + 1): the whole sequence
        s = torch.cat([batch.inputs, batch.targets[:, -1:]], dim=1)
        ids = self.ids(s)
        # (B, T): the ids of the input tokens
        positions = None if ids is None else ids[:, :-1]
        return Batch(
            batch.inputs, batch.targets, batch.target_mask, positions
        )


class CopyEOSTask(PromptAnswerTask):
    """Copy the prompt after SEP, then write EOS (Kazemnejad et al. 2023).

    Length 3, ``repeated=False`` then ``repeated=True`` (one symbol, drawn per
    sequence, ``n`` times)::

        4 1 7 SEP 4 1 7 EOS
        5 5 5 SEP 5 5 5 EOS
    """

    def __init__(self, n_symbols: int = 10, *, repeated: bool = False):
        check_count("n_symbols", n_symbols, 2)
        self.n_symbols, self.repeated = n_symbols, repeated
        self.token_names = digit_names(n_symbols) + (SEP, EOS, PAD)

    def answer_len(self, length):
        return length + 1

    def draw(self, batch_size, length, generator):
        if self.repeated:
            # (B, 1)
            symbol = torch.randint(
                0, self.n_symbols, (batch_size, 1), generator=generator
            )
            return symbol.expand(batch_size, length).clone()  # (B, n)
        # (B, n)
        return torch.randint(
            0, self.n_symbols, (batch_size, length), generator=generator
        )

    def solve(self, prompt):
        eos = prompt.new_full((prompt.shape[0], 1), self.token_id(EOS))
        return torch.cat([prompt, eos], dim=1)  # (B, n + 1)
