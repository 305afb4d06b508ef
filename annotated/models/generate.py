"""Decoding: extend a prompt token by token, greedily or by sampling, with a
key-value cache.

:func:`sample_next` picks the next token from the last position's logits — the
argmax, or a draw from ``softmax(logits / temperature)`` restricted to the
``top_k`` largest logits (Fan et al. 2018). :func:`generate` runs a
:class:`~annotated.models.transformer.DecoderOnly` (GPT) or an
:class:`~annotated.models.transformer.EncoderDecoder` (T5) step by step; with
a key-value cache (one :class:`~annotated.attention.cache.KVCache` per
layer) each step feeds only the newest token and gives exactly the tokens
recomputation gives (tested). Beam search is :mod:`annotated.models.beam`.
Left out: nucleus (top-p) sampling, a cache for the cross-attention keys.

Legend: B batch, T time (target / decoder), S source (encoder) length, V
vocab.
"""

from __future__ import annotations

import math

import torch

from annotated.models.transformer import DecoderOnly, EncoderDecoder


def sample_next(
    logits, *, temperature=1.0, top_k=None, greedy=False, generator=None
) -> torch.Tensor:
    """Pick one token per row from ``logits (B, V)`` → ``(B, 1)``.

    Greedy: the argmax. Otherwise sample from
    ``softmax(logits / temperature)`` restricted to the ``top_k`` largest
    logits (Fan et al. 2018) when ``top_k`` is given.
    """
    if greedy:
        return logits.argmax(-1, keepdim=True)
    if not temperature > 0:
        raise ValueError(
            "temperature must be > 0 (use greedy=True for argmax decoding), "
            f"got {temperature}"
        )
    logits = logits / temperature
    if top_k is not None:
        if not 1 <= top_k <= logits.shape[-1]:
            raise ValueError(
                f"top_k must lie in [1, vocab_size={logits.shape[-1]}], got "
                f"{top_k}"
            )
        # (B, 1): the k-th largest logit
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits.float(), dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)


def check_sampling(vocab_size: int, *, temperature, top_k, greedy) -> None:
    """Refuse sampling settings that cannot work, with a sentence saying what
    to pass instead (:func:`generate` calls it before any step;
    :func:`sample_next` stays the bare lines chapter 5 shows)."""
    if not isinstance(greedy, bool):
        raise ValueError(
            f"greedy must be True or False, got {greedy!r} "
            f"({type(greedy).__name__})"
        )
    if greedy:
        return
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 < temperature < math.inf
    ):
        raise ValueError(
            "temperature must be a positive finite number (use greedy=True "
            f"for argmax decoding), got {temperature!r}"
        )
    if top_k is not None and (
        isinstance(top_k, bool)
        or not isinstance(top_k, int)
        or not 1 <= top_k <= vocab_size
    ):
        raise ValueError(
            f"top_k must be an integer in [1, vocab_size={vocab_size}] or "
            f"None (no restriction), got {top_k!r} ({type(top_k).__name__})"
        )


def check_prompt(prompt, name: str = "prompt") -> None:
    """A prompt is a (B, T0) tensor of token ids, at least one per row."""
    if not isinstance(prompt, torch.Tensor):
        raise ValueError(
            f"{name} must be a (B, T0) tensor of token ids, got a "
            f"{type(prompt).__name__}"
        )
    if prompt.dim() != 2 or prompt.dtype not in (
        torch.long,
        torch.int32,
        torch.int16,
        torch.uint8,
    ):
        raise ValueError(
            f"{name} must be a (B, T0) tensor of integer token ids, got "
            f"shape {tuple(prompt.shape)} and dtype {prompt.dtype}; e.g. "
            "torch.tensor([[bos_id]]) (add a batch dimension with ids[None])"
        )
    if prompt.shape[0] == 0 or prompt.shape[1] == 0:
        raise ValueError(
            f"{name} of shape {tuple(prompt.shape)} is empty; give at least "
            "one token per row to start from, e.g. a beginning-of-sequence "
            "or separator token: torch.tensor([[bos_id]])"
        )


@torch.no_grad()
def generate(
    model,
    prompt,
    max_new_tokens,
    *,
    src=None,
    src_padding_mask=None,
    temperature=1.0,
    top_k=None,
    greedy=False,
    use_cache=True,
    generator=None,
) -> torch.Tensor:
    """Extend ``prompt (B, T0)`` by ``max_new_tokens`` tokens →
    ``(B, T0 + max_new_tokens)``.

    For an :class:`EncoderDecoder` pass the source ``src (B, S)``; ``prompt``
    is then the decoder's start (e.g. a column of SEP tokens). With
    ``use_cache`` the prompt is read once and every later step feeds only the
    newest token, the earlier keys and values coming from one
    :class:`~annotated.attention.cache.KVCache` per layer; without it
    every step recomputes the whole prefix. Both give the same tokens
    (tested). The model runs in eval mode (dropout off) and is put back in its
    previous mode afterwards.
    """
    if not isinstance(model, DecoderOnly | EncoderDecoder):
        raise ValueError(
            "generate needs a DecoderOnly or EncoderDecoder model, got "
            f"{type(model).__name__}"
        )
    is_seq2seq = isinstance(model, EncoderDecoder)
    if is_seq2seq and src is None:
        raise ValueError(
            "an encoder-decoder model generates from a source: pass src=(B, "
            "S) token ids"
        )
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ValueError(
            f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}"
        )
    check_prompt(prompt)
    check_sampling(
        model.config.vocab_size,
        temperature=temperature,
        top_k=top_k,
        greedy=greedy,
    )
    was_training = model.training
    model.eval()
    try:
        if is_seq2seq:
            memory, _, memory_mask = model.encode(
                src, src_padding_mask=src_padding_mask
            )

            def step(ids, caches):
                return model.decode(
                    ids, memory, memory_mask=memory_mask, caches=caches
                )[0]
        else:

            def step(ids, caches):
                return model(ids, caches=caches).logits

        out, caches, fresh = (
            prompt,
            (model.new_caches() if use_cache else None),
            prompt,
        )
        for _ in range(max_new_tokens):
            # (B, V): the last position's logits
            logits = step(fresh if use_cache else out, caches)[:, -1]
            token = sample_next(
                logits,
                temperature=temperature,
                top_k=top_k,
                greedy=greedy,
                generator=generator,
            )
            out = torch.cat([out, token], dim=1)  # (B, T + 1)
            fresh = token
        return out
    finally:
        model.train(was_training)
