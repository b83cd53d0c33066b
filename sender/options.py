"""How the sender runs: one dataclass, whose defaults `diffusec-sender run --help` shows (no torch here)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SenderOptions:
    """How the sender runs; times in seconds."""

    preset: str = "cifar10"
    session: str = ""                   # default: a fresh random id
    sync_every: int = 0                 # re-sync after this many new frames (0: only at the start)
    pilot_length: int = 1024            # pilot symbols per sync (unit power, like the data)
    window: int = 64                    # most unacknowledged frames in flight (2 x the receiver's max batch)
    batch: int = 32                     # images diffused+encoded together
    ack_timeout_s: float = 5.0          # least time before a frame is sent again
    sync_timeout_s: float = 10.0
    retry_timeout_s: float = 60.0       # give up after the peer was unreachable this long
    evaluation: bool = True             # send labels (if known); acks carry the purified image
    seed: int = 0
