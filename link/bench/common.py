"""What the benchmarks record beside their figures: the machine they ran on."""
from __future__ import annotations

import os
import time


def machine() -> dict:
    """What the numbers were measured on: CPU count and 1-minute load average, with a timestamp."""
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "load_avg_1m": load,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
