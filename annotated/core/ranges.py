"""The numbers a config field accepts, written as an interval.

A range reads like mathematics, ``"[0, 1)"`` or ``"[1, inf)"``, or is named:
``"positive"`` (> 0) or ``"non-negative"`` (≥ 0). :class:`Interval` parses
it, tests membership (NaN lies in no range) and says it in words for an error
message (``"an integer ≥ 1"``, ``"a number in [0, 1)"``). Imports nothing
else from :mod:`annotated`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["Interval"]

NAMED = {"positive": "(0, inf)", "non-negative": "[0, inf)"}
INTERVAL = re.compile(r"\s*([\[(])\s*(\S+?)\s*,\s*(\S+?)\s*([\])])\s*")


@dataclass(frozen=True)
class Interval:
    """The numbers a field accepts: ``low``…``high``, each end closed or
    open."""

    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = True
    high_closed: bool = True

    @classmethod
    def parse(cls, text: str) -> Interval:
        """``"[0, 1)"``, ``"(0, inf)"``, ``"positive"`` (> 0) or
        ``"non-negative"`` (≥ 0)."""
        match = INTERVAL.fullmatch(NAMED.get(text, text))
        if not match:
            raise ValueError(
                "a range is written like '[0, 1)', '(0, inf)', 'positive' "
                f"or 'non-negative', not {text!r}"
            )
        return cls(
            float(match[2]), float(match[3]), match[1] == "[", match[4] == "]"
        )

    def __contains__(self, x) -> bool:
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return bool(above and below)

    def describe(self, noun: str) -> str:
        """``"a positive integer"``, ``"an integer ≥ 1"``,
        ``"a number in [0, 1)"``…"""
        article = "an" if noun[0] in "aeiou" else "a"
        if self.high == math.inf and not self.high_closed:
            if self.low == 0 and not self.low_closed:
                finite = "finite " if noun == "number" else ""
                return f"a positive {finite}{noun}"
            if self.low == 0:
                return f"a non-negative {noun}"
            if self.low == -math.inf:
                return f"{article} {noun}"
            sign = "≥" if self.low_closed else ">"
            return f"{article} {noun} {sign} {_show_bound(self.low)}"
        return f"{article} {noun} in {self}"

    def __str__(self) -> str:
        low, high = _show_bound(self.low), _show_bound(self.high)
        opening = "[" if self.low_closed else "("
        closing = "]" if self.high_closed else ")"
        return f"{opening}{low}, {high}{closing}"

    def bounded(self) -> bool:
        """Whether both ends are finite."""
        return math.isfinite(self.low) and math.isfinite(self.high)


def _show_bound(x: float) -> str:
    """``1.0`` → ``"1"``; ``inf`` and ``0.5`` as Python writes them."""
    return str(int(x)) if math.isfinite(x) and x == int(x) else str(x)
