"""Perturbation budgets as people write them: ``0.03`` or ``8/255`` (l_inf, [0, 1] pixel units)."""
from __future__ import annotations

import math


def parse_eps(text: str | float | int) -> float:
    """``"8/255"`` -> 0.03137..., ``"0.03"`` -> 0.03; a float passes through.

    The result must be a finite number in [0, 1] (pixels live in [0, 1], so a larger l_inf budget
    means nothing). ValueError with the offending text otherwise, e.g. for ``"9/0"``.
    """
    if isinstance(text, bool):
        raise ValueError(f"eps must be a number like 0.03 or 8/255, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip()
        try:
            if "/" in raw:
                num, _, den = raw.partition("/")
                if float(den) == 0:
                    raise ValueError(f"eps {raw!r} divides by zero; write e.g. 8/255")
                value = float(num) / float(den)
            else:
                value = float(raw)
        except ValueError as err:
            if "divides by zero" in str(err):
                raise
            raise ValueError(f"eps must be a number like 0.03 or 8/255, got {raw!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"eps must lie in [0, 1] ([0, 1] pixel units, l_inf), got {text!r} = {value:g}")
    return value


def format_eps(value: float) -> str:
    """A readable label: 8/255 when it is a whole number of 8-bit levels, else the decimal."""
    levels = value * 255
    return f"{round(levels)}/255" if value > 0 and abs(levels - round(levels)) < 1e-6 else f"{value:g}"
