"""``drop``: each frame is lost (not forwarded) with probability ``rate``; the sender resends it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..base import ImpairmentSpec
from ..params import param
from ..registry import register


def is_dropped(rate: float, u: float) -> bool:
    """Whether a frame is lost, given a uniform draw ``u`` in [0, 1)."""
    return u < rate


@register
@dataclass(frozen=True)
class Drop(ImpairmentSpec):
    """Frame loss with probability ``rate`` in [0, 1]."""

    rate: float = param("probability in 0..1 that a frame is lost.", metavar="P", low=0.0, high=1.0)

    kind = "drop"
    summary = "lose each frame with probability P (the sender resends)"

    def drops_frame(self, draw: Callable[[], float]) -> bool:
        return is_dropped(self.rate, draw())
