"""Gray-mapped square QAM on real channel symbols, and exact bit LLRs after AWGN.

The link's channel is real-valued (:mod:`shared.channel`): every real symbol has unit average
power and an SNR of S dB means noise variance 10^(-S/10) per real symbol. A square M-QAM symbol
is two real channel uses (I and Q), and Gray-mapped square M-QAM is two independent Gray-mapped
sqrt(M)-PAMs, one per real dimension. So each modulation here is a PAM *per real symbol*:

    QPSK    2-PAM {-1, +1}                   1 bit per real symbol (= BPSK on each real use)
    16-QAM  4-PAM {-3,-1,1,3} / sqrt(5)      2 bits per real symbol
    64-QAM  8-PAM {-7..7 odd} / sqrt(21)     3 bits per real symbol

The levels are scaled to unit average power per real dimension (Es = 2 per complex symbol), the
same power the semantic link puts on each of its real symbols. Bits are uint8 0/1; LLRs are
log P(b = 0 | y) / P(b = 1 | y).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

BITS_PER_REAL_SYMBOL = {"qpsk": 1, "16qam": 2, "64qam": 3}
MODULATIONS = tuple(BITS_PER_REAL_SYMBOL)


def _check(modulation: str) -> int:
    if modulation not in BITS_PER_REAL_SYMBOL:
        raise ValueError(f"unknown modulation {modulation!r}; use one of {MODULATIONS}")
    return BITS_PER_REAL_SYMBOL[modulation]


@lru_cache(maxsize=None)
def pam_constellation(modulation: str) -> tuple[np.ndarray, np.ndarray]:
    """(levels [2^b] float64 at unit mean power, bit labels [2^b, b] uint8) of the Gray PAM per real dimension.

    Level index i (amplitude 2i - (2^b - 1), ascending) carries the Gray code i ^ (i >> 1),
    most significant bit first: neighbouring levels differ in exactly one bit.
    """
    bits = _check(modulation)
    count = 1 << bits
    index = np.arange(count)
    amplitudes = (2 * index - (count - 1)).astype(np.float64)
    levels = amplitudes / np.sqrt(np.mean(amplitudes ** 2))
    gray = index ^ (index >> 1)
    labels = ((gray[:, None] >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8)
    return levels, labels


def modulate(modulation: str, bits: np.ndarray) -> np.ndarray:
    """Bits [N, b * L] (0/1) -> real symbols [N, L] float32, b bits per symbol (most significant first)."""
    per_symbol = _check(modulation)
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] % per_symbol:
        raise ValueError(f"{modulation} needs bits [N, multiple of {per_symbol}], got shape {bits.shape}")
    levels, labels = pam_constellation(modulation)
    groups = bits.reshape(bits.shape[0], -1, per_symbol).astype(np.int64)
    gray = groups @ (1 << np.arange(per_symbol - 1, -1, -1))
    index = np.empty(len(levels), dtype=np.int64)
    index[labels.astype(np.int64) @ (1 << np.arange(per_symbol - 1, -1, -1))] = np.arange(len(levels))
    return levels[index[gray]].astype(np.float32)


def bit_llrs(modulation: str, received: np.ndarray, noise_variance: float | np.ndarray) -> np.ndarray:
    """Exact (log-sum-exp) LLRs of every bit: received real symbols [N, L], noise variance per real symbol (a
    number, or one per symbol [N, L] after fading and equalisation) -> [N, b * L].

    LLR_j(y) = log sum_{x: bit_j(x)=0} exp(-(y-x)^2 / 2 sigma^2) - log sum_{x: bit_j(x)=1} exp(...).
    """
    per_symbol = _check(modulation)
    noise_variance = np.asarray(noise_variance, dtype=np.float64)
    if not (np.isfinite(noise_variance).all() and (noise_variance > 0).all()):
        raise ValueError(f"noise variance must be positive numbers, got {noise_variance!r}")
    received = np.asarray(received, dtype=np.float64)
    if received.ndim != 2:
        raise ValueError(f"expected received symbols [N, L], got shape {received.shape}")
    levels, labels = pam_constellation(modulation)
    metric = -(received[..., None] - levels) ** 2 / (2.0 * noise_variance[..., None])      # [N, L, 2^b]
    llrs = np.empty(received.shape + (per_symbol,))
    for j in range(per_symbol):
        zero, one = labels[:, j] == 0, labels[:, j] == 1
        llrs[..., j] = np.logaddexp.reduce(metric[..., zero], axis=-1) - np.logaddexp.reduce(metric[..., one], axis=-1)
    return llrs.reshape(received.shape[0], -1)
