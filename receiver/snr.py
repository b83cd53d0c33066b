"""SNR estimate of the sync handshake (paper IV-C): the receiver regenerates the pilot and compares.

The pilot is a pseudo-random BPSK (+/-1) sequence of unit power, the data's power, drawn from
(session, sequence) by :func:`shared.channel.pilot_sequence`; whatever arrived differs from it by
the channel's noise (and any jamming), so SNR = P_pilot / mean((received - sent)^2), in dB.
"""
from __future__ import annotations

import torch

from shared.channel import estimate_snr_db, pilot_sequence

# A noise-free link (sender straight to receiver) measures no noise at all; report this instead
# of an unbounded number.
NOISELESS_SNR_DB = 100.0


def measure_snr_db(session: str, sequence: int, received: torch.Tensor) -> float:
    """SNR (dB) of the received pilot [N] against the pilot regenerated from (session, sequence)."""
    sent = pilot_sequence(session, sequence, received.numel())
    return min(estimate_snr_db(sent, received.reshape(-1)), NOISELESS_SNR_DB)
