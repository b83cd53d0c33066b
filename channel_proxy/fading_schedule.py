"""The fading model over time: ``diffusec-proxy channel schedule FILE``, a CSV of
``seconds,kind[,k_db[,block]]`` rows (kind awgn, rayleigh or rician; k_db for rician; block in complex
symbols, empty or 0 for one coefficient per frame), piecewise constant as the SNR's schedule
(:mod:`channel_proxy.snr`). Torch-free.

    # seconds,kind,k_db,block
    0,awgn
    10,rayleigh
    20,rician,10
    30,rayleigh,,16
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from .snr import check_times

KINDS = ("awgn", "rayleigh", "rician")


@dataclass(frozen=True)
class FadingPoint:
    """From ``at_s`` on, the channel is ``kind`` (with ``k_db`` for rician, ``block`` complex symbols per coefficient)."""

    at_s: float
    kind: str
    k_db: float | None = None
    block: int = 0


def parse_fading_csv(text: str, period_s: float = 0.0) -> list[FadingPoint]:
    """The points of a fading schedule's CSV (header row, blank lines and '#' comments allowed); ValueError
    naming the line that is wrong."""
    points = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#") or (not points and cells[0].lower() in ("seconds", "at_s")):
            continue
        try:
            points.append(_point(cells))
        except ValueError as err:
            raise ValueError(f"fading schedule line {number} ({','.join(row)!r}): {err}") from None
    check_times([p.at_s for p in points], period_s, "a fading schedule needs at least one `seconds,kind` row")
    return points


def _point(cells: list[str]) -> FadingPoint:
    cells += [""] * (4 - len(cells))
    if len(cells) > 4 or cells[1] not in KINDS:
        raise ValueError(f"expected seconds,kind[,k_db[,block]] with kind one of {', '.join(KINDS)}")
    at_s, kind = float(cells[0]), cells[1]
    k_db = float(cells[2]) if cells[2] else None
    block = int(cells[3]) if cells[3] else 0
    if (k_db is None) == (kind == "rician"):
        raise ValueError("rician needs its K factor (dB) in the third column, and only rician takes one")
    if block < 0 or (kind == "awgn" and block):
        raise ValueError("the block is a number of complex symbols >= 0, for rayleigh and rician only")
    return FadingPoint(at_s, kind, k_db, block)
