"""Beam search: keep the K most likely continuations at every step instead
of the single most likely token.

Greedy decoding commits to the best *next* token; the best *sequence* may
start with a token that looked worse. Beam search (as used for translation
by Sutskever et al. 2014 and Wu et al. 2016) keeps ``beam_size`` = K
hypotheses per prompt. At each step every alive hypothesis is extended by
every token of the vocabulary, the K·V candidates are scored, and the best
K survive::

    log P(y) = Σ_t log p(y_t | y_<t, prompt)
    score(y) = log P(y) / |y| ** length_penalty

Summed log-probabilities favour short hypotheses (every token costs), so the
score divides by the length ``|y|``: the number of new tokens, end-of-sequence
included. This is the plain power of the length that Hugging Face's
``length_penalty`` uses, not GNMT's ``((5 + |y|) / 6) ** α`` (Wu et al. 2016,
§7): ``length_penalty=0`` ranks by the raw sum, 1 by the mean log-prob per
token. Without ``eos_id`` all hypotheses have the same length and the
penalty changes nothing.

A hypothesis that emits ``eos_id`` is finished: it stays in the beam, its
only continuation is a padding token that costs nothing, so its score is
frozen while the others keep growing and may overtake it or fall behind it.
The search stops when every hypothesis is finished or after
``max_new_tokens`` steps.

Batched: the B prompts become B·K rows, hypothesis j of prompt b on row
b·K + j. With a key-value cache each step feeds only the newest token; when
a survivor descends from another row, :func:`reorder_caches` moves that
row's cached keys and values with it. The cross-attention memory of an
encoder-decoder needs no reordering: all K rows of a prompt read the same
source. Left out: early stopping once no alive hypothesis can beat a
finished one, diverse beams, n-gram blocking.

Legend: B batch, K beam size, T time, T0 prompt length, N new tokens, S
source length, V vocab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from annotated.attention.cache import KVCache
from annotated.models.generate import check_prompt
from annotated.models.transformer import DecoderOnly, EncoderDecoder


@dataclass
class Beams:
    """The hypotheses a beam search kept, best first in every row.

    Where the beam is wider than the hypotheses there are (K > V at the
    first step, or tokens of probability 0), the spare places hold empty
    placeholders: score −inf, length 0, padding only.
    """

    sequences: torch.Tensor  # (B, K, T0 + N): prompt + new tokens, padded
    log_probs: torch.Tensor  # (B, K): summed log-probs of the new tokens
    lengths: torch.Tensor  # (B, K): new tokens up to and including eos
    scores: torch.Tensor  # (B, K): log_probs / lengths ** length_penalty

    @property
    def best(self) -> torch.Tensor:
        """The best hypothesis of every prompt, ``(B, T0 + N)``."""
        return self.sequences[:, 0]


def length_normalised(log_probs, lengths, length_penalty) -> torch.Tensor:
    """``log_probs / lengths ** length_penalty``, the ranking score.

    A length of 0 (nothing generated yet) counts as 1.
    """
    return log_probs / lengths.clamp_min(1).float() ** length_penalty


def reorder_caches(caches: list[KVCache], rows: torch.Tensor) -> None:
    """Keep, in every layer's cache, the rows ``rows (B·K,)`` in that order,
    in place: row i of the cache becomes old row ``rows[i]``."""
    for cache in caches:
        if cache.k is None:  # nothing cached yet
            continue
        cache.k = cache.k.index_select(0, rows)  # (B·K, Hkv, T, D)
        cache.v = cache.v.index_select(0, rows)
        if cache.positions.dim() == 2:  # per-row positions (B·K, T)
            cache.positions = cache.positions.index_select(0, rows)


def next_log_probs(logits, finished, pad_id) -> torch.Tensor:
    """``log p(token | hypothesis)`` from ``logits (B, K, V)``; a finished
    hypothesis gets one continuation, ``pad_id``, at log-prob 0."""
    log_probs = logits.float().log_softmax(-1)  # (B, K, V)
    frozen = torch.full_like(log_probs[0, 0], -math.inf)  # (V,)
    frozen[pad_id] = 0.0
    return torch.where(finished[..., None], frozen, log_probs)


@torch.no_grad()
def beam_search(
    model,
    prompt,
    max_new_tokens,
    *,
    beam_size,
    src=None,
    src_padding_mask=None,
    eos_id=None,
    pad_id=None,
    length_penalty=1.0,
    use_cache=True,
) -> Beams:
    """Extend each row of ``prompt (B, T0)`` by up to ``max_new_tokens``
    tokens, keeping ``beam_size`` hypotheses → :class:`Beams` (``.best`` is
    ``(B, T0 + N)``, as :func:`~annotated.models.generate.generate` returns).

    As in :func:`~annotated.models.generate.generate`, an
    :class:`EncoderDecoder` reads the source ``src (B, S)`` and ``prompt``
    is the decoder's start. After ``eos_id`` a hypothesis is padded with
    ``pad_id`` (default: the config's ``pad_id``, else ``eos_id``). The model
    runs in eval mode and is put back in its previous mode afterwards.
    """
    check_beam_search(
        model,
        prompt,
        max_new_tokens,
        src=src,
        beam_size=beam_size,
        eos_id=eos_id,
        pad_id=pad_id,
        length_penalty=length_penalty,
    )
    if pad_id is None:  # without eos_id only placeholders pad: any id will do
        pad_id = next(
            i for i in (model.config.pad_id, eos_id, 0) if i is not None
        )
    b, k, v = prompt.shape[0], beam_size, model.config.vocab_size
    device = prompt.device
    was_training = model.training
    model.eval()
    try:
        step = decoder_step(model, k, src, src_padding_mask)
        # every prompt once per hypothesis: (B·K, T0)
        out = prompt.long().repeat_interleave(k, dim=0)
        # one real empty hypothesis per prompt; the other K - 1 are finished
        # placeholders of log-prob -inf, so step 1 cannot pick K copies
        log_probs = torch.full((b, k), -math.inf, device=device)
        log_probs[:, 0] = 0.0
        finished = torch.ones(b, k, dtype=torch.bool, device=device)
        finished[:, 0] = False
        lengths = torch.zeros(b, k, dtype=torch.long, device=device)
        caches = model.new_caches() if use_cache else None
        fresh = out  # what the model has not read yet
        for _ in range(max_new_tokens):
            if finished.all():
                break
            # (B, K, V): the last position's logits
            logits = step(fresh if use_cache else out, caches)[:, -1]
            logits = logits.view(b, k, v)
            # every hypothesis × every token: (B, K, V)
            cand = log_probs[..., None] + next_log_probs(
                logits, finished, pad_id
            )
            cand_len = (lengths + ~finished)[..., None]  # (B, K, 1)
            score = length_normalised(cand, cand_len, length_penalty)
            # the K best of the K·V candidates of each prompt: (B, K)
            flat = score.view(b, k * v).topk(k, dim=-1).indices
            parent, token = flat // v, flat % v  # (B, K) each
            log_probs = cand.view(b, k * v).gather(1, flat)
            lengths = cand_len[..., 0].gather(1, parent)
            finished = finished.gather(1, parent)
            if eos_id is not None:
                finished = finished | (token == eos_id)
            # the parents' rows of out and of the cache: (B·K,)
            first_row = k * torch.arange(b, device=device)[:, None]
            rows = (parent + first_row).view(-1)
            out = torch.cat([out[rows], token.view(-1, 1)], dim=1)
            if caches is not None:
                reorder_caches(caches, rows)
            fresh = token.view(-1, 1)  # (B·K, 1)
        # all finished early: pad up to T0 + N
        missing = prompt.shape[1] + max_new_tokens - out.shape[1]
        out = torch.cat([out, out.new_full((b * k, missing), pad_id)], 1)
        # placeholders (log-prob -inf) hold no hypothesis: empty, padded
        empty = log_probs.isneginf()  # (B, K)
        out[empty.view(-1), prompt.shape[1] :] = pad_id
        lengths = lengths.masked_fill(empty, 0)
        return Beams(
            sequences=out.view(b, k, -1),
            log_probs=log_probs,
            lengths=lengths,
            scores=length_normalised(log_probs, lengths, length_penalty),
        )
    finally:
        model.train(was_training)


def decoder_step(model, beam_size, src=None, src_padding_mask=None):
    """``step(ids (B·K, T), caches) -> logits (B·K, T, V)``: the model's
    next-token logits for every hypothesis row. An encoder-decoder encodes
    ``src`` once and gives each of the K rows of a prompt its memory."""
    if not isinstance(model, EncoderDecoder):
        return lambda ids, caches: model(ids, caches=caches).logits
    memory, _, memory_mask = model.encode(
        src, src_padding_mask=src_padding_mask
    )
    memory = memory.repeat_interleave(beam_size, dim=0)  # (B·K, S, C)
    if memory_mask is not None:  # (B·K, 1, 1, S)
        memory_mask = memory_mask.repeat_interleave(beam_size, dim=0)

    def step(ids, caches):
        return model.decode(
            ids, memory, memory_mask=memory_mask, caches=caches
        )[0]

    return step


def check_beam_search(
    model,
    prompt,
    max_new_tokens,
    *,
    src,
    beam_size,
    eos_id,
    pad_id,
    length_penalty,
) -> None:
    """Refuse settings :func:`beam_search` cannot use, with a sentence that
    says what to pass instead."""
    if not isinstance(model, DecoderOnly | EncoderDecoder):
        raise ValueError(
            "beam_search needs a DecoderOnly or EncoderDecoder model, got "
            f"{type(model).__name__}"
        )
    if isinstance(model, EncoderDecoder) and src is None:
        raise ValueError(
            "an encoder-decoder model decodes from a source: pass src=(B, "
            "S) token ids"
        )
    check_prompt(prompt)
    vocab = model.config.vocab_size
    _check_int("beam_size", beam_size, 1, "e.g. beam_size=4 (1 is greedy)")
    _check_int("max_new_tokens", max_new_tokens, 0, "e.g. 20")
    for name, value in (("eos_id", eos_id), ("pad_id", pad_id)):
        if value is not None:
            _check_int(
                name, value, 0, f"a token id below vocab_size={vocab}", vocab
            )
    if (
        isinstance(length_penalty, bool)
        or not isinstance(length_penalty, int | float)
        or not math.isfinite(length_penalty)
    ):
        raise ValueError(
            "length_penalty must be a finite number (0: summed log-probs, "
            f"1: mean log-prob per token), got {length_penalty!r}"
        )


def _check_int(name, value, low, hint, high=None) -> None:
    """``value`` must be an int in ``[low, high)`` (no upper end if None)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value >= high)
    ):
        upper = "" if high is None else f" and < {high}"
        raise ValueError(
            f"{name} must be an integer >= {low}{upper}, got {value!r}; "
            f"{hint}"
        )
