"""``rician``: block fading with a line-of-sight term, h = sqrt(K/(K+1)) + sqrt(1/(K+1)) CN(0, 1), as
``rayleigh`` otherwise. K = 10^(k_db/10): very low K is Rayleigh, large K tends to AWGN."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..params import param
from ..registry import register
from .rayleigh import BlockFading, block_param

if TYPE_CHECKING:
    from shared.fading import LinkChannel

K_RANGE_DB = (-60.0, 60.0)


@register
@dataclass(frozen=True)
class Rician(BlockFading):
    """Rician block fading with K factor ``k_db`` (line-of-sight power over scattered power, dB)."""

    k_db: float = param("Rician K factor: line-of-sight over scattered power.", unit="dB", metavar="DB",
                        low=K_RANGE_DB[0], high=K_RANGE_DB[1])
    block: int = block_param()

    kind = "rician"
    summary = "Rician block fading (K factor in dB) before the AWGN"

    def fading(self) -> LinkChannel:
        from shared.fading import LinkChannel
        return LinkChannel("rician", k_db=self.k_db, block_symbols=self.block or None)
