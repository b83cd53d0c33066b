"""The sender's Prometheus metrics (``diffusec-sender run --metrics HOST:PORT``; see link.metrics).

Read from the running :class:`sender.link.LinkSender` when scraped: frames sent, acked and resent,
reconnects, the SNR (dB) the receiver measured at the latest Sync; plus the Sync round trips
(seconds), which the sender observes.
"""
from __future__ import annotations

from link.metrics import SYNC_BUCKETS_S, ServiceCollector, counter, gauge, histogram


def sync_histogram():
    return histogram("diffusec_sender_sync_seconds", "Seconds per Sync round trip (pilot out, epoch back)",
                     SYNC_BUCKETS_S)


class SenderCollector(ServiceCollector):
    """Counters of the sender's current run (zero before it starts)."""

    def __init__(self, sender):
        self.sender = sender
        self.histograms = (sender.sync_seconds,)

    def samples(self):
        s = self.sender
        result = s.result
        yield counter("diffusec_sender_frames_sent", "Distinct frames transmitted", result.frames_sent if result else 0)
        yield counter("diffusec_sender_frames_acked", "Frames acked (each once)", s.acked)
        yield counter("diffusec_sender_frames_resent", "Retransmissions (presumed lost, or after a reconnect)",
                      result.frames_resent if result else 0)
        yield counter("diffusec_sender_duplicate_acks", "Acks of frames already acked",
                      result.duplicate_acks if result else 0)
        yield counter("diffusec_sender_reconnects", "Times the link was re-established", result.reconnects if result else 0)
        yield gauge("diffusec_sender_measured_snr_db", "SNR (dB) the receiver measured at the latest Sync",
                    s.last_sync.snr_db if s.last_sync else None)
