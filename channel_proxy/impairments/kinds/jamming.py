"""``jamming``: Gaussian noise on every latent and pilot symbol, at a perturbation-to-noise ratio
(PNR, dB) above the channel's AWGN power: variance 10^(-SNR/10) * 10^(PNR/10), the same as AWGN at
SNR - PNR. The channel state draws it with the AWGN in one go (:func:`channel_proxy.noise.combined_noise_std`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import ImpairmentSpec
from ..params import param
from ..registry import register

# The strongest jammer is 60 dB above the noise: protos.wire.MAX_SYMBOL_AMPLITUDE leaves room for
# it at the lowest SNR (tests/test_link_units.py checks the margin).
PNR_RANGE_DB = (-60.0, 60.0)


def pnr_db_param():
    """The PNR field of the kinds measured against the AWGN power (jamming, and adversarial as its rival)."""
    return param("perturbation-to-noise ratio, dB above the channel's AWGN power.", unit="dB", metavar="DB",
                 low=PNR_RANGE_DB[0], high=PNR_RANGE_DB[1])


@register
@dataclass(frozen=True)
class Jamming(ImpairmentSpec):
    """Gaussian jamming at ``pnr_db`` (dB above the channel's noise power)."""

    pnr_db: float = pnr_db_param()

    kind = "jamming"
    summary = "Gaussian jamming on every latent and pilot symbol"

    def noise_pnr_db(self) -> float:
        return self.pnr_db
