"""Summary figures for reports, torch-free: the percentile of a list of numbers, rounding that keeps None.

Used by the sender's run summary and the link's benchmarks and demo, whose JSON fields are
rounded here so that a missing figure (no sample) stays ``null``.
"""
from __future__ import annotations


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (q in 0..100, linear interpolation between ranks) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rounded(value: float | None, digits: int = 4) -> float | None:
    """``round(value, digits)``, or None when ``value`` is None."""
    return None if value is None else round(value, digits)
