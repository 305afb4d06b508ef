"""Masks: hand-checked small cases and their errors."""

import pytest
import torch

from annotated.attention.masks import (
    causal_mask,
    combine_masks,
    global_token_mask,
    padding_mask,
    prefix_mask,
    sliding_window_mask,
)


def test_causal_mask_square_and_offset():
    assert causal_mask(3).int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    # Two new queries after three cached keys: they are positions 3 and 4.
    assert causal_mask(2, 5).int().tolist() == [
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ]


def test_padding_mask_shape_and_values():
    m = padding_mask([2, 3], 4)
    assert m.shape == (2, 1, 1, 4)
    assert m[:, 0, 0].int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0]]
    with pytest.raises(ValueError, match="every length must lie in"):
        padding_mask([5], 4)


def test_sliding_window_causal_and_bidirectional():
    assert sliding_window_mask(4, 2).int().tolist() == [
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 1],
    ]
    assert sliding_window_mask(3, 2, causal=False).int().tolist() == [
        [1, 1, 0],
        [1, 1, 1],
        [0, 1, 1],
    ]
    with pytest.raises(ValueError, match="window must be a positive"):
        sliding_window_mask(4, 0)


def test_global_tokens_and_prefix():
    g = global_token_mask(3, [0]).int().tolist()
    assert g == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]
    assert prefix_mask(3, 2).int().tolist() == [
        [1, 1, 0],
        [1, 1, 0],
        [1, 1, 1],
    ]


def test_combine_is_logical_and_and_rejects_float():
    m = combine_masks(causal_mask(3), None, padding_mask([2], 3)[0, 0])
    assert m.int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 0]]
    with pytest.raises(ValueError, match="boolean"):
        combine_masks(torch.ones(3, 3))
