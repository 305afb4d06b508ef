"""Does block-wise attention stay O(T·block) with every encoding?

Its memory is measured with each positional encoding.

RoPE acts on q and k, so a tiled kernel never sees it. ALiBi and T5 act on the
scores: given as a ``score_mod``, the kernel evaluates them one tile at a
time; given as a materialised (H, T, T) bias tensor — how x-transformers
passes ALiBi — the bias alone is O(T²). This benchmark measures the peak
forward memory of :func:`blockwise_attention` for each, at H = 4, D = 16 by
default, and fits the exponent of memory against T.

Legend: H heads, T time, D head dim.
"""

from __future__ import annotations

import math

import torch

from annotated.bench.measure import fit_exponent, peak_forward_bytes
from annotated.kernels import blockwise_attention
from annotated.positional import make_positional

ENCODING_LENGTHS = (1024, 2048, 4096, 8192)
VARIANTS = {  # label: (encoding, how its score-level part reaches the kernel)
    "rope": ("rope", "mod"),
    "alibi": ("alibi", "mod"),
    "t5": ("t5", "mod"),
    "alibi (bias tensor)": ("alibi", "tensor"),
}


def encoding_memory(
    variants=tuple(VARIANTS),
    lengths=ENCODING_LENGTHS,
    *,
    n_heads: int = 4,
    d_head: int = 16,
    block_size: int = 128,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Peak forward memory of block-wise attention with each encoding.

    Rows ``{variant, T, peak_forward_mib, vs_rope}``: causal block-wise
    attention (batch 1); ``vs_rope`` is the ratio to RoPE at the same T."""
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    rows = []
    for label, t in tqdm(
        [(v, t) for v in variants for t in lengths],
        desc="encodings",
        disable=not progress,
    ):
        name, how = VARIANTS[label]
        enc = make_positional(
            name, d_model=n_heads * d_head, n_heads=n_heads, max_len=t
        ).to(device)
        # (B, H, T, D)
        q, k, v = (
            torch.randn(1, n_heads, t, d_head, generator=gen).to(device)
            for _ in range(3)
        )
        pos = torch.arange(t, device=device)

        def forward(enc=enc, q=q, k=k, v=v, pos=pos, how=how):
            with torch.no_grad():
                qr, kr = enc.rotate_qk(q, k, pos, pos)
                # the (H, T, T) bias, built before the kernel slices it
                if how == "tensor":
                    return blockwise_attention(
                        qr,
                        kr,
                        v,
                        bias=enc.score_bias(pos, pos),
                        causal=True,
                        block_size=block_size,
                    )
                return blockwise_attention(
                    qr,
                    kr,
                    v,
                    causal=True,
                    score_mod=enc.score_mod(pos, pos),
                    block_size=block_size,
                )

        rows.append(
            {
                "variant": label,
                "T": t,
                "peak_forward_mib": round(
                    peak_forward_bytes(forward, device) / 2**20, 3
                ),
            }
        )
    rope = {
        r["T"]: r["peak_forward_mib"] for r in rows if r["variant"] == "rope"
    }
    for r in rows:
        r["vs_rope"] = (
            round(r["peak_forward_mib"] / rope[r["T"]], 2)
            if rope.get(r["T"])
            else None
        )
    return rows


def encoding_exponents(rows: list[dict]) -> dict[str, float]:
    """Fitted exponent of peak memory against T, per variant."""
    return {
        v: fit_exponent(
            [r["T"] for r in rows if r["variant"] == v],
            [r["peak_forward_mib"] for r in rows if r["variant"] == v],
        )
        for v in dict.fromkeys(r["variant"] for r in rows)
    }


def encoding_table(rows: list[dict]) -> str:
    """Markdown: peak MiB per variant and T, and the fitted exponent.

    The ratio to RoPE is in brackets."""
    lengths = sorted({r["T"] for r in rows})
    cell = {(r["variant"], r["T"]): r for r in rows}
    lines = [
        "| variant | "
        + " | ".join(f"T={t}" for t in lengths)
        + " | exponent |",
        "|---|" + "---:|" * (len(lengths) + 1),
    ]
    for variant, slope in encoding_exponents(rows).items():
        values = []
        for t in lengths:
            r = cell.get((variant, t))
            values.append(
                "—"
                if r is None
                else f"{r['peak_forward_mib']:.2f} ({r['vs_rope']:.2f}×)"
            )
        lines.append(
            f"| {variant} | "
            + " | ".join(values)
            + f" | {'—' if math.isnan(slope) else f'{slope:.2f}'} |"
        )
    return "\n".join(lines) + "\n"
