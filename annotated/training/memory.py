"""How much memory a training run needs, estimated from its configs before
anything is built, and how much the device has free.

Everything is float32 (4 bytes). With N parameters (counted exactly, on a
model built on the meta device), the state the loop keeps is::

    state = 4 · 7 · N bytes: weights, gradients, AdamW's two moments, and
            the fall-back snapshot (weights and moments again)

and the largest activations are those of a training step at the longest
training length, or of the evaluation at the longest evaluation length
(whichever is larger). With B sequences of T tokens, d_model C, d_ff F,
H heads, L blocks and V output tokens, in floats::

    step = L · (9·B·T·C + 2·B·T·F + S·B·H·T²)
           + 6·B·T·C + B·T·F + 2·S·B·H·T² + 5·B·T·V
    eval = (L + 4) · B·H·T² + 3·B·T·V + 4·B·T·C + B·T·F

A block keeps about nine (B, T, C) tensors for the backward pass (two
norms' inputs and outputs, q, k, v, the attention output and its
projection's input) and two (B, T, F) ones (the feed-forward's hidden layer
before and after its activation); S = 1 when the kernel keeps the
(Tq, Tk) weights for the backward (its entry's ``full_scores``), else 0.
The backward adds one block's gradients (three (B, T, C), one (B, T, F),
two (B, H, T, T)). The output keeps the logits, their scored copy and the
log-softmax, and the backward adds two more of that size. The evaluation
runs without gradients but keeps the first batch's attention weights of
every layer (for their entropy), and the softmax and the entropy of one
layer need four more. During a snapshot the old and the new copy coexist,
so the peak is::

    bytes ≈ 4 · (7·N + max(step, eval, 3·N))

Left out: PyTorch's own runtime (a few hundred MB of a process) and the
allocator's slack. B is ``batch_size``, the sequences of one forward pass.
A test holds the estimate within a factor of two of what a few training
steps of a small config allocate at their peak, weights included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from annotated.kernels import ATTENTION_KERNELS

BYTES = 4  # float32: weights, gradients, moments and activations
# floats per parameter: weights, gradients, two AdamW moments, the snapshot
STATE_FLOATS = 7


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimate's parts, in bytes, and what the largest activations
    belong to (e.g. ``"a training step at length 8"``)."""

    parameters: int
    state_bytes: int
    activation_bytes: int
    largest: str

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.activation_bytes


def activation_floats(
    model_config, batch: int, tokens: int, *, training: bool
) -> int:
    """The floats alive at the peak of a training step (``training``) or
    of an evaluation batch, for ``batch`` sequences of ``tokens`` tokens
    (the formula in the module docstring)."""
    c, h = model_config.d_model, model_config.n_heads
    layers = model_config.n_layers
    f = model_config.d_ff or 4 * c
    v = model_config.vocab_size
    bt = batch * tokens
    scores = batch * h * tokens * tokens  # one (B, H, T, T) tensor
    if training:
        keeps = ATTENTION_KERNELS[model_config.attention].full_scores
        kept = scores if keeps else 0
        per_layer = 9 * bt * c + 2 * bt * f + kept
        backward = 3 * bt * c + bt * f + 2 * kept
        return layers * per_layer + backward + 5 * bt * v + 3 * bt * c
    return (layers + 4) * scores + 3 * bt * v + 4 * bt * c + bt * f


def estimate_memory(
    model_config,
    train_config,
    parameters: int,
    *,
    train_tokens: int,
    eval_tokens: int,
    train_length: int,
    eval_length: int,
) -> MemoryEstimate:
    """The peak memory of training a model of ``parameters`` parameters:
    a step on ``train_tokens``-token sequences (problem length
    ``train_length``), an evaluation on ``eval_tokens``-token ones."""
    step = activation_floats(
        model_config, train_config.batch_size, train_tokens, training=True
    )
    eval_batch = train_config.eval_batch_size or train_config.batch_size
    evaluation = activation_floats(
        model_config, eval_batch, eval_tokens, training=False
    )
    largest = f"a training step at length {train_length}"
    if evaluation > step:
        largest = f"the evaluation at length {eval_length}"
    activations = max(step, evaluation, 3 * parameters)
    if activations == 3 * parameters:
        largest = "a snapshot (a second copy of weights and moments)"
    return MemoryEstimate(
        parameters,
        BYTES * STATE_FLOATS * parameters,
        BYTES * activations,
        largest,
    )


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a run: the GPU's free memory, or the RAM the system
    says is available (Linux's MemAvailable, else the free pages); None
    where neither can be read (then nothing is checked)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KB"``: decimal units, two or three digits."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} PB"
