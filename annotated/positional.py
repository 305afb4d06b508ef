"""Positional encodings: how a permutation-equivariant attention layer learns about order.

Self-attention without positions treats its input as a set. Each encoding here puts order
back in at exactly one of three places, declared by its class attribute ``where``:

==============  ======================================  =========================================
``where``       what the encoding does                  encodings
==============  ======================================  =========================================
"embedding"     ``x + p(position)`` before the layers   sinusoidal, learned absolute, randomized
"qk"            rotates q and k inside attention        RoPE
"score"         adds a bias (H, Tq, Tk) to the scores   ALiBi, T5 relative bias
"none"          nothing (NoPE; causal masking alone)    NoPE
==============  ======================================  =========================================

Every encoding answers all three hooks (``forward``, ``rotate_qk``, ``score_bias``); the
ones it does not act at are identities, so :class:`~annotated.attention.MultiHeadAttention`
and the models call the hooks without copying a ``forward`` per encoding.

Legend: B batch, T time, C model dim, H heads, D head dim, Tq/Tk query/key length.
Positions are integer tensors of shape (T,) or (B, T).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class PositionalEncoding(nn.Module):
    """Base class: identity at all three hooks. Subclasses set ``where`` and override one hook."""

    where: str = "none"

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Embedding hook: ``(B, T, C) -> (B, T, C)``; identity unless ``where == "embedding"``."""
        return x

    def rotate_qk(self, q, k, q_pos, k_pos) -> tuple[torch.Tensor, torch.Tensor]:
        """q/k hook on ``(B, H, T, D)`` tensors; identity unless ``where == "qk"``."""
        return q, k

    def score_bias(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor | None:
        """Score hook: a float bias ``(H, Tq, Tk)`` (or ``(B, H, Tq, Tk)``); ``None`` unless ``where == "score"``."""
        return None

    @classmethod
    def build(cls, *, d_model: int, n_heads: int, max_len: int, causal: bool = True, **kwargs):
        """Construct from the model-level arguments used by :func:`make_positional`."""
        return cls(**kwargs)


def _default_positions(x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    return torch.arange(x.shape[1], device=x.device) if positions is None else positions.to(x.device)


def _check_positions(positions: torch.Tensor, t: int) -> None:
    if positions.dtype not in (torch.int32, torch.int64) or positions.dim() not in (1, 2) or positions.shape[-1] != t:
        raise ValueError(
            f"positions must be an integer tensor of shape (T,) or (B, T) with T = {t}; "
            f"got dtype {positions.dtype}, shape {tuple(positions.shape)}"
        )


# --- added to the embeddings ------------------------------------------------------------------


def sinusoidal_encoding(positions: torch.Tensor, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """Vaswani et al. 2017, §3.5: ``PE[p, 2i] = sin(p / base^(2i/C))``, ``PE[p, 2i+1] = cos(...)``.

    Returns ``(*positions.shape, C)``. Computed from the positions, so there is no table and
    no largest position; whether a model *generalises* to unseen positions is another matter.
    """
    i = torch.arange((d_model + 1) // 2, device=positions.device, dtype=torch.float32)
    inv_freq = base ** (-2 * i / d_model)  # (ceil(C/2),)
    angles = positions.to(torch.float32)[..., None] * inv_freq  # (..., ceil(C/2))
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (..., 2*ceil(C/2)) interleaved sin, cos
    return pe[..., :d_model]


class SinusoidalEncoding(PositionalEncoding):
    """Fixed sine/cosine encoding added to the embeddings (Vaswani et al. 2017)."""

    where = "embedding"

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        self.d_model, self.base = d_model, base

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        positions = _default_positions(x, positions)
        _check_positions(positions, x.shape[1])
        return x + sinusoidal_encoding(positions, self.d_model, self.base).to(x.dtype)  # (B, T, C)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(d_model, **kwargs)


class LearnedAbsoluteEncoding(PositionalEncoding):
    """A trained vector per position, added to the embeddings (GPT-2; Radford et al. 2019).

    The table has ``max_len`` rows, so a position ``>= max_len`` has no vector: by default
    that raises ``ValueError`` (the encoding cannot extrapolate). ``overflow="clamp"`` is the
    explicit fallback: every position past the table reuses the last learned row.
    """

    where = "embedding"
    OVERFLOW_CHOICES = ("error", "clamp")

    def __init__(self, max_len: int, d_model: int, *, overflow: str = "error", init_std: float = 0.02):
        super().__init__()
        if overflow not in self.OVERFLOW_CHOICES:
            raise ValueError(f"overflow must be one of {self.OVERFLOW_CHOICES}, got {overflow!r}")
        if max_len <= 0:
            raise ValueError(f"max_len must be a positive table size, got {max_len}")
        self.max_len, self.overflow = max_len, overflow
        self.table = nn.Embedding(max_len, d_model)  # (max_len, C)
        nn.init.normal_(self.table.weight, std=init_std)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        positions = _default_positions(x, positions)
        _check_positions(positions, x.shape[1])
        if (positions < 0).any():
            raise ValueError(f"positions must be >= 0, got min {int(positions.min())}")
        if self.overflow == "clamp":
            positions = positions.clamp(max=self.max_len - 1)
        elif (positions >= self.max_len).any():
            raise ValueError(
                f"LearnedAbsoluteEncoding cannot extrapolate: its table has max_len={self.max_len} positions "
                f"(0..{self.max_len - 1}) but position {int(positions.max())} was asked for. Use a larger max_len, "
                "or pass overflow='clamp' to reuse the last learned position for every later one."
            )
        return x + self.table(positions).to(x.dtype)  # (B, T, C)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(max_len, d_model, **kwargs)


class RandomizedPositions(PositionalEncoding):
    """Randomized positional encodings (Ruoss et al. 2023, "Randomized Positional Encodings
    Boost Length Generalization of Transformers").

    While training, each sequence of length T gets T *sorted* positions drawn without
    replacement from ``range(max_positions)`` with ``max_positions`` much larger than the
    training length, so the model sees large position values and learns to use their order,
    not their values. The positions are then encoded by ``inner`` (sinusoidal by default).

    Randomness comes from ``generator`` (or a private one seeded with ``seed``); with
    neither, the global torch RNG is used.

    Evaluation (``self.training`` False): we use the plain positions ``0..T-1`` by default,
    which is deterministic and comparable with the other encodings. The paper's reference
    implementation samples random sorted positions at evaluation too; set
    ``sample_in_eval=True`` to follow it. Explicitly passed ``positions`` are always used as given.
    """

    where = "embedding"

    def __init__(
        self,
        d_model: int,
        max_positions: int,
        *,
        inner: PositionalEncoding | None = None,
        sample_in_eval: bool = False,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        if max_positions <= 0:
            raise ValueError(f"max_positions must be positive, got {max_positions}")
        self.max_positions, self.sample_in_eval = max_positions, sample_in_eval
        self.inner = SinusoidalEncoding(d_model) if inner is None else inner
        if self.inner.where != "embedding":
            raise ValueError(f"inner must be an embedding-level encoding, got where={self.inner.where!r}")
        self.generator = torch.Generator().manual_seed(seed) if generator is None and seed is not None else generator

    def sample_positions(self, batch: int, length: int) -> torch.Tensor:
        """``(B, T)`` sorted positions, distinct within each row, from ``range(max_positions)``."""
        if length > self.max_positions:
            raise ValueError(
                f"cannot draw {length} distinct positions from range({self.max_positions}); "
                "raise max_positions above the longest sequence"
            )
        noise = torch.rand(batch, self.max_positions, generator=self.generator)  # (B, max_positions)
        return noise.argsort(dim=-1)[:, :length].sort(dim=-1).values  # (B, T): a random sorted subset

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        if positions is None and (self.training or self.sample_in_eval):
            positions = self.sample_positions(x.shape[0], x.shape[1]).to(x.device)
        return self.inner(x, positions)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        kwargs.setdefault("max_positions", 4 * max_len)  # the paper uses L >> N; 4x the training length here
        return cls(d_model, **kwargs)


# --- rotating q and k ------------------------------------------------------------------------


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021, "RoFormer", eq. 34).

    Dims are taken in adjacent pairs ``(x[2i], x[2i+1])`` and pair ``i`` at position ``m`` is
    rotated by the angle ``m θ_i`` with ``θ_i = base^(-2i/D)``. Rotations preserve norms, and
    ``<R(mθ) q, R(nθ) k> = <q, R((n-m)θ) k>`` depends on positions only through ``n - m``.
    (HF's Llama pairs dim ``i`` with ``i + D/2`` instead: the same thing with permuted dims.)

    Args:
        x: ``(..., T, D)`` with D even, e.g. ``(B, H, T, D)``.
        positions: ``(T,)``, or ``(B, T)`` when x is ``(B, H, T, D)``.
    """
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"RoPE rotates pairs of dims, so the head dim must be even; got D={d}")
    dtype = torch.promote_types(x.dtype, torch.float32)  # float32 at least, float64 when given
    theta = base ** (-torch.arange(0, d, 2, device=x.device, dtype=dtype) / d)  # (D/2,)
    angles = positions.to(device=x.device, dtype=dtype)[..., None] * theta  # (..., T, D/2)
    if positions.dim() == 2 and x.dim() == 4:
        angles = angles[:, None]  # (B, 1, T, D/2): same positions for every head
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x.to(dtype).unflatten(-1, (d // 2, 2)).unbind(-1)  # each (..., T, D/2)
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, D/2, 2)
    return rotated.flatten(-2).to(x.dtype)  # (..., T, D)


class RotaryEncoding(PositionalEncoding):
    """RoPE (Su et al. 2021): rotate q and k by their positions inside every attention layer.

    No parameters. ``head_dim`` is optional and only used to fail early on an odd head dim.
    """

    where = "qk"

    def __init__(self, head_dim: int | None = None, base: float = 10000.0):
        super().__init__()
        if head_dim is not None and head_dim % 2:
            raise ValueError(
                f"RoPE needs an even head dim (it rotates pairs of dims), got head_dim={head_dim}; "
                "choose d_model and n_heads so that d_model // n_heads is even"
            )
        self.head_dim, self.base = head_dim, base

    def rotate_qk(self, q, k, q_pos, k_pos):
        return apply_rope(q, q_pos, self.base), apply_rope(k, k_pos, self.base)  # (B, H, Tq, D), (B, H, Tk, D)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        return cls(d_model // n_heads, **kwargs)


# --- added to the scores ---------------------------------------------------------------------


def _relative_positions(q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    return k_pos.to(q_pos.device)[..., None, :] - q_pos[..., :, None]  # (..., Tq, Tk): key minus query


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi head slopes (Press et al. 2022, §3).

    For n a power of two: the geometric sequence ``2^(-8/n), 2^(-16/n), ..., 2^-8``.
    Otherwise (the paper's rule): the slopes for the closest power of two ``2^floor(log2 n)``,
    followed by every other slope of ``2 * 2^floor(log2 n)`` heads until there are n.
    """
    if n_heads <= 0:
        raise ValueError(f"n_heads must be positive, got {n_heads}")

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = geometric(closest) + geometric(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes)  # (H,)


class AlibiBias(PositionalEncoding):
    """Attention with Linear Biases (Press et al. 2022): ``score(i, j) += -slope_h * (i - j)``.

    Causal form: ``-slope * (i - j)``; for the visible keys ``j <= i`` it is 0 on the diagonal
    and falls linearly with distance (keys ``j > i`` must be masked). The paper's code adds
    ``slope * j`` instead, which differs by ``slope * i`` per row: softmax does not see that.
    Bidirectional (symmetric) form for encoders: ``-slope * |i - j|``. No parameters.
    """

    where = "score"

    def __init__(self, n_heads: int, *, causal: bool = True):
        super().__init__()
        self.n_heads, self.causal = n_heads, causal
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)  # (H,)

    def score_bias(self, q_pos, k_pos):
        distance = -_relative_positions(q_pos, k_pos)  # (..., Tq, Tk): i - j
        if not self.causal:
            distance = distance.abs()
        slopes = self.slopes.to(q_pos.device)[:, None, None]  # (H, 1, 1)
        return -slopes * distance.unsqueeze(-3).float()  # (..., H, Tq, Tk)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(n_heads, causal=causal, **kwargs)


def t5_relative_bucket(
    relative_position: torch.Tensor, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """T5's bucket of each relative position ``key - query`` (Raffel et al. 2020; as in HF T5).

    Bidirectional: half the buckets for keys after the query (``+ num_buckets/2``), half for
    keys before. Causal: keys after the query all fall in bucket 0. Within a half of ``n``
    buckets, distances ``0 .. n/2 - 1`` get a bucket each; larger distances share
    logarithmically wider buckets up to ``max_distance``; all beyond share the last bucket.

    >>> t5_relative_bucket(torch.tensor([-1, 0, 1, -20, -200]), bidirectional=True).tolist()
    [1, 0, 17, 10, 15]
    """
    buckets = torch.zeros_like(relative_position, dtype=torch.long)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)  # future keys -> 0
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    log_ratio = torch.log(distance.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (log_ratio * (num_buckets - max_exact)).long()).clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class T5RelativeBias(PositionalEncoding):
    """T5 relative position bias (Raffel et al. 2020): a learned scalar per (bucket, head).

    ``score(i, j) += embedding[bucket(j - i), h]``. ``bidirectional=True`` for encoders,
    ``False`` for decoders. T5 shares one such table across all layers of a stack (pass the
    same module to every layer) and does not scale scores by ``1/√D``; our attention does.
    """

    where = "score"

    def __init__(self, n_heads: int, *, bidirectional: bool = False, num_buckets: int = 32, max_distance: int = 128):
        super().__init__()
        self.n_heads, self.bidirectional = n_heads, bidirectional
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.bucket_bias = nn.Embedding(num_buckets, n_heads)  # (num_buckets, H)
        nn.init.normal_(self.bucket_bias.weight, std=0.02)

    def score_bias(self, q_pos, k_pos):
        buckets = t5_relative_bucket(
            _relative_positions(q_pos, k_pos), self.bidirectional, self.num_buckets, self.max_distance
        )  # (..., Tq, Tk)
        return self.bucket_bias(buckets).movedim(-1, -3)  # (..., Tq, Tk, H) -> (..., H, Tq, Tk)

    @classmethod
    def build(cls, *, d_model, n_heads, max_len, causal=True, **kwargs):
        return cls(n_heads, bidirectional=not causal, **kwargs)


class NoPositionalEncoding(PositionalEncoding):
    """NoPE: no positional information (Kazemnejad et al. 2023). A causal mask alone still
    lets a decoder infer positions; an unmasked encoder stays permutation-equivariant."""

    where = "none"


# --- registry --------------------------------------------------------------------------------

POSITIONAL_ENCODINGS: dict[str, type[PositionalEncoding]] = {
    "none": NoPositionalEncoding,
    "nope": NoPositionalEncoding,
    "sinusoidal": SinusoidalEncoding,
    "learned": LearnedAbsoluteEncoding,
    "rope": RotaryEncoding,
    "alibi": AlibiBias,
    "t5": T5RelativeBias,
    "randomized": RandomizedPositions,
}


def make_positional(name: str, *, d_model: int, n_heads: int, max_len: int, causal: bool = True, **kwargs):
    """Build the encoding called ``name`` from model-level sizes.

    ``max_len`` is the training length (the learned table size; randomized draws from
    ``4 * max_len`` positions unless ``max_positions`` is given). ``causal`` picks the causal
    or bidirectional form of ALiBi and T5. Extra ``kwargs`` go to the encoding's constructor.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in POSITIONAL_ENCODINGS:
        raise ValueError(f"unknown positional encoding {name!r}; choose one of {sorted(POSITIONAL_ENCODINGS)}")
    return POSITIONAL_ENCODINGS[key].build(d_model=d_model, n_heads=n_heads, max_len=max_len, causal=causal, **kwargs)
