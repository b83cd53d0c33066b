"""The coherent receiver: it asks every frame for a pilot, equalises fading before decoding, and measures
the average SNR under fading (``diffusec-receiver --equaliser zf|mmse``; shared/pilot_aided.py).

Without it (``--equaliser none``, the default) the receiver is the AWGN one: no frame pilot, the SNR
as :func:`shared.channel.snr_db_of`, latents decoded as they arrive -- today's link bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from protos.wire import MAX_SYMBOL_AMPLITUDE, bytes_to_array
from shared.pilot_aided import (SYNC_CHUNK_SYMBOLS, check_frame_pilot, coherent_snr_db, equalise_frame,
                                estimate_frame_channel, frame_pilot)

from .errors import invalid

EQUALISERS = ("none", "zf", "mmse")


@dataclass(frozen=True)
class CoherentReception:
    """Pilot-aided equalisation: what the receiver asks of the sender's frames, and how it reads them."""

    equaliser: str = "zf"     # zf: y / h (the default, docs/fading.md says why); mmse: conj(h) y / (|h|^2 + 1/SNR)
    pilot_symbols: int = 8    # complex pilot symbols per block, in every frame (>= 2: the SNR needs a residual)
    pilot_blocks: int = 1     # pilot blocks per frame; block k serves the latent's k-th equal share

    def __post_init__(self) -> None:
        if self.equaliser not in EQUALISERS[1:]:
            raise ValueError(f"equaliser must be one of {EQUALISERS[1:]}, got {self.equaliser!r}")
        check_frame_pilot(self.pilot_symbols, self.pilot_blocks)

    def sync_snr_db(self, sent: np.ndarray, received: np.ndarray) -> float:
        """The average SNR (dB) of a Sync pilot [N] real: one gain fitted per SYNC_CHUNK_SYMBOLS complex symbols."""
        try:
            return coherent_snr_db(torch.from_numpy(np.asarray(sent, np.float32)),
                                   torch.from_numpy(np.array(received, np.float32)))
        except ValueError as err:
            raise invalid("BAD_PILOT_LENGTH", f"{err}; a coherent receiver needs Sync pilots of at least "
                                              f"{2 * SYNC_CHUNK_SYMBOLS} symbols") from None

    def equalise(self, frame_id: int, pilot: bytes, pilot_blocks: int,
                 z_hat: torch.Tensor) -> torch.Tensor:
        """The received latent z_hat [L] equalised with the channel estimated from the frame's ``pilot``.

        LinkError BAD_PILOT when the frame has no pilot, or not the blocks and length the SyncReply asked for.
        """
        expected = 2 * self.pilot_symbols * self.pilot_blocks
        if pilot_blocks != self.pilot_blocks or len(pilot) != 4 * expected:
            raise invalid("BAD_PILOT", f"frame {frame_id} has a pilot of {len(pilot) // 4} real symbols in {pilot_blocks} "
                                       f"block(s); this coherent receiver asked (in the SyncReply) for {expected} in "
                                       f"{self.pilot_blocks}")
        received = torch.from_numpy(bytes_to_array(pilot).copy())
        if not torch.isfinite(received).all() or received.abs().max() > MAX_SYMBOL_AMPLITUDE:
            raise invalid("BAD_PILOT", f"frame {frame_id}'s pilot holds a non-finite value or one beyond "
                                       f"{MAX_SYMBOL_AMPLITUDE:g}")
        sent = frame_pilot(frame_id, self.pilot_symbols, self.pilot_blocks)
        h, snr_db = estimate_frame_channel(received, sent)
        if not bool((h.abs() > 0).all()):
            raise invalid("BAD_PILOT", f"a block of frame {frame_id}'s pilot came back all zero: nothing to equalise with")
        return equalise_frame(z_hat, h, snr_db, self.equaliser)
