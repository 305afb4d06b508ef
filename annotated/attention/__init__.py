"""Attention itself: the primitive, the masks, and multi-head attention.

- ``attend``: :func:`~annotated.attention.attend.attend`, scaled dot-product
  attention written out (Vaswani et al. 2017, eq. 1), returning its weights;
- ``masks``: which keys a query may see, as predicates
  ``mask_mod(b, h, q_idx, k_idx)`` combined with ``and_masks`` / ``or_masks``;
- ``multihead``: :class:`~annotated.attention.multihead.MultiHeadAttention`
  (with grouped-query attention) and its key-value cache.
"""
