"""What one sender run records: every Sync's answer, every ack, and the delivery counts."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sync:
    """One Sync's answer: the epoch and its timesteps, the SNR (dB) the receiver measured on the pilot."""

    epoch: int
    t_d: int                  # diffusing timesteps the sender uses in this epoch
    t_plus: int               # the receiver's extra denoising steps (t_P = t_D + t_plus)
    snr_db: float
    latency_ms: float         # the round trip
    at_s: float = 0.0         # when the pilot was sent: seconds since the current run() started
    frame_pilot_symbols: int = 0   # a coherent receiver's request: complex pilot symbols per block in every frame
    frame_pilot_blocks: int = 0


@dataclass
class LinkResult:
    """What came back: one ack per image (None for an image that was never acked)."""

    acks: list
    syncs: list = field(default_factory=list)
    frames_sent: int = 0                # distinct frames transmitted
    frames_resent: int = 0              # retransmissions (timeouts and reconnects)
    duplicate_acks: int = 0             # acks for frames already acked
    reconnects: int = 0
    latencies_ms: list = field(default_factory=list)   # first send -> ack, per frame
    wall_time_s: float = 0.0
    started_at: float = 0.0             # time.perf_counter() when run() started (Sync.at_s counts from it)
    error: str | None = None
    refusals: dict = field(default_factory=dict)   # reason -> refused messages (FrameError acks, bad MACs)

    def count_refusal(self, reason: str) -> None:
        self.refusals[reason] = self.refusals.get(reason, 0) + 1
