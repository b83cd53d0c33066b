"""``sync-tamper``: rewrite SyncReply.t_d (and t_plus) on the way to the sender, and hide it (issue 17)."""
from __future__ import annotations

from dataclasses import dataclass

from shared.presets import NUM_TIMESTEPS

from ...tamper import MessageTamper, SyncRewriter
from ..base import ImpairmentSpec
from ..params import param
from ..registry import register


def rate_param():
    """The share of messages a tampering kind changes (None: every one)."""
    return param("share of the messages it changes, 0..1 (default: every one).", metavar="P", low=0.0, high=1.0,
                 default=None)


def t_d_param(help: str):
    return param(help, metavar="N", low=0, high=NUM_TIMESTEPS)


@register
@dataclass(frozen=True)
class SyncTamper(ImpairmentSpec):
    """Tell the sender t_D = ``t_d`` (and t_plus) instead of the receiver's choice."""

    t_d: int = t_d_param("the t_D the sender is told (and diffuses with).")
    t_plus: int | None = param("the t_plus the sender is told (default: left alone).", metavar="M", low=0,
                               high=NUM_TIMESTEPS, default=None)
    rate: float | None = rate_param()

    kind = "sync-tamper"
    summary = ("rewrite SyncReply.t_d (and t_plus) to the sender and put the receiver's t_D\n"
               "back into the frames: without a link key neither end notices")

    def message_tamper(self, num_classes: int) -> MessageTamper:
        return SyncRewriter(self.t_d, self.t_plus, self.rate)
