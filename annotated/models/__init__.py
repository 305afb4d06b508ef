"""Transformers built from one block set: GPT, BERT and T5.

- ``config``: :class:`~annotated.models.config.ModelConfig`, one small
  dataclass for every model, checked when it is made;
- ``blocks``: the residual block (pre- or post-LN) and the encoder and
  decoder blocks;
- ``feedforward``: the feed-forward layer, plain (GELU, ReLU, ReLU²) or
  gated (SwiGLU);
- ``norms``: LayerNorm or RMSNorm, by name;
- ``stack``: embeddings, positions and a stack of blocks;
- ``transformer``: the decoder-only, encoder-only and encoder-decoder models;
- ``generate``: greedy, temperature and top-k decoding with a KV cache;
- ``beam``: beam search with length normalisation, batched, its KV cache
  reordered with the surviving hypotheses;
- ``checkpoints``: weights saved with their config and a checksum;
- ``logit_scale``: a trained model's attention temperature, changed
  without retraining;
- ``recurrence``: Transformer-XL's segment recurrence;
- ``hf``: weights to and from Hugging Face's GPT-2 and BERT;
- ``summary``: parameter counts and a table of the modules.
"""
