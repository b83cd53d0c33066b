"""The digital link of the conventional baseline: LDPC code + QAM over the real AWGN channel.

A *mode* is (modulation, code rate). For a channel budget of L real symbols per image (the
semantic link's ``channel_symbols``) and b bits per real symbol, a frame holds L b coded bits:
``codewords`` 802.16e codewords of n = 24 z bits each (as few codewords as fit z <= 96, then
the largest z), plus fewer than 24 filler bits per codeword that are sent and ignored. So every
image costs exactly L real channel uses, like the semantic link.

Sender, per image: information bits [k_total] -> LDPC encode -> frame -> bit interleaver ->
scrambler -> Gray PAM per real symbol. Receiver: exact bit LLRs (the receiver knows the noise
variance, as the semantic link's receiver knows the SNR) -> descramble -> deinterleave -> BP
decode every codeword. A frame is delivered only if every codeword's BP converged (zero
syndrome); that is the link's error detection.

Why the interleaver and scrambler: Gray 16/64-QAM bits have unequal reliability, and a random
bit interleaver spreads them over the code (bit-interleaved coded modulation). The scrambler
(a fixed pseudo-random sequence XORed on the coded bits, as 802.16e's randomiser) keeps the
transmitted levels equiprobable, so the average power per real symbol is 1 whatever the payload.
Both are fixed and known to both ends.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .modulation import BITS_PER_REAL_SYMBOL, MODULATIONS, bit_llrs, modulate
from .qc_ldpc import (BASE_COLUMNS, MAX_EXPANSION, RATES, BeliefPropagationDecoder, code_rate, encode,
                      wimax_code)

_FRAME_SEED = 0x802_16E   # seeds the fixed interleaver and scrambler (any constant both ends share)


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
    def spectral_efficiency(self) -> float:
        """Information bits per real channel use (before rounding the frame to whole codewords)."""
        return self.bits_per_real_symbol * float(code_rate(self.rate))

    @classmethod
    def parse(cls, name: str) -> "LinkMode":
        """``"16qam-3/4"`` -> LinkMode("16qam", "3/4"); ValueError naming the valid modes otherwise."""
        modulation, _, rate = str(name).partition("-")
        try:
            return cls(modulation, rate)
        except ValueError:
            raise ValueError(f"unknown link mode {name!r}; use one of {', '.join(m.name for m in MODES)}") from None


MODES = tuple(LinkMode(m, r) for m in MODULATIONS for r in RATES)


@dataclass(frozen=True)
class FramePlan:
    """How one image's budget of ``channel_symbols`` real symbols is filled in ``mode``."""

    mode: LinkMode
    channel_symbols: int
    codewords: int
    z: int

    @property
    def frame_bits(self) -> int:
        """Coded bits the budget carries: channel_symbols x bits per real symbol."""
        return self.channel_symbols * self.mode.bits_per_real_symbol

    @property
    def codeword_bits(self) -> int:
        return BASE_COLUMNS * self.z

    @property
    def info_bits_per_codeword(self) -> int:
        return wimax_code(self.mode.rate, self.z).k

    @property
    def info_bits(self) -> int:
        """Payload bits per image (what the source coder may use)."""
        return self.codewords * self.info_bits_per_codeword

    @property
    def filler_bits(self) -> int:
        """Coded-frame bits left over after whole codewords: sent (scrambled), ignored."""
        return self.frame_bits - self.codewords * self.codeword_bits

    def to_dict(self) -> dict:
        return {"mode": self.mode.name, "modulation": self.mode.modulation, "code_rate": self.mode.rate,
                "code": f"IEEE 802.16e QC-LDPC rate {self.mode.rate}, n={self.codeword_bits} (z={self.z})",
                "codewords_per_image": self.codewords, "info_bits_per_image": self.info_bits,
                "filler_bits_per_image": self.filler_bits, "real_channel_uses_per_image": self.channel_symbols}


def frame_plan(mode: LinkMode, channel_symbols: int) -> FramePlan:
    """The plan for ``mode`` at a budget of ``channel_symbols`` real symbols per image."""
    if not isinstance(channel_symbols, (int, np.integer)) or channel_symbols < 1:
        raise ValueError(f"channel_symbols must be a positive integer, got {channel_symbols!r}")
    frame_bits = channel_symbols * mode.bits_per_real_symbol
    codewords = max(1, math.ceil(frame_bits / (BASE_COLUMNS * MAX_EXPANSION)))
    z = frame_bits // (BASE_COLUMNS * codewords)
    if z < 1:
        raise ValueError(f"{channel_symbols} real symbols carry {frame_bits} bits in {mode.name}: "
                         f"too few for one {BASE_COLUMNS}-bit base codeword")
    return FramePlan(mode, int(channel_symbols), codewords, int(z))


@lru_cache(maxsize=None)
def _interleaver_and_scrambler(frame_bits: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([_FRAME_SEED, frame_bits])
    return rng.permutation(frame_bits), rng.integers(0, 2, frame_bits, dtype=np.uint8)


@lru_cache(maxsize=None)
def _decoder(rate: str, z: int) -> BeliefPropagationDecoder:
    return BeliefPropagationDecoder(rate, z)


def transmit(plan: FramePlan, info_bits: np.ndarray) -> np.ndarray:
    """Sender: payload bits [N, plan.info_bits] (0/1) -> real channel symbols [N, channel_symbols] float32.

    The symbols have unit average power per real symbol (equiprobable scrambled levels).
    """
    info_bits = np.asarray(info_bits)
    if info_bits.ndim != 2 or info_bits.shape[1] != plan.info_bits:
        raise ValueError(f"expected payload bits [N, {plan.info_bits}], got shape {info_bits.shape}")
    count = info_bits.shape[0]
    codewords = encode(plan.mode.rate, plan.z, info_bits.reshape(count * plan.codewords, -1))
    frame = np.zeros((count, plan.frame_bits), dtype=np.uint8)
    frame[:, :plan.codewords * plan.codeword_bits] = codewords.reshape(count, -1)
    permutation, scrambler = _interleaver_and_scrambler(plan.frame_bits)
    return modulate(plan.mode.modulation, frame[:, permutation] ^ scrambler)


def receive(plan: FramePlan, received: np.ndarray, noise_variance: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Receiver: noisy real symbols [N, channel_symbols] -> (payload bits [N, info_bits] uint8, delivered [N] bool).

    ``noise_variance``: per real symbol, one number or one per symbol [N, channel_symbols] (after fading).

    ``delivered`` is True when BP converged on every codeword of the frame. The bits of an
    undelivered frame are the decoder's last hard decisions (the caller should not use them).
    """
    received = np.asarray(received)
    if received.ndim != 2 or received.shape[1] != plan.channel_symbols:
        raise ValueError(f"expected received symbols [N, {plan.channel_symbols}], got shape {received.shape}")
    count = received.shape[0]
    permutation, scrambler = _interleaver_and_scrambler(plan.frame_bits)
    llrs = bit_llrs(plan.mode.modulation, received, noise_variance) * (1.0 - 2.0 * scrambler)   # descramble
    frame_llrs = np.empty_like(llrs)
    frame_llrs[:, permutation] = llrs                                                         # deinterleave
    coded = frame_llrs[:, :plan.codewords * plan.codeword_bits].reshape(count * plan.codewords, plan.codeword_bits)
    decoded, converged = _decoder(plan.mode.rate, plan.z).decode(coded)
    info = decoded[:, :plan.info_bits_per_codeword].reshape(count, plan.info_bits)
    return info, converged.reshape(count, plan.codewords).all(axis=1)
