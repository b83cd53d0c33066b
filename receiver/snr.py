"""SNR estimate of the sync handshake (paper IV-C): the receiver regenerates the pilot and compares.

The pilot is a pseudo-random BPSK (+/-1) sequence of unit power, the data's power, drawn from
(session, sequence) by :func:`shared.channel.pilot_sequence`; whatever arrived differs from it by
the channel's noise (and any jamming), so SNR = P_pilot / mean((received - sent)^2), in dB.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from shared.channel import pilot_sequence

# A noise-free link (sender straight to receiver) measures no noise at all; report this instead
# of an unbounded number.
NOISELESS_SNR_DB = 100.0


def measure_snr_db(session: str, sequence: int, received: torch.Tensor | np.ndarray) -> float:
    """SNR (dB) of the received pilot [N] against the pilot regenerated from (session, sequence).

    The same estimate as :func:`shared.channel.estimate_snr_db`, computed in numpy: it is on
    the path of every Sync, and a few numpy calls on ~1k floats cost far less than torch ops.
    """
    r = received.detach().cpu().numpy() if isinstance(received, torch.Tensor) else np.asarray(received)
    r = r.reshape(-1)
    sent = pilot_sequence(session, sequence, r.shape[0]).numpy()
    noise = r - sent
    noise_power = float(np.dot(noise, noise)) / r.shape[0]
    signal_power = float(np.dot(sent, sent)) / r.shape[0]
    if noise_power <= 0.0:
        return NOISELESS_SNR_DB
    return min(10.0 * math.log10(signal_power / noise_power), NOISELESS_SNR_DB)
