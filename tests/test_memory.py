"""Transformer-XL segment recurrence: one segment is the plain model, unlimited memory is the plain
model on the whole sequence, no gradient reaches the memory, bad inputs raise clear errors."""

import pytest
import torch
import torch.nn.functional as F
from conftest import random_ids, tiny_model

from annotated.models.config import ModelConfig
from annotated.models.recurrence import (
    SegmentMemory,
    forward_in_segments,
    forward_segment,
)
from annotated.models.transformer import build_model

V, C, H, T = 11, 16, 4, 12
ATOL = dict(atol=1e-5, rtol=1e-4)
pytestmark = pytest.mark.usefixtures("one_thread")


def model_for(
    positional="rope", attention="full", params=None, n_layers=2, seed=0, **kw
):
    model = tiny_model(seed, vocab_size=V, d_model=C, n_heads=H, n_layers=n_layers, positional=positional,
                       attention=attention, attention_params=params or {}, **kw).eval()  # fmt: skip
    if positional == "t5":  # make the relative bias matter
        torch.nn.init.normal_(
            model.decoder.positional.bucket_bias.weight, std=1.0
        )
    return model


def tokens(batch=2, length=T, seed=1):
    return random_ids(batch, length, high=V, seed=seed)


@pytest.mark.parametrize(
    "positional, attention, params",
    [("rope", "full", None), ("alibi", "full", None), ("t5", "full", None), ("nope", "full", None),
     ("rope", "blockwise", {"block_size": 5}), ("rope", "local", {"window": 4}), ("rope", "linear", None)],
)  # fmt: skip
def test_a_single_segment_equals_the_plain_model(
    positional, attention, params
):
    model = model_for(positional, attention, params)
    idx = tokens()
    out, memory = forward_segment(model, idx, need_weights=True)
    torch.testing.assert_close(out.logits, model(idx).logits, **ATOL)
    torch.testing.assert_close(
        torch.stack(out.attentions),
        torch.stack(model(idx, need_weights=True).attentions),
    )
    assert (
        memory.positions.tolist() == list(range(T))
        and memory.next_position == T
    )
    assert all(
        s.shape == (2, T, C) and not s.requires_grad for s in memory.states
    )


@pytest.mark.parametrize("positional", ["rope", "alibi", "t5"])
@pytest.mark.parametrize("segment_len", [1, 4, 5])
def test_memory_of_every_past_token_equals_the_plain_model_on_the_whole_sequence(
    positional, segment_len
):
    """A causal model's hidden states of past tokens never change, so caching them all is exact."""
    model = model_for(positional, n_layers=3)
    idx = tokens()
    out = forward_in_segments(model, idx, segment_len, mem_len=T)
    torch.testing.assert_close(out.logits, model(idx).logits, **ATOL)


def test_a_finite_memory_differs_from_the_whole_sequence_and_from_no_memory():
    model = model_for()
    idx = tokens()
    plain = model(idx).logits
    short = forward_in_segments(model, idx, 4, mem_len=2).logits
    none = forward_in_segments(model, idx, 4, mem_len=0).logits
    torch.testing.assert_close(
        short[:, :4], plain[:, :4], **ATOL
    )  # the first segment has no memory
    assert not torch.allclose(short[:, 4:], plain[:, 4:], atol=1e-4)
    assert not torch.allclose(short[:, 4:], none[:, 4:], atol=1e-4)


def test_without_memory_segments_are_independent_and_positions_only_shift():
    """mem_len=0: each segment is the plain model on that segment; a relative encoding ignores the shift."""
    model = model_for("alibi")
    idx = tokens()
    out = forward_in_segments(model, idx, 4, mem_len=0).logits
    expected = torch.cat(
        [model(idx[:, i : i + 4]).logits for i in range(0, T, 4)], dim=1
    )
    torch.testing.assert_close(out, expected, **ATOL)


def test_memory_keeps_the_last_mem_len_tokens_and_positions_continue():
    model = model_for()
    idx = tokens()
    _, memory = forward_segment(model, idx[:, :5], mem_len=3)
    assert (
        memory.positions.tolist() == [2, 3, 4] and memory.next_position == 5
    )
    out, memory = forward_segment(
        model, idx[:, 5:9], memory, mem_len=6, need_weights=True
    )
    assert (
        memory.positions.tolist() == [3, 4, 5, 6, 7, 8]
        and memory.next_position == 9
    )
    assert [s.shape for s in memory.states] == [(2, 6, C)] * 2
    assert out.attentions[0].shape == (
        2,
        H,
        4,
        3 + 4,
    )  # memory keys first, then the segment
    _, memory = forward_segment(model, idx[:, 9:], memory, mem_len=0)
    assert memory.length == 0 and memory.next_position == T


def test_no_gradient_flows_into_the_memory_but_information_does():
    """Tokens that only the memory holds get no gradient; the memory still changes the output."""
    model = model_for(
        tie_weights=False
    ).train()  # untied: the embedding's gradient is its input role only
    first, second = tokens(seed=4)[:, :6], tokens(seed=5)[:, :6]
    _, memory = forward_segment(model, first)
    _, other_memory = forward_segment(model, (first + 1) % V)
    assert all(not s.requires_grad for s in memory.states)
    out, _ = forward_segment(model, second, memory)
    other_out, _ = forward_segment(model, second, other_memory)
    assert not torch.allclose(
        out.logits, other_out.logits, atol=1e-4
    )  # the memory matters
    model.zero_grad()
    F.cross_entropy(
        out.logits.reshape(-1, V), torch.roll(second, -1, 1).reshape(-1)
    ).backward()
    rows_first_only = sorted(
        set(first.flatten().tolist()) - set(second.flatten().tolist())
    )
    assert rows_first_only, (
        "the seeds should give tokens seen only in the first segment"
    )
    assert model.tok_emb.weight.grad[rows_first_only].abs().max() == 0
    assert model.tok_emb.weight.grad[second.flatten()].abs().sum() > 0
    attn = model.decoder.blocks[0].self_attn.sublayer
    assert (
        attn.k_proj.weight.grad.abs().sum() > 0
    )  # W_k still learns, from the segment and the memory's keys


def test_gradient_would_reach_the_first_segment_without_the_detach():
    """The check above can fail: re-attaching the memory gives those embedding rows a gradient."""
    model = model_for(tie_weights=False).train()
    first, second = tokens(seed=4)[:, :6], tokens(seed=5)[:, :6]
    x = model.tok_emb(first)
    states = []
    for block in (
        model.decoder.blocks
    ):  # layer inputs of the first segment, with their graph
        states.append(x)
        x, _, _ = block(x)
    memory = SegmentMemory(states, torch.arange(6), 6)
    out, _ = forward_segment(model, second, memory)
    model.zero_grad()
    out.logits.sum().backward()
    rows_first_only = sorted(
        set(first.flatten().tolist()) - set(second.flatten().tolist())
    )
    assert model.tok_emb.weight.grad[rows_first_only].abs().max() > 0


def test_bad_inputs_raise_clear_errors():
    model = model_for()
    idx = tokens()
    with pytest.raises(
        ValueError, match="mem_len must be a non-negative integer"
    ):
        forward_segment(model, idx, mem_len=-1)
    with pytest.raises(
        ValueError, match="segment_len must be a positive integer"
    ):
        forward_in_segments(model, idx, 0)
    _, memory = forward_segment(model, idx)
    with pytest.raises(ValueError, match="start with memory=None"):
        forward_segment(model, idx[:1], memory)
    with pytest.raises(ValueError, match="start with memory=None"):
        forward_segment(model_for(n_layers=3), idx, memory)
    with pytest.raises(ValueError, match="relative positional encoding"):
        forward_segment(model_for("learned"), idx)
    with pytest.raises(ValueError, match="decoder-only"):
        forward_segment(
            build_model(
                ModelConfig(
                    arch="encoder", vocab_size=V, d_model=C, n_heads=H
                )
            ),
            idx,
        )
    with pytest.raises(ValueError, match="outside"):
        forward_segment(model, torch.full((1, 3), V))
    assert isinstance(memory, SegmentMemory)
