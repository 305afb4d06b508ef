"""Attention itself: the primitive, the masks, and multi-head attention.

- ``attend``: :func:`~annotated.attention.attend.attend`, scaled dot-product
  attention written out (Vaswani et al. 2017, eq. 1), returning its weights;
- ``checks``: the shapes every attention call is checked for (padding is
  ``key_padding_mask`` (B, Tk); a 2-D ``mask`` is (Tq, Tk));
- ``masks``: which keys a query may see, as predicates
  ``mask_mod(b, h, q_idx, k_idx)`` combined with ``and_masks`` / ``or_masks``;
- ``multihead``: :class:`~annotated.attention.multihead.MultiHeadAttention`
  (with grouped-query attention) and its key-value cache;
- ``rules``: what a layer's sizes, positional encoding and kernel must agree
  on, checked once (:func:`~annotated.attention.rules.check_attention`);
- ``qk_norm``: queries and keys RMS-normalised per head (QK-norm);
- ``scaled_scores``: every logit times a fixed inverse temperature, or a
  factor that grows with log n, the number of keys (Scalable-Softmax).
"""
