"""SNR estimate of the sync handshake (paper IV-C): the receiver regenerates the pilot and compares.

The pilot is a pseudo-random BPSK (+/-1) sequence of unit power, the data's power, drawn from
(session, sequence) by :func:`shared.channel.pilot_sequence`; whatever arrived differs from it by
the channel's noise (and any jamming), so SNR = P_pilot / mean((received - sent)^2), in dB.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import torch

from shared.channel import NOISELESS_SNR_DB, pilot_sequence, snr_db_of  # noqa: F401 - re-exported



class PilotCache:
    """Pilots regenerated ahead of need (float32 numpy [N]), keyed by (session, sequence, N).

    Regenerating a pilot (a seeded torch generator) is most of the work of a Sync. Senders number
    their syncs 0, 1, 2, ...; so after answering sequence k the receiver makes the pilot of k + 1
    (:meth:`prefetch`, off the reply's path) and the next Sync finds it here. A miss regenerates it
    on the spot. Thread-safe; holds at most ``size`` pilots (oldest dropped first).
    """

    def __init__(self, size: int = 1024):
        self.size = size
        self.hits = self.misses = 0
        self._pilots: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def take(self, session: str, sequence: int, length: int) -> np.ndarray:
        """The pilot of (session, sequence), removed from the cache (a sequence is used once)."""
        with self._lock:
            pilot = self._pilots.pop((session, sequence, length), None)
            if pilot is not None:
                self.hits += 1
                return pilot
            self.misses += 1
        return pilot_sequence(session, sequence, length).numpy()

    def prefetch(self, session: str, sequence: int, length: int) -> None:
        key = (session, sequence, length)
        with self._lock:
            if key in self._pilots:
                return
        pilot = pilot_sequence(session, sequence, length).numpy()
        with self._lock:
            self._pilots[key] = pilot
            while len(self._pilots) > self.size:
                self._pilots.popitem(last=False)


def measure_snr_db(session: str, sequence: int, received: torch.Tensor | np.ndarray,
                   pilots: PilotCache | None = None, estimator=None) -> float:
    """SNR (dB) of the received pilot [N] against the pilot regenerated from (session, sequence).

    ``estimator(sent, received)``, by default :func:`shared.channel.snr_db_of` (the AWGN receiver; a
    coherent one passes its own); ``pilots`` may hold the regenerated pilot already (see :class:`PilotCache`).
    """
    length = int(np.prod(received.shape))
    sent = pilots.take(session, sequence, length) if pilots is not None else \
        pilot_sequence(session, sequence, length).numpy()
    return (estimator or snr_db_of)(sent, received)
