"""Quasi-cyclic LDPC codes of IEEE 802.16e (WiMAX), systematic encoding and belief-propagation decoding.

A code is a 24-column base matrix (IEEE Std 802.16e-2005, section 8.4.9.2.5) lifted by an
expansion factor z: every entry p >= 0 becomes the z x z identity cyclically shifted right by
p(z), every -1 a zero block, so the parity-check matrix H has 24 z columns (code bits) and
(24 - k_b) z rows. The standard defines z = 24..96 (n = 576..2304 bits); the same shift rule
lifts any z >= 1, which is how the short codes of the 28 x 28 presets are built (see
``docs/baselines.md``).

Bits are numpy uint8 arrays of 0/1. Log-likelihood ratios (LLRs) are float64,
LLR = log P(bit = 0 | y) / P(bit = 1 | y), so a positive LLR favours 0.

Decoding is soft belief propagation (sum-product, flooding schedule) from the ``ldpc`` package
(J. Roffe, C++ core). Its :class:`ldpc.BpDecoder` decodes an *error pattern* e from a syndrome
s = H y with per-bit priors P(e_i = 1); with y the hard decisions of the channel LLRs and
P(e_i = 1) = 1 / (1 + exp|LLR_i|), that is exactly soft BP on the codeword (c = y xor e), the
standard equivalence for linear codes over a binary-input symmetric channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
import scipy.sparse

# Base matrices of IEEE Std 802.16e-2005 (8.4.9.2.5), defined for z0 = 96. The last 24 - k_b
# columns are the parity part: a weight-3 column (shifts x, 0, x) and a dual diagonal, which
# makes the parity part invertible for every z, so the first k_b z bits are the systematic ones.
_BASE_MATRICES: dict[str, list[list[int]]] = {
    "1/2": [
        [-1, 94, 73, -1, -1, -1, -1, -1, 55, 83, -1, -1, 7, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1],
        [-1, 27, -1, -1, -1, 22, 79, 9, -1, -1, -1, 12, -1, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1, -1],
        [-1, -1, -1, 24, 22, 81, -1, 33, -1, -1, -1, 0, -1, -1, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1],
        [61, -1, 47, -1, -1, -1, -1, -1, 65, 25, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, -1, -1, -1],
        [-1, -1, 39, -1, -1, -1, 84, -1, -1, 41, 72, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, -1, -1],
        [-1, -1, -1, -1, 46, 40, -1, 82, -1, -1, -1, 79, 0, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1, -1],
        [-1, -1, 95, 53, -1, -1, -1, -1, -1, 14, 18, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1, -1],
        [-1, 11, 73, -1, -1, -1, 2, -1, -1, 47, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1, -1, -1],
        [12, -1, -1, -1, 83, 24, -1, 43, -1, -1, -1, 51, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1, -1],
        [-1, -1, -1, -1, -1, 94, -1, 59, -1, -1, 70, 72, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, -1],
        [-1, -1, 7, 65, -1, -1, -1, -1, 39, 49, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0],
        [43, -1, -1, -1, -1, 66, -1, 41, -1, -1, -1, 26, 7, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0],
    ],
    "2/3": [  # code "A"
        [3, 0, -1, -1, 2, 0, -1, 3, 7, -1, 1, 1, -1, -1, -1, -1, 1, 0, -1, -1, -1, -1, -1, -1],
        [-1, -1, 1, -1, 36, -1, -1, 34, 10, -1, -1, 18, 2, -1, 3, 0, -1, 0, 0, -1, -1, -1, -1, -1],
        [-1, -1, 12, 2, -1, 15, -1, 40, -1, 3, -1, 15, -1, 2, 13, -1, -1, -1, 0, 0, -1, -1, -1, -1],
        [-1, -1, 19, 24, -1, 3, 0, -1, 6, -1, 17, -1, -1, -1, 8, 39, -1, -1, -1, 0, 0, -1, -1, -1],
        [20, -1, 6, -1, -1, 10, 29, -1, -1, 28, -1, 14, -1, 38, -1, -1, 0, -1, -1, -1, 0, 0, -1, -1],
        [-1, -1, 10, -1, 28, 20, -1, -1, 8, -1, 36, -1, 9, -1, 21, 45, -1, -1, -1, -1, -1, 0, 0, -1],
        [35, 25, -1, 37, -1, 21, -1, -1, 5, -1, -1, 0, -1, 4, 20, -1, -1, -1, -1, -1, -1, -1, 0, 0],
        [-1, 6, 6, -1, -1, -1, 4, -1, 14, 30, -1, 3, 36, -1, 14, -1, 1, -1, -1, -1, -1, -1, -1, 0],
    ],
    "3/4": [  # code "A"
        [6, 38, 3, 93, -1, -1, -1, 30, 70, -1, 86, -1, 37, 38, 4, 11, -1, 46, 48, 0, -1, -1, -1, -1],
        [62, 94, 19, 84, -1, 92, 78, -1, 15, -1, -1, 92, -1, 45, 24, 32, 30, -1, -1, 0, 0, -1, -1, -1],
        [71, -1, 55, -1, 12, 66, 45, 79, -1, 78, -1, -1, 10, -1, 22, 55, 70, 82, -1, -1, 0, 0, -1, -1],
        [38, 61, -1, 66, 9, 73, 47, 64, -1, 39, 61, 43, -1, -1, -1, -1, 95, 32, 0, -1, -1, 0, 0, -1],
        [-1, -1, -1, -1, 32, 52, 55, 80, 95, 22, 6, 51, 24, 90, 44, 20, -1, -1, -1, -1, -1, -1, 0, 0],
        [-1, 63, 31, 88, 20, -1, -1, -1, 6, 40, 56, 16, 71, 53, -1, -1, 27, 26, 48, -1, -1, -1, -1, 0],
    ],
    "5/6": [
        [1, 25, 55, -1, 47, 4, -1, 91, 84, 8, 86, 52, 82, 33, 5, 0, 36, 20, 4, 77, 80, 0, -1, -1],
        [-1, 6, -1, 36, 40, 47, 12, 79, 47, -1, 41, 21, 12, 71, 14, 72, 0, 44, 49, 0, 0, 0, 0, -1],
        [51, 81, 83, 4, 67, -1, 21, -1, 31, 24, 91, 61, 81, 9, 86, 78, 60, 88, 67, 15, -1, -1, 0, 0],
        [50, -1, 50, 15, -1, 36, 13, 10, 11, 20, 53, 90, 29, 92, 57, 30, 84, 92, 11, 66, 80, -1, -1, 0],
    ],
}
RATES = tuple(_BASE_MATRICES)           # ("1/2", "2/3", "3/4", "5/6")
BASE_COLUMNS = 24
MAX_EXPANSION = 96                      # the standard's largest z (n = 2304)
BP_MAX_ITERATIONS = 50                  # a common cap; iterations stop early once the syndrome is met
LLR_CLIP = 30.0                         # |LLR| cap: P(error) = 1e-13 is "certain" and keeps the priors finite


def lifted_shift(rate: str, p: int, z: int) -> int:
    """The shift of base entry ``p`` (>= 0) at expansion ``z``: 802.16e's scaling rule.

    Rate 2/3 code A uses p mod z; the other codes scale the z0 = 96 shifts, floor(p z / 96).
    """
    return p % z if rate == "2/3" else (p * z) // MAX_EXPANSION


@dataclass(frozen=True)
class QcLdpcCode:
    """One lifted code: parity-check matrix ``H`` [m, n] (sparse, 0/1) with k = n - m systematic bits first."""

    rate: str
    z: int
    H: scipy.sparse.csr_matrix

    @property
    def n(self) -> int:
        """Code bits per codeword."""
        return self.H.shape[1]

    @property
    def m(self) -> int:
        """Parity checks (= parity bits)."""
        return self.H.shape[0]

    @property
    def k(self) -> int:
        """Information bits per codeword."""
        return self.n - self.m


@lru_cache(maxsize=None)
def wimax_code(rate: str, z: int) -> QcLdpcCode:
    """The 802.16e code of ``rate`` ("1/2", "2/3", "3/4", "5/6") lifted by ``z`` (n = 24 z bits)."""
    if rate not in _BASE_MATRICES:
        raise ValueError(f"unknown LDPC code rate {rate!r}; use one of {RATES}")
    if not isinstance(z, (int, np.integer)) or z < 1:
        raise ValueError(f"the expansion factor z must be a positive integer, got {z!r}")
    base = np.array(_BASE_MATRICES[rate])
    rows, cols, identity = [], [], np.arange(z)
    for i, j in zip(*np.nonzero(base >= 0)):
        shift = lifted_shift(rate, int(base[i, j]), z)
        rows.append(i * z + identity)
        cols.append(j * z + (identity + shift) % z)     # row r of the block has its 1 in column r + shift
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    H = scipy.sparse.csr_matrix((np.ones(len(rows), dtype=np.uint8), (rows, cols)),
                                shape=(base.shape[0] * z, BASE_COLUMNS * z))
    # Two base entries can never share a block, but check the lift produced a 0/1 matrix anyway.
    if H.max() > 1:
        raise AssertionError(f"lifting rate {rate} at z={z} produced repeated entries")
    return QcLdpcCode(rate, int(z), H)


@lru_cache(maxsize=None)
def parity_generator(rate: str, z: int) -> np.ndarray:
    """A = H_p^-1 H_u over GF(2), [m, k] uint8: the parity bits of information bits u are A u (mod 2)."""
    from ldpc.mod2 import inverse, rank

    code = wimax_code(rate, z)
    dense = code.H.toarray().astype(np.uint8)
    h_u, h_p = dense[:, :code.k], dense[:, code.k:]
    if rank(h_p) != code.m:
        raise ValueError(f"rate {rate} at z={z}: the parity part of H is singular; no systematic encoder")
    # float32 products are exact here (sums of at most m <= 1152 ones) and run on BLAS.
    product = np.asarray(inverse(h_p), dtype=np.float32) @ h_u.astype(np.float32)
    return (product.astype(np.int64) % 2).astype(np.uint8)


def encode(rate: str, z: int, info_bits: np.ndarray) -> np.ndarray:
    """Systematic encoding: info bits [N, k] (0/1) -> codewords [N, n] = [u | A u mod 2] (uint8)."""
    code = wimax_code(rate, z)
    info_bits = np.asarray(info_bits)
    if info_bits.ndim != 2 or info_bits.shape[1] != code.k:
        raise ValueError(f"expected information bits [N, {code.k}], got shape {info_bits.shape}")
    # float32 matmul is exact here (sums of at most k <= 2304 ones) and uses BLAS.
    parity = (info_bits.astype(np.float32) @ parity_generator(rate, z).T.astype(np.float32)).astype(np.int64) % 2
    return np.concatenate([info_bits.astype(np.uint8), parity.astype(np.uint8)], axis=1)


def syndrome(rate: str, z: int, bits: np.ndarray) -> np.ndarray:
    """H c mod 2 for words [N, n] -> [N, m] (all zero for codewords)."""
    code = wimax_code(rate, z)
    return (code.H @ np.asarray(bits, dtype=np.int64).T).T % 2


class BeliefPropagationDecoder:
    """Sum-product BP for one code (an :class:`ldpc.BpDecoder`, reused across codewords).

    ``decode(llrs [N, n]) -> (codewords [N, n] uint8, converged [N] bool)``. A codeword counts
    as decoded only when BP converged, i.e. its estimate satisfies every parity check; otherwise
    the hard decisions are returned and ``converged`` is False.
    """

    def __init__(self, rate: str, z: int, max_iterations: int = BP_MAX_ITERATIONS):
        from ldpc import BpDecoder

        self.code = wimax_code(rate, z)
        # error_rate is only the initial prior; every decode replaces the priors from the LLRs.
        self._bp = BpDecoder(self.code.H, error_rate=0.1, max_iter=max_iterations, bp_method="product_sum",
                             schedule="parallel", input_vector_type="syndrome", random_schedule_seed=1)

    def decode(self, llrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        llrs = np.asarray(llrs, dtype=np.float64)
        if llrs.ndim != 2 or llrs.shape[1] != self.code.n:
            raise ValueError(f"expected LLRs [N, {self.code.n}], got shape {llrs.shape}")
        if not np.isfinite(llrs).all():
            raise ValueError("LLRs must be finite")
        hard = (llrs < 0).astype(np.uint8)
        flip_prob = 1.0 / (1.0 + np.exp(np.minimum(np.abs(llrs), LLR_CLIP)))
        syndromes = syndrome(self.code.rate, self.code.z, hard).astype(np.uint8)
        out = hard.copy()
        converged = np.ones(len(llrs), dtype=bool)
        for i in np.nonzero(syndromes.any(axis=1))[0]:      # a zero syndrome is already a codeword
            self._bp.update_channel_probs(flip_prob[i])
            error = self._bp.decode(syndromes[i])
            converged[i] = bool(self._bp.converge)
            if converged[i]:
                out[i] ^= error.astype(np.uint8)
        return out, converged


def code_rate(rate: str) -> Fraction:
    """"3/4" -> Fraction(3, 4) (the nominal rate k / n)."""
    if rate not in _BASE_MATRICES:
        raise ValueError(f"unknown LDPC code rate {rate!r}; use one of {RATES}")
    return Fraction(rate)
