"""Small helpers shared by the benchmarks: percentiles, machine load, rounding."""
from __future__ import annotations

import os
import time


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100, linear interpolation); None when ``values`` is empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def machine() -> dict:
    """What the numbers were measured on: CPU count and 1-minute load average, with a timestamp."""
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "load_avg_1m": load,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
