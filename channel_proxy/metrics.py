"""The channel proxy's Prometheus metrics (``diffusec-proxy serve --metrics HOST:PORT``; see link.metrics).

Counters and the channel's state are read from :class:`channel_proxy.state.ChannelState` when
scraped; the forwarder observes the Sync round trip through it to the receiver (seconds).
"""
from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from link.metrics import SYNC_BUCKETS_S, ServiceCollector, counter, gauge, histogram

from .impairments import names as kind_names

# Counters of ChannelState.counters -> their help text.
COUNTERS = {
    "frames_in": "Frames that came in from senders",
    "frames_forwarded": "Frames passed on to the receiver",
    "frames_dropped": "Frames lost to a `drop` impairment",
    "frames_jammed": "Frames that had `jamming` added",
    "frames_attacked": "Frames that had an `adversarial` perturbation added",
    "syncs_forwarded": "Sync handshakes relayed",
    "acks_returned": "Acks relayed back to senders",
}


def sync_histogram():
    """Seconds from a Sync's arrival to the receiver's reply (the upstream round trip and the channel)."""
    return histogram("diffusec_proxy_sync_seconds", "Seconds to relay one Sync through the channel to the "
                     "receiver and back", SYNC_BUCKETS_S)


class ProxyCollector(ServiceCollector):
    """Frame counters, the set and effective SNR, and the active impairments by kind."""

    def __init__(self, state, sync_seconds):
        self.state = state
        self.histograms = (sync_seconds,)

    def samples(self):
        stats = self.state.stats()
        for key, text in COUNTERS.items():
            yield counter(f"diffusec_proxy_{key}", text, stats[key])
        yield gauge("diffusec_proxy_snr_db", "AWGN SNR (dB) set now (or scheduled)", stats["snr_db"])
        yield gauge("diffusec_proxy_effective_snr_db", "SINR (dB) with every `jamming` impairment counted",
                    stats["effective_snr_db"])
        yield gauge("diffusec_proxy_attack_pnr_db", "Mean PNR (dB) achieved on attacked frames",
                    stats["attack_pnr_db"])
        active = GaugeMetricFamily("diffusec_proxy_impairments_active", "Impairments on now, by kind",
                                   labels=["kind"])
        kinds = [item.spec.kind for item in self.state.list()]
        for kind in kind_names():
            active.add_metric([kind], kinds.count(kind))
        yield active
