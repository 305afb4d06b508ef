"""Head-role scores: what each attention head does, over windows of text.

One attention map hints at a mechanism; a score averaged over thousands of
windows measures how much of a head's attention goes where a role says it
should. With ``A`` one head's weights ``(T, T)`` on a window ``x_0 … x_{T-1}``
(causal: ``A[t, j] = 0`` for ``j > t``), each score is a mean over the scored
queries ``t`` (and over windows):

================  ==================================  =================
score             per query t                         queries scored
================  ==================================  =================
previous_token    ``A[t, t-1]``                       t ≥ 1
same_character    ``Σ_{j<t, x_j = x_t} A[t, j]``      t with an earlier
                                                      x_j = x_t
delimiter         ``Σ_{j ≤ t, x_j ∈ delimiters}       t ≥ 1
                  A[t, j]`` (space, newline,
                  punctuation)
first_position    ``A[t, 0]`` (the "attention sink",  t ≥ 1
                  Xiao et al. 2023)
mean_distance     ``Σ_j A[t, j] (t − j)``, in         all t
                  positions
induction         ``A[t, t − n + 1]`` on a random     n ≤ t < 2n
                  sequence of n tokens repeated
                  twice (Olsson et al. 2022)
================  ==================================  =================

An induction head attends from a token to the token that *followed* its
earlier occurrence, so that it can copy it ("… A B … A → B"); random tokens
make the repeat the only way to predict the second half. :data:`ROLE_SCORES`
are fractions of attention in [0, 1]; a head is labelled by the largest one
when it reaches ``threshold`` (:func:`label_heads`), else ``"mixed"``. A score
says where a head *looks*, not what it *writes*: the ablations of
:mod:`annotated.analysis.ablation` test whether that matters for the loss.

Legend: B batch, L layers, H heads, T time (queries and keys), V vocabulary.
"""

from __future__ import annotations

import string

import torch

ROLE_SCORES = (
    "previous_token",
    "same_character",
    "delimiter",
    "first_position",
    "induction",
)
SCORES = (*ROLE_SCORES[:4], "mean_distance", "induction")


def character_classes(chars) -> dict[str, torch.Tensor]:
    """Boolean masks over the vocabulary, ``chars[i]`` being token ``i``'s
    text: ``letter``, ``space``, ``newline`` and ``punctuation`` (everything
    else: marks and the odd digit)."""
    letter = torch.tensor([c.isalpha() for c in chars])
    space = torch.tensor([c == " " for c in chars])
    newline = torch.tensor([c == "\n" for c in chars])
    return {
        "letter": letter,
        "space": space,
        "newline": newline,
        "punctuation": ~(letter | space | newline),
    }


def delimiter_mask(chars) -> torch.Tensor:
    """Tokens that separate words: space, newline and punctuation.

    Punctuation is ``string.punctuation``."""
    return torch.tensor(
        [
            c in (" ", "\n") or (len(c) == 1 and c in string.punctuation)
            for c in chars
        ]
    )


@torch.no_grad()
def attention_weights(model, inputs: torch.Tensor) -> torch.Tensor:
    """Every head's weights on ``inputs (B, T)``: ``(B, L, H, T, T)``.

    They come from the reference path."""
    was_training = model.training
    model.eval()
    # L × (B, H, T, T)
    attentions = model(inputs, need_weights=True).attentions
    model.train(was_training)
    return torch.stack(attentions, dim=1).float()  # (B, L, H, T, T)


def window_scores(
    weights: torch.Tensor, ids: torch.Tensor, delimiters: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Sums of the five text scores over a batch's scored queries.

    Sums, not means, and their counts.

    ``weights (B, L, H, T, T)``, ``ids (B, T)``, ``delimiters (V,)`` boolean.
    Returns ``{score: (sum (L, H), count)}`` so that batches can be added up
    before dividing."""
    b, _, _, t, _ = weights.shape
    after_first = weights[..., 1:, :]  # (B, L, H, T-1, T): queries t ≥ 1
    n_after = b * (t - 1)
    # (B, L, H, T-1): A[t, t-1]
    previous = torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1)
    # (B, Tq, Tk): j < t
    same = (ids[:, :, None] == ids[:, None, :]) & torch.ones(
        t, t, dtype=torch.bool
    ).tril(-1)
    has_same = same.any(-1)  # (B, T)
    # (B, L, H, T)
    same_mass = (weights * same[:, None, None].float()).sum(-1)
    is_delimiter = delimiters[ids].float()  # (B, T) over keys
    # (B, L, H, T-1)
    delimiter_mass = (after_first * is_delimiter[:, None, None, None, :]).sum(
        -1
    )
    # (Tq, Tk): t - j
    distance = (
        (torch.arange(t)[:, None] - torch.arange(t)[None, :])
        .clamp_min(0)
        .float()
    )
    return {
        "previous_token": (previous.sum((0, 3)), n_after),
        "same_character": (
            (same_mass * has_same[:, None, None].float()).sum((0, 3)),
            int(has_same.sum()),
        ),
        "delimiter": (delimiter_mass.sum((0, 3)), n_after),
        "first_position": (after_first[..., 0].sum((0, 3)), n_after),
        "mean_distance": ((weights * distance).sum(-1).sum((0, 3)), b * t),
    }


@torch.no_grad()
def induction_scores(
    model,
    vocab: torch.Tensor,
    *,
    n: int,
    windows: int,
    generator,
    batch_size: int = 128,
):
    """Mean ``A[t, t-n+1]`` over the second half of ``windows`` random
    sequences of ``n`` tokens from ``vocab`` (ids), each repeated twice:
    ``(L, H)``. Also returns the model's loss on the first and the second half
    (nats): an induction mechanism makes the second much lower."""
    total, losses = None, torch.zeros(2)
    was_training = model.training
    model.eval()
    for start in range(0, windows, batch_size):
        b = min(batch_size, windows - start)
        # (B, n)
        half = vocab[
            torch.randint(0, len(vocab), (b, n), generator=generator)
        ]
        seq = torch.cat([half, half], dim=1)  # (B, 2n)
        out = model(seq, need_weights=True)
        # (B, L, H, 2n, 2n)
        weights = torch.stack(out.attentions, dim=1).float()
        # (B, L, H, n): A[t, t-n+1], t ≥ n
        stripe = torch.diagonal(weights, offset=1 - n, dim1=-2, dim2=-1)[
            ..., 1:
        ]
        total = (
            stripe.sum((0, 3))
            if total is None
            else total + stripe.sum((0, 3))
        )
        logits = out.logits[:, :-1]  # (B, 2n-1, V): predicts seq[:, 1:]
        # (B, 2n-1)
        nll = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), seq[:, 1:], reduction="none"
        )
        # targets 1..n-1, n+1..2n-1
        losses += torch.stack([nll[:, : n - 1].sum(), nll[:, n:].sum()]) / (
            n - 1
        )
    model.train(was_training)
    return total / (windows * n), losses / windows


@torch.no_grad()
def head_scores(
    model,
    task,
    *,
    windows: int = 1024,
    length: int = 64,
    induction_n: int = 30,
    seed: int = 0,
    batch_size: int = 128,
    induction_vocab: str = string.ascii_lowercase,
) -> dict:
    """Every score of every head, over ``windows`` held-out windows.

    The windows come from ``task``'s ``"val"`` split.

    Returns ``{"scores": {score: (L, H)}, "induction_loss": (first half,
    second half), "windows": n}``. The induction sequences draw their tokens
    from ``induction_vocab`` (lower-case letters: text-like tokens, in a
    random order no Shakespeare line has)."""
    generator = torch.Generator().manual_seed(seed)
    chars = [task.decode([i]) for i in range(task.vocab_size)]
    delimiters = delimiter_mask(chars)
    sums: dict[str, list] = {}
    for start in range(0, windows, batch_size):
        batch = task.sample(
            min(batch_size, windows - start), length, generator, split="val"
        )
        for name, (total, count) in window_scores(
            attention_weights(model, batch.inputs), batch.inputs, delimiters
        ).items():
            acc = sums.setdefault(name, [0.0, 0])
            acc[0], acc[1] = acc[0] + total, acc[1] + count
    scores = {
        name: total / max(count, 1) for name, (total, count) in sums.items()
    }
    vocab = task.encode(induction_vocab)
    scores["induction"], halves = induction_scores(
        model,
        vocab,
        n=induction_n,
        windows=windows,
        generator=generator,
        batch_size=batch_size,
    )
    return {
        "scores": scores,
        "induction_loss": tuple(float(x) for x in halves),
        "windows": windows,
    }


def label_heads(
    scores: dict[str, torch.Tensor], threshold: float = 0.4
) -> list[list[str]]:
    """Each head's role: the :data:`ROLE_SCORES` entry with the largest score
    if it is ≥ ``threshold``, else ``"mixed"``. Returns
    ``labels[layer][head]``."""
    # (roles, L, H)
    stacked = torch.stack([scores[name] for name in ROLE_SCORES])
    best, which = stacked.max(0)  # (L, H)
    return [
        [
            ROLE_SCORES[int(w)] if float(s) >= threshold else "mixed"
            for s, w in zip(srow, wrow)
        ]
        for srow, wrow in zip(best, which)
    ]
