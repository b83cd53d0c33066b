"""``frame-tamper``: rewrite each frame's t_d on the way to the receiver, and the ack's back (issue 17)."""
from __future__ import annotations

from dataclasses import dataclass

from ...tamper import FrameRewriter, MessageTamper
from ..base import ImpairmentSpec
from ..registry import register
from .sync_tamper import rate_param, t_d_param


@register
@dataclass(frozen=True)
class FrameTamper(ImpairmentSpec):
    """Stamp frames with t_D = ``t_d``: the receiver would purify with a t_P the sender never chose."""

    t_d: int = t_d_param("the t_D frames are stamped with on their way to the receiver.")
    rate: float | None = rate_param()

    kind = "frame-tamper"
    summary = ("rewrite each frame's t_d to the receiver (and the ack's back); the receiver's\n"
               "epoch check refuses such frames even without a link key")

    def message_tamper(self, num_classes: int) -> MessageTamper:
        return FrameRewriter(self.t_d, self.rate)
