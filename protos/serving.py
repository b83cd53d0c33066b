"""Starting a gRPC server: its options, binding a port (with a clear error), the health service.

The receiver, the channel proxy and the echo bench serve the same way; addresses are ``host:port``
strings (``127.0.0.1:50051``; port 0 picks a free one). What travels on the wire is :mod:`protos.wire`.
"""
from __future__ import annotations

import errno
import random
import socket
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .wire import GRPC_OPTIONS

# Servers also refuse a port that another process holds: gRPC's default SO_REUSEPORT would let a
# second receiver or proxy bind the same port and silently share its traffic.
SERVER_OPTIONS = [*GRPC_OPTIONS, ("grpc.so_reuseport", 0)]


# In :func:`bind`'s error, which a service prints when it exits; link.procs.ProcessGroup.start looks for it.
PORT_IN_USE = "the port is in use"


def bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
    """Bind ``server`` to ``address`` (host:port; port 0 picks a free one) -> the port bound; TLS with
    ``credentials`` (:meth:`protos.tls.TlsFiles.server_credentials`), else plaintext.

    OSError with what to do when the address is malformed, in use or not local.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise OSError(f"cannot listen on {address!r}: expected host:port with a port in 0..65535 "
                      f"(e.g. 127.0.0.1:50051; port 0 picks a free one)")
    if int(port):
        _refuse_if_taken(host, int(port), address)
    try:
        bound = (server.add_insecure_port(address) if credentials is None
                 else server.add_secure_port(address, credentials))
    except RuntimeError:  # newer grpcio raises where older ones return 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen on {address}: {PORT_IN_USE} (is another service running there?) "
                      f"or the host is not an address of this machine")
    return bound


def _refuse_if_taken(host: str, port: int, address: str) -> None:
    """OSError (PORT_IN_USE) when a listening socket holds ``port``: checked with a plain socket first,
    because gRPC core can abort the whole process on a failed bind instead of returning 0."""
    host = host.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as gRPC: TIME_WAIT leftovers do not count
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise OSError(f"cannot listen on {address}: {PORT_IN_USE} (is another service running there?)") \
                    from None
            # anything else (a host that is not this machine's) gets gRPC's own answer below


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (for tests and local bring-up).

    Picked below the kernel's ephemeral range where it can: a port inside that range can be taken,
    before the service binds it, as the source port of any outgoing connection, including a health
    probe polling that very port (TCP self-connect), and the service then cannot bind.
    """
    low, _ = _ephemeral_range()
    for port in _PORT_DRAWS.sample(range(_LOWEST_PICKED_PORT, low), min(64, max(0, low - _LOWEST_PICKED_PORT))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:   # no room below the range: any free one
        sock.bind((host, 0))
        return sock.getsockname()[1]


_LOWEST_PICKED_PORT = 20000   # above the well-known and most registered service ports
_PORT_DRAWS = random.SystemRandom()   # not the global stream: a seeded test must not make two processes agree


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral source-port range (Linux); the common default where it cannot be read."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def add_health(server: grpc.Server, services: tuple[str, ...]) -> health.HealthServicer:
    """Register the standard gRPC health service; ``services`` (and "") start NOT_SERVING."""
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", *services):
        servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    return servicer


def set_serving(servicer: health.HealthServicer, services: tuple[str, ...], serving: bool = True) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *services):
        servicer.set(name, status)


# A Sync the client gave no deadline still gets one upstream: the receiver answers in milliseconds,
# and a frozen receiver must not hold a relay's worker forever (the proxy, the bench's echo relay).
MAX_UPSTREAM_SYNC_S = 60.0


def upstream_timeout_s(remaining_s: float | None) -> float:
    """The deadline to forward upstream: the client's time remaining, at most MAX_UPSTREAM_SYNC_S.

    A client without a deadline has about 9e18 s remaining; passed on as is, gRPC's deadline
    arithmetic overflows and the upstream call fails at once with DEADLINE_EXCEEDED (issue 17)."""
    if remaining_s is None:
        return MAX_UPSTREAM_SYNC_S
    return max(0.0, min(remaining_s, MAX_UPSTREAM_SYNC_S))
