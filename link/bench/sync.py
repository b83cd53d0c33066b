"""``diffusec bench sync``: the timestep-sync round trip against a bare gRPC echo of the same shape.

    sync:  bench client --Sync--> channel proxy --Sync--> receiver   (real processes, loopback)
    echo:  bench client --Sync--> relay         --Sync--> echo server (same messages, no work)

The two are measured interleaved in one run (alternating which goes first), so machine noise
hits both alike. ``ratio`` = sync p50 / echo p50 and ``p99_ratio`` = sync p99 / echo p99 say what
the sync path's own work costs on top of gRPC; the breakdown (from ``SyncReply.timing``) says
where: the receiver's whole handler, its SNR estimate, its policy, and the proxy's channel.
Times are in milliseconds (``*_ms``) or microseconds (``*_us``).
"""
from __future__ import annotations

import sys
import time
import uuid

import grpc

from protos.auth import LinkAuth
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.tls import PLAINTEXT, TlsFiles, open_channel
from protos.wire import GRPC_OPTIONS, symbols_to_bytes
from shared.channel import pilot_sequence
from shared.stats import percentile, rounded

from .. import health
from ..procs import ProcessGroup, Sink, child_env
from .common import machine

TARGETS = {"ratio": 1.25, "p99_ratio": 1.5}


def start_echo(group: ProcessGroup, host: str = "127.0.0.1", timeout_s: float = 120.0) -> str:
    """Start the echo server and its relay as children of ``group`` -> the relay's address."""
    from protos.serving import free_port

    env = child_env(1)

    def attempt() -> str:
        server, relay = f"{host}:{free_port(host)}", f"{host}:{free_port(host)}"
        group.spawn("echo", [sys.executable, "-m", "link.bench.echo", "server", "--listen", server], env=env)
        group.spawn("relay", [sys.executable, "-m", "link.bench.echo", "relay", "--listen", relay, "--upstream",
                              server], env=env)
        for address in (server, relay):
            health.wait_serving(address, timeout_s, alive=group.dead)
        return relay

    return group.start(attempt)


def measure(link: str, echo: str, n: int, pilot_length: int = 1024, warmup: int = 50, preset: str = "",
            timeout_s: float = 10.0, auth: LinkAuth | None = None, tls: TlsFiles = PLAINTEXT) -> dict:
    """``n`` interleaved Sync round trips through ``link`` (a proxy) and ``echo`` (a relay) -> the report.

    ``auth``: sign each request to ``link`` and check its reply, inside the timed interval (the sender
    times the call alone, so this counts a little more); ``tls``: TLS to ``link``. The echo is always plaintext and unsigned."""
    session = f"bench-sync-{uuid.uuid4().hex[:8]}"
    sync_ms, echo_ms, timing = [], [], {"receiver_us": [], "snr_estimate_us": [], "policy_us": [], "proxy_us": []}
    snr = []
    with open_channel(link, tls, GRPC_OPTIONS) as a, grpc.insecure_channel(echo, options=GRPC_OPTIONS) as b:
        link_stub, echo_stub = link_pb2_grpc.LinkStub(a), link_pb2_grpc.LinkStub(b)
        for k in range(warmup + n):
            # The pilot is made before the clock starts, as in the sender (sender.link.LinkSender.sync).
            request = link_pb2.SyncRequest(session=session, sequence=k, preset=preset,
                                           pilot=symbols_to_bytes(pilot_sequence(session, k, pilot_length)))
            order = ((link_stub, sync_ms), (echo_stub, echo_ms))
            for stub, out in order if k % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                reply = _sync(stub, request, timeout_s, auth if stub is link_stub else None)
                elapsed = (time.perf_counter() - start) * 1000.0
                if k < warmup:
                    continue
                out.append(elapsed)
                if stub is link_stub:
                    snr.append(reply.snr_db)
                    for key, values in timing.items():
                        values.append(getattr(reply.timing, key))
    report = {
        "n": n, "pilot_length": pilot_length, "warmup": warmup,
        "sync_p50_ms": rounded(percentile(sync_ms, 50)), "sync_p99_ms": rounded(percentile(sync_ms, 99)),
        "echo_p50_ms": rounded(percentile(echo_ms, 50)), "echo_p99_ms": rounded(percentile(echo_ms, 99)),
    }
    report["ratio"] = rounded(percentile(sync_ms, 50) / percentile(echo_ms, 50), 3)
    report["p99_ratio"] = rounded(percentile(sync_ms, 99) / percentile(echo_ms, 99), 3)
    report["breakdown"] = {f"{key[:-3]}_p50_us": rounded(percentile(values, 50), 1) for key, values in timing.items()}
    report["breakdown"]["extra_p50_us"] = rounded((percentile(sync_ms, 50) - percentile(echo_ms, 50)) * 1000.0, 1)
    report["snr_db_p50"] = rounded(percentile(snr, 50), 3)
    report["targets"] = TARGETS
    report["meets_targets"] = report["ratio"] <= TARGETS["ratio"] and report["p99_ratio"] <= TARGETS["p99_ratio"]
    return report


def _sync(stub, request: link_pb2.SyncRequest, timeout_s: float, auth: LinkAuth | None) -> link_pb2.SyncReply:
    """One Sync; with ``auth`` signed first and its reply checked (RuntimeError when the check fails)."""
    if auth is None:
        return stub.Sync(request, timeout=timeout_s)
    signed = link_pb2.SyncRequest()
    signed.CopyFrom(request)
    auth.sign_sync_request(signed)
    reply = stub.Sync(signed, timeout=timeout_s)
    if not auth.sync_reply_valid(request.session, request.sequence, reply):
        raise RuntimeError("a SyncReply failed its MAC check: is the receiver using the same link key?")
    return reply


def run(link: str, n: int, pilot_length: int = 1024, warmup: int = 50, preset: str = "",
        sink: Sink | None = None, auth: LinkAuth | None = None, tls: TlsFiles = PLAINTEXT) -> dict:
    """Start the echo baseline, measure against the Link at ``link`` (a channel proxy), stop the baseline."""
    group = ProcessGroup(sink)
    try:
        echo = start_echo(group)
        report = measure(link, echo, n, pilot_length, warmup, preset, auth=auth, tls=tls)
    finally:
        group.stop()
    return {**report, "link": link, "machine": machine()}
