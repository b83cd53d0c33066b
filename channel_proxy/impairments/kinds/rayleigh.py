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
# shared.pilot_aided.SYNC_CHUNK_SYMBOLS (kept torch-free here; a test checks they agree): the coherent
# receiver fits one gain per 16 complex Sync-pilot symbols, so a fading block must not end inside one.
SYNC_CHUNK_SYMBOLS = 16


def check_block(kind: str, block: int) -> None:
    """ValueError unless ``block`` is 0 (one coefficient per frame) or a multiple of SYNC_CHUNK_SYMBOLS."""
    if block % SYNC_CHUNK_SYMBOLS:
        raise ValueError(f"{kind} block must be 0 (one coefficient per frame) or a multiple of {SYNC_CHUNK_SYMBOLS} "
                         f"complex symbols (the coherent receiver fits one gain per {SYNC_CHUNK_SYMBOLS} Sync-pilot "
                         f"symbols), got {block}")


def block_param():
    """The coherence block of the fading kinds."""
    return param("complex symbols per fading coefficient, a multiple of 16; 0: one coefficient per frame.", metavar="N",
                 low=0, high=MAX_BLOCK_SYMBOLS, default=0)


class BlockFading(ImpairmentSpec):
    """What the fading kinds share: their ``block`` (checked by :func:`check_block`)."""

    block: int

    def check(self):
        super().check()
        check_block(self.kind, self.block)
        return self


@register
@dataclass(frozen=True)
class Rayleigh(BlockFading):
    """Rayleigh block fading, one coefficient per frame (``block`` 0) or per ``block`` complex symbols."""

    block: int = block_param()

    kind = "rayleigh"
    summary = "Rayleigh block fading (h ~ CN(0, 1)) before the AWGN"

    def fading(self) -> LinkChannel:
        from shared.fading import LinkChannel
        return LinkChannel("rayleigh", block_symbols=self.block or None)
