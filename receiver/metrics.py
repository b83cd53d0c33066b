"""The receiver's Prometheus metrics (``diffusec-receiver serve --metrics HOST:PORT``; see link.metrics).

Counters are read from the engine when scraped; the stage and sync histograms are observed by the
engine itself (seconds per micro-batch stage, seconds per Sync handler); SNR in dB.
"""
from __future__ import annotations

from link.metrics import STAGE_BUCKETS_S, SYNC_BUCKETS_S, ServiceCollector, counter, gauge, histogram

STAGES = ("decode", "purify", "classify")


class ReceiverTimings:
    """Histograms the engine observes: per-batch stage seconds and per-Sync handler seconds."""

    def __init__(self):
        self.stage = histogram("diffusec_receiver_stage_seconds",
                               "Seconds one micro-batch spent in a stage (decode, purify, classify)",
                               STAGE_BUCKETS_S, ("stage",))
        self.batch_frames = histogram("diffusec_receiver_batch_frames", "Frames per micro-batch",
                                      (1, 2, 4, 8, 16, 24, 32, 48, 64, 128))
        self.sync = histogram("diffusec_receiver_sync_seconds",
                              "Seconds in the Sync handler (pilot check, SNR estimate, policy)", SYNC_BUCKETS_S)


class ReceiverCollector(ServiceCollector):
    """Frame counters, the last measured SNR and the engine's histograms."""

    def __init__(self, receiver):
        self.receiver = receiver
        self.histograms = (receiver.timings.stage, receiver.timings.batch_frames, receiver.timings.sync)

    def samples(self):
        r = self.receiver
        yield counter("diffusec_receiver_frames_received", "Frames that arrived and passed validation "
                      "(duplicates included)", r.frames_received)
        yield counter("diffusec_receiver_frames_acked", "Frames decoded, purified, classified and answered",
                      r.frames_processed)
        yield counter("diffusec_receiver_frames_duplicate", "Resent frames answered from the ack store",
                      r.duplicates)
        yield counter("diffusec_receiver_frames_rejected", "Frames refused as bad input (INVALID_ARGUMENT etc.)",
                      r.frames_rejected)
        yield counter("diffusec_receiver_syncs", "Sync handshakes answered", r.syncs)
        yield counter("diffusec_receiver_batches", "Micro-batches run", r.batcher.batches)
        yield gauge("diffusec_receiver_measured_snr_db", "SNR (dB) measured on the latest Sync's pilot",
                    r.last_snr_db)
