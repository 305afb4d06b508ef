"""One colour per positional encoding, the same in every figure of the book.

A reader who learns "RoPE is red" in week 3 should find RoPE red in weeks 5,
6 and 6b. Figures colour an encoding's line with :func:`encoding_color`,
which reads the encoding's name out of a label ("RoPE", "rope, seed 1",
"NoPE (n ≤ 20)") and falls back to grey for anything else.

    >>> encoding_color("RoPE, seed 2") == ENCODING_COLORS["rope"]
    True
    >>> encoding_color("train length")
    '0.4'
"""

from __future__ import annotations

import re

# matplotlib's tab10 colours, one per encoding in the registry
ENCODING_COLORS: dict[str, str] = {
    "nope": "#7f7f7f",  # grey: no positions
    "sinusoidal": "#1f77b4",  # blue
    "learned": "#ff7f0e",  # orange
    "rope": "#d62728",  # red
    "alibi": "#2ca02c",  # green
    "t5": "#9467bd",  # purple
    "randomized": "#8c564b",  # brown
    "abacus": "#e377c2",  # pink
    "coupled_bias": "#17becf",  # cyan
    "fire": "#bcbd22",  # olive
}

# spellings a label may use for a registered name, longest first so that
# "coupled" does not stop at a shorter match
_ALIASES = {
    "coupled_bias": "coupled_bias",
    "randomized": "randomized",
    "randomised": "randomized",
    "sinusoidal": "sinusoidal",
    "coupling": "coupled_bias",
    "coupled": "coupled_bias",
    "learned": "learned",
    "abacus": "abacus",
    "alibi": "alibi",
    "nope": "nope",
    "rope": "rope",
    "fire": "fire",
    "t5": "t5",
}
_NAMES = "|".join(_ALIASES)
_WORD = re.compile(rf"(?<![a-z0-9])({_NAMES})(?![a-z0-9])")


def encoding_name(label: str) -> str | None:
    """The registered encoding a label names, or None."""
    match = _WORD.search(str(label).lower())
    return _ALIASES[match.group(1)] if match else None


def encoding_color(label: str, default: str | None = "0.4") -> str | None:
    """The book's colour for the encoding ``label`` names, else ``default``
    (None lets matplotlib pick the next colour of its cycle)."""
    name = encoding_name(label)
    return ENCODING_COLORS[name] if name else default
