"""``delay``: frames and syncs go on ``ms`` milliseconds later, +- a uniform ``jitter_ms``, never
earlier than at once. Jitter can reorder frames, as on a real network (channel_proxy.delayline)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..base import ImpairmentSpec
from ..params import param
from ..registry import register

MAX_DELAY_MS = 60_000.0


def delay_s(ms: float, jitter_ms: float, u: float) -> float:
    """Delay in seconds for a uniform draw ``u`` in [0, 1): ms + (2u - 1) jitter_ms, at least 0."""
    return max(0.0, ms + (2.0 * u - 1.0) * jitter_ms) / 1000.0


@register
@dataclass(frozen=True)
class Delay(ImpairmentSpec):
    """Forwarding delay of ``ms`` milliseconds +- uniform ``jitter_ms``, never negative."""

    ms: float = param("milliseconds added to each frame and sync.", unit="ms", metavar="MS", low=0.0,
                      high=MAX_DELAY_MS)
    jitter_ms: float = param("+- uniform jitter in milliseconds.", unit="ms", metavar="J", low=0.0,
                             high=MAX_DELAY_MS, default=0.0)

    kind = "delay"
    summary = "forward frames and syncs MS +- J ms later"

    def added_delay_s(self, draw: Callable[[], float]) -> float:
        return delay_s(self.ms, self.jitter_ms, draw())
