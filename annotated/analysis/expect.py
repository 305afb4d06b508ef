"""Conclusions that are checked: a sentence of a chapter, and the numbers
that must bear it out.

A chapter trains small models and draws conclusions from them ("two heads
fit better than one", "NoPE is at chance beyond the training lengths"). On
another CPU, thread count or seed the trained numbers change in their later
digits (PyTorch's vector kernels and BLAS sum in another order), and a small
run can amplify that. So a conclusion is not checked by comparing digits:
each is a call here, with the margin it may lose stated in the call, and the
call raises :class:`ConclusionFailed` the moment the numbers stop bearing the
sentence out — swap the two models of a comparison and it fails.

    >>> expect("two heads reach a lower loss than one", 0.12 < 0.35,
    ...        two_heads=0.12, one_head=0.35)
    >>> expect_above("the model learned the task", 0.99, 0.95)
    >>> expect_above("the model learned the task", 0.40, 0.95)
    Traceback (most recent call last):
    ...
    annotated.analysis.expect.ConclusionFailed: ...
"""

from __future__ import annotations

from collections.abc import Sequence

from annotated.analysis.intervals import t_interval


class ConclusionFailed(AssertionError):
    """A chapter's sentence no longer holds for the numbers it rests on."""


def _numbers(numbers: dict) -> str:
    def show(value):
        return f"{value:.4g}" if isinstance(value, float) else repr(value)

    return ", ".join(f"{k}={show(v)}" for k, v in numbers.items())


def _float(value) -> float:
    """A number or a one-element tensor (detached first, so a tensor that
    requires grad converts without a warning) as a float."""
    detach = getattr(value, "detach", None)
    return float(detach() if detach else value)


def expect(claim: str, holds: bool, **numbers) -> None:
    """Raise :class:`ConclusionFailed` unless ``holds``; the message names
    the claim and the numbers it was judged on."""
    if not holds:
        raise ConclusionFailed(
            f"the page says {claim!r}, but the numbers do not bear it out: "
            f"{_numbers(numbers)}"
        )


def expect_above(claim: str, value: float, bound: float) -> None:
    """``value`` must be at least ``bound``."""
    expect(claim, value >= bound, value=_float(value), bound=bound)


def expect_below(claim: str, value: float, bound: float) -> None:
    """``value`` must be at most ``bound``."""
    expect(claim, value <= bound, value=_float(value), bound=bound)


def expect_between(
    claim: str, value: float, low: float, high: float
) -> None:
    """``value`` must lie in ``[low, high]``."""
    expect(
        claim, low <= value <= high, value=_float(value), low=low, high=high
    )


def expect_greater(
    claim: str, higher: float, lower: float, *, margin: float = 0.0
) -> None:
    """``higher`` must exceed ``lower`` by more than ``margin``."""
    expect(
        claim,
        higher - lower > margin,
        higher=_float(higher),
        lower=_float(lower),
        margin=margin,
    )


def expect_seeds_greater(
    claim: str,
    higher: Sequence[float],
    lower: Sequence[float],
    *,
    margin: float = 0.0,
) -> None:
    """The mean over seeds of ``higher`` must exceed that of ``lower`` by
    more than ``margin``, and so must the lower end of ``higher``'s 95%
    t-interval exceed the mean of ``lower`` when there are ≥ 2 seeds —
    a claim about the average, not about one lucky seed."""
    mean_high, low_high, _ = t_interval(list(higher))
    mean_low = sum(lower) / len(lower)
    floor = mean_high if len(higher) < 2 else low_high
    expect(
        claim,
        mean_high - mean_low > margin and floor > mean_low,
        mean_higher=mean_high,
        interval_low=floor,
        mean_lower=mean_low,
        margin=margin,
    )
