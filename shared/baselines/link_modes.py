"""The digital link's modes: a Gray QAM order and an LDPC code rate, e.g. ``16qam-3/4``.

A square M-QAM symbol is two real channel uses (I and Q), so a modulation is counted in bits per
*real* symbol, the unit of the semantic link's budget: QPSK 1, 16-QAM 2, 64-QAM 3 (BPSK on each
real use is QPSK, so it is not listed apart). Rates are the nominal k / n of the LDPC code.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

BITS_PER_REAL_SYMBOL = {"qpsk": 1, "16qam": 2, "64qam": 3}
MODULATIONS = tuple(BITS_PER_REAL_SYMBOL)
RATES = ("1/2", "2/3", "3/4", "5/6")


@dataclass(frozen=True)
class LinkMode:
    """A modulation and LDPC code rate, e.g. ``LinkMode("16qam", "3/4")`` (name ``"16qam-3/4"``)."""

    modulation: str
    rate: str

    def __post_init__(self) -> None:
        if self.modulation not in MODULATIONS:
            raise ValueError(f"unknown modulation {self.modulation!r}; use one of {MODULATIONS}")
        if self.rate not in RATES:
            raise ValueError(f"unknown LDPC code rate {self.rate!r}; use one of {RATES}")

    @property
    def name(self) -> str:
        return f"{self.modulation}-{self.rate}"

    @property
    def bits_per_real_symbol(self) -> int:
        return BITS_PER_REAL_SYMBOL[self.modulation]

    @property
    def code_rate(self) -> Fraction:
        return Fraction(self.rate)

    @property
    def spectral_efficiency(self) -> float:
        """Information bits per real channel use (nominal: before the CRC and rounding)."""
        return self.bits_per_real_symbol * float(self.code_rate)

    @classmethod
    def parse(cls, name: str) -> "LinkMode":
        """``"16qam-3/4"`` -> LinkMode("16qam", "3/4"); ValueError naming the valid modes otherwise."""
        modulation, _, rate = str(name).partition("-")
        try:
            return cls(modulation, rate)
        except ValueError:
            raise ValueError(f"unknown link mode {name!r}; use one of {', '.join(m.name for m in MODES)}") from None


MODES = tuple(LinkMode(m, r) for m in MODULATIONS for r in RATES)
