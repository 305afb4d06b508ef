"""95% intervals: for one accuracy, and for a mean over seeds.

The accuracy is measured on n test examples; the mean is over a handful of
seeds.

An accuracy of 0.90 on 50 problems and on 5,000 problems are different claims.
Each accuracy the lab records carries a **Wilson score interval** (Wilson
1927), which, unlike the textbook p ± z·√(p(1−p)/n), stays inside [0, 1] and
does not collapse to a point at 0 or 1 accuracy:

    centre     = (p + z²/2n) / (1 + z²/n),
    half-width = z / (1 + z²/n) · √(p(1−p)/n + z²/4n²)

A mean over seeds (a handful of runs, each its own random draw of
initialisation and data) carries a **Student-t interval**: mean ± t₀.₉₇₅(k−1)
· s / √k for k seeds with sample standard deviation s. With k = 3, t₀.₉₇₅(2) =
4.30: three seeds give a wide interval, which is the point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(
    successes: int, n: int, z: float = Z95
) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of ``successes`` / ``n``.

    It is ``(0, 1)`` when ``n == 0``; an end is exactly 0 or 1 when every
    trial failed or succeeded."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(
            f"need 0 ≤ successes ≤ n, got successes={successes}, n={n}"
        )
    if n == 0:
        return 0.0, 1.0
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == n else centre + half
    return low, high


def t_interval(
    values: Sequence[float],
    confidence: float = 0.95,
    *,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float, float]:
    """The Student-t interval ``(mean, low, high)`` for a mean over seeds.

    ``values`` holds one value per seed.

    One value has no spread to measure: its interval is ``(nan, nan)``, never
    a fake zero width. ``bounds`` clips the interval to the values a metric
    can take (``(0, 1)`` for an accuracy: with three seeds the t-interval of
    0.88, 0.99, 0.98 reaches past 1).
    """
    from scipy import stats

    xs = [
        float(v) for v in values if v is not None and not math.isnan(float(v))
    ]
    if not xs:
        return math.nan, math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    half = (
        float(stats.t.ppf(0.5 + confidence / 2, len(xs) - 1))
        * sd
        / math.sqrt(len(xs))
    )
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, low, high


def format_interval(
    mean: float, low: float, high: float, digits: int = 2
) -> str:
    """``0.87 [0.80, 0.92]``, or the mean alone without an interval."""
    if any(math.isnan(v) for v in (low, high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
