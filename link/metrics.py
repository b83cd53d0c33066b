"""Prometheus metrics of the link services: ``--metrics HOST:PORT`` on the receiver, proxy and sender.

Each service hands :func:`serve` one collector that reads its own counters when scraped (so the
frame path does no extra work for them) and yields its latency histograms, which the service
observes as it goes. The endpoint is plain HTTP (``GET /metrics``, the Prometheus text format)
served by ``prometheus_client`` on a thread of its own; it also carries the process's CPU seconds
and memory. Names start with ``diffusec_<service>_``; times are in seconds, SNRs in dB.
"""
from __future__ import annotations

from typing import Iterable

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

# Seconds. One micro-batch's stage runs from milliseconds (decode, classify) to tens of seconds
# (purify at t_P = 100 on a loaded 2-core machine).
STAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds. A Sync round trip is about a millisecond on loopback, tens of ms through `delay`.
SYNC_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class MetricsAddressError(ValueError):
    """A ``--metrics`` address that is not host:port, or one that cannot be bound."""


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); port 0 picks a free one. MetricsAddressError with an example."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise MetricsAddressError(f"--metrics {address!r}: expected host:port with a port in 0..65535 "
                                  f"(e.g. 127.0.0.1:9101; port 0 picks a free one)")
    return host.strip("[]"), int(port)


def check_option(ctx, param, value: str | None) -> str | None:
    """click callback for ``--metrics``: a malformed address is a usage error before any model loads."""
    if value is not None:
        import click

        try:
            parse_address(value)
        except MetricsAddressError as err:
            raise click.BadParameter(str(err).split(": ", 1)[1]) from None
    return value


def histogram(name: str, documentation: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> Histogram:
    """A histogram in no registry: its service's collector yields it (see :class:`ServiceCollector`)."""
    return Histogram(name, documentation, labels, buckets=buckets, registry=None)


def counter(name: str, documentation: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    """One counter sample read from a service's own tally (``name`` without ``_total``)."""
    family = CounterMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def gauge(name: str, documentation: str, value: float | None) -> Metric | None:
    """One gauge sample; None (no sample) while the value is unknown, e.g. before the first Sync."""
    if value is None:
        return None
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


class ServiceCollector(Collector):
    """Base of the services' collectors: ``samples()`` yields metrics (None entries are skipped),
    and ``histograms`` are collected as they are."""

    histograms: tuple[Histogram, ...] = ()

    def samples(self) -> Iterable[Metric | None]:
        raise NotImplementedError

    def collect(self) -> Iterable[Metric]:
        for metric in self.samples():
            if metric is not None:
                yield metric
        for item in self.histograms:
            yield from item.collect()


def serve(address: str, collector: Collector):
    """Serve ``collector`` (and this process's CPU and memory) on ``address`` -> (http server, port).

    MetricsAddressError when the address is malformed or cannot be bound (in use, not local).
    """
    host, port = parse_address(address)
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(registry=registry)
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as err:
        raise MetricsAddressError(f"--metrics {address}: cannot listen there ({err.strerror or err}); "
                                  f"pick a free port of an address of this machine") from None
    return server, server.server_port
