"""The channel's SNR (dB): its allowed range, and piecewise-constant schedules of (seconds, dB) points
(the time checks and lookup serve the fading schedule too, :mod:`channel_proxy.fading_schedule`).

``diffusec-proxy snr schedule FILE`` reads a CSV of ``seconds,snr_db`` rows; at t seconds after
the schedule starts the SNR is that of the last point at or before t (the first point's before it),
repeating every ``period_s`` seconds when that is > 0. Torch-free.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

SNR_RANGE_DB = (-60.0, 120.0)


def check_snr_db(snr_db: float) -> float:
    """``snr_db`` when it is a finite number of dB in SNR_RANGE_DB; else ValueError."""
    if not (math.isfinite(snr_db) and SNR_RANGE_DB[0] <= snr_db <= SNR_RANGE_DB[1]):
        raise ValueError(f"SNR must be a finite number of dB in {SNR_RANGE_DB[0]:g}..{SNR_RANGE_DB[1]:g}, got {snr_db}")
    return snr_db


def check_schedule(points: Sequence[tuple[float, float]], period_s: float = 0.0) -> list[tuple[float, float]]:
    """Validate (at_s, snr_db) points: at least one, at_s >= 0 and non-decreasing, SNRs in range."""
    points = [(float(t), float(db)) for t, db in points]
    check_times([t for t, _ in points], period_s, "an SNR schedule needs at least one (seconds, dB) point")
    for _, snr_db in points:
        check_snr_db(snr_db)
    return points


def check_times(times: Sequence[float], period_s: float, empty_message: str) -> None:
    """The times (s) of a schedule's points: at least one, finite, >= 0, non-decreasing; ``period_s`` 0 or
    longer than the last. ValueError saying what is wrong (``empty_message`` for no point)."""
    if not times:
        raise ValueError(empty_message)
    previous = 0.0
    for at_s in times:
        if not math.isfinite(at_s) or at_s < previous:
            raise ValueError(f"schedule times must be finite, >= 0 and non-decreasing; got {at_s} after {previous}")
        previous = at_s
    if not math.isfinite(period_s) or period_s < 0 or (period_s and period_s <= times[-1]):
        raise ValueError(f"period_s must be 0 (no repeat) or longer than the last point's time "
                         f"({times[-1]} s), got {period_s}")


def point_at(points: Sequence[tuple], elapsed_s: float, period_s: float = 0.0):
    """The value (second item) of the last (at_s, value, ...) point at or before ``elapsed_s`` (the first's before it)."""
    if period_s > 0:
        elapsed_s = elapsed_s % period_s
    current = points[0][1]
    for point in points:
        if point[0] > elapsed_s:
            break
        current = point[1]
    return current


def snr_at(points: Sequence[tuple[float, float]], elapsed_s: float, period_s: float = 0.0) -> float:
    """The scheduled SNR (dB) ``elapsed_s`` seconds after the start: the last point at or before it."""
    return point_at(points, elapsed_s, period_s)


def parse_schedule_csv(text: str) -> list[tuple[float, float]]:
    """CSV rows ``seconds,snr_db`` (an optional header row, blank lines and '#' comments allowed)."""
    points, header_allowed = [], True
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header_allowed and not _is_number(cells[0]):
            header_allowed = False
            continue  # a header row such as "seconds,snr_db"
        header_allowed = False
        try:
            if len([c for c in cells if c]) != 2:
                raise ValueError
            at_s, snr_db = float(cells[0]), float(cells[1])
        except (ValueError, IndexError):
            raise ValueError(f"schedule line {number}: expected 'seconds,snr_db', got {','.join(row)!r}") from None
        points.append((at_s, snr_db))
    return check_schedule(points)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
