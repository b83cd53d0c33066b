"""The physical channel: power normalisation, AWGN at an SNR in dB, SNR estimation from pilots.

Latents are real channel symbols, [B, L]. After :func:`normalize_power` every row has unit
average power per real symbol, so an SNR of S dB means noise variance 10^(-S/10) per symbol:
the textbook meaning (eq. 5: z_hat = z + n_c).
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch


def normalize_power(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale each row of z [B, L] to mean(z^2) = 1 (unit average power per real symbol)."""
    power = z.pow(2).mean(dim=1, keepdim=True)
    # clamp, not add: adding eps made the result depend on the scale of z when the power is small
    return z * torch.rsqrt(power.clamp_min(eps))


def noise_std(snr_db: float | torch.Tensor, signal_power: float = 1.0) -> torch.Tensor:
    """Per-symbol noise standard deviation for a given SNR (dB) and signal power."""
    snr_db = torch.as_tensor(snr_db, dtype=torch.float32)
    return torch.sqrt(signal_power / torch.pow(10.0, snr_db / 10.0))


def awgn(z: torch.Tensor, snr_db: float | torch.Tensor, generator: torch.Generator | None = None,
         signal_power: float = 1.0) -> torch.Tensor:
    """Add white Gaussian noise at ``snr_db`` (a float, or one value per row [B]) to z [B, L]."""
    std = noise_std(snr_db, signal_power).to(dtype=z.dtype, device=z.device)
    if std.ndim == 1:
        std = std.view(-1, *([1] * (z.ndim - 1)))
    device = generator.device if generator is not None else z.device
    return z + std * torch.randn(z.shape, generator=generator, dtype=z.dtype, device=device).to(z.device)


# A noise-free link (sender straight to receiver) measures no noise at all; report this instead
# of an unbounded number.
NOISELESS_SNR_DB = 100.0


def snr_db_of(signal: torch.Tensor | np.ndarray, received: torch.Tensor | np.ndarray) -> float:
    """Measured SNR (dB) of ``received`` against the known ``signal`` (same shape; tensors or arrays).

    Numpy with float64 sums: it is on the path of every Sync (a few numpy calls on ~1k values cost
    far less than torch ops), and a float32 sum of squares overflows for absurd inputs. At most
    ``NOISELESS_SNR_DB``.
    """
    s, r = (np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64).reshape(-1)
            for x in (signal, received))
    noise = r - s
    noise_power = float(np.dot(noise, noise)) / noise.size
    if noise_power <= 0.0:
        return NOISELESS_SNR_DB
    return min(10.0 * math.log10(float(np.dot(s, s)) / noise.size / noise_power), NOISELESS_SNR_DB)


def pilot_sequence(session: str, sequence: int, length: int) -> torch.Tensor:
    """A pseudo-random +/-1 (BPSK) pilot of ``length`` real symbols at unit power.

    Both ends regenerate it from (session, sequence number), so it never needs to be sent in clear.
    """
    # Hash the whole session id: seeding from its first 8 bytes made "session-1" and "session-2"
    # (any ids sharing an 8-byte prefix) use identical pilots.
    digest = hashlib.blake2b(f"{session}\0{sequence}".encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.randint(0, 2, (length,), generator=generator).float().mul_(2).sub_(1)


def estimate_snr_db(pilot_sent: torch.Tensor, pilot_received: torch.Tensor) -> float:
    """Data-aided SNR estimate: known pilot symbols vs what arrived (dB)."""
    return snr_db_of(pilot_sent, pilot_received)
