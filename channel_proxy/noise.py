"""The symbol-level channel: AWGN at the SNR plus Gaussian noise terms given as PNRs (dB) over it.

Symbols are real, at unit average power, so an SNR of S dB is a noise variance of 10^(-S/10) per
real symbol (``shared.channel.awgn``), and a term at a perturbation-to-noise ratio of P dB (a
``jamming`` impairment) adds the variance 10^(-S/10) * 10^(P/10) -- the same as AWGN at S - P.
The proxy's data path draws the sum once (:func:`combined_noise_std`); :func:`apply_channel`
adds the terms one by one, for reference.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from shared.channel import awgn


def add_awgn(symbols: torch.Tensor, snr_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """symbols [N] (unit power) + white Gaussian noise of variance 10^(-snr_db/10)."""
    return awgn(symbols.reshape(1, -1), snr_db, generator).reshape(symbols.shape)


def add_jamming(symbols: torch.Tensor, snr_db: float, pnr_db: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """symbols [N] + Gaussian jamming of variance 10^(-snr_db/10) * 10^(pnr_db/10)."""
    return add_awgn(symbols, snr_db - pnr_db, generator)


def apply_channel(symbols: torch.Tensor, snr_db: float, jamming_pnr_db: Iterable[float] = (),
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The whole symbol-level channel: AWGN at ``snr_db``, then each jamming term."""
    out = add_awgn(symbols, snr_db, generator)
    for pnr_db in jamming_pnr_db:
        out = add_jamming(out, snr_db, pnr_db, generator)
    return out


def noise_variance(snr_db: float, jamming_pnr_db: Iterable[float] = ()) -> float:
    """Variance per real symbol of AWGN plus every jamming term: 10^(-SNR/10) (1 + sum 10^(PNR/10))."""
    return 10.0 ** (-snr_db / 10.0) * (1.0 + sum(10.0 ** (p / 10.0) for p in jamming_pnr_db))


def combined_noise_std(snr_db: float, jamming_pnr_db: Iterable[float] = ()) -> float:
    """Standard deviation of AWGN plus every jamming term, per real symbol.

    The terms are independent zero-mean Gaussians, so adding them one by one (``apply_channel``) and
    drawing once at the summed variance give the same distribution; the proxy's data path draws
    once (one random call per pilot or latent).
    """
    return math.sqrt(noise_variance(snr_db, jamming_pnr_db))


def effective_snr_db(snr_db: float, jamming_pnr_db: Iterable[float] = ()) -> float:
    """SNR (dB) counting every jamming term as noise: -10 log10(10^(-SNR/10) (1 + sum 10^(PNR/10)))."""
    return -10.0 * math.log10(noise_variance(snr_db, jamming_pnr_db))
