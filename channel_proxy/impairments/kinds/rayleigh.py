"""``rayleigh``: block fading, h ~ CN(0, 1) per frame or per ``block`` complex symbols, on every frame, its
pilot and every Sync pilot, before the AWGN (complex baseband: the real symbols paired as I/Q).

E|h|^2 = 1, so the set SNR stays the average one. A coherent receiver (``--equaliser zf|mmse``) asks
for frame pilots and equalises (:mod:`shared.pilot_aided`); the AWGN receiver does not, and reads
rotated symbols. At most one fading kind is on at a time: ``diffusec-proxy channel set`` replaces it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..base import ImpairmentSpec
from ..params import param
from ..registry import register

if TYPE_CHECKING:
    from shared.fading import LinkChannel

MAX_BLOCK_SYMBOLS = 1 << 20


def block_param():
    """The coherence block of the fading kinds."""
    return param("complex symbols per fading coefficient; 0: one coefficient per frame.", metavar="N",
                 low=0, high=MAX_BLOCK_SYMBOLS, default=0)


@register
@dataclass(frozen=True)
class Rayleigh(ImpairmentSpec):
    """Rayleigh block fading, one coefficient per frame (``block`` 0) or per ``block`` complex symbols."""

    block: int = block_param()

    kind = "rayleigh"
    summary = "Rayleigh block fading (h ~ CN(0, 1)) before the AWGN"

    def fading(self) -> LinkChannel:
        from shared.fading import LinkChannel
        return LinkChannel("rayleigh", block_symbols=self.block or None)
