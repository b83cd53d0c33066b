"""Wire helpers shared by the three services: tensors <-> float32 bytes, gRPC options, health.

Real channel symbols travel as little-endian float32 bytes in C-order (``latent``, ``pilot``);
images as uint8 bytes [C, H, W]. Addresses are ``host:port`` strings (``127.0.0.1:50051``).
"""
from __future__ import annotations

import errno
import socket

import grpc
import numpy as np
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .limits import MAX_PILOT_SYMBOLS, MIN_PILOT_SYMBOLS  # noqa: F401 - re-exported

# Transport cap on any one message (bytes). Larger messages are refused by gRPC itself with
# RESOURCE_EXHAUSTED; the receiver also applies its own, smaller, application limit with a
# message that says what to do (INVALID_ARGUMENT).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Reconnect quickly after a peer restarts (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
]
# Servers also refuse a port that another process holds: gRPC's default SO_REUSEPORT would let a
# second receiver or proxy bind the same port and silently share its traffic.
SERVER_OPTIONS = [*GRPC_OPTIONS, ("grpc.so_reuseport", 0)]

# Channel symbols have unit average power. The proxy's noisiest channel (SNR -60 dB with a 60 dB
# jammer) has a noise std of about 1e6, so a symbol beyond this bound is no channel output: the
# receiver refuses it (BAD_AMPLITUDE; let through, the decoder returns NaN or a saturated image)
# and the proxy's adversary leaves it alone. tests/test_link_units.py checks the margin.
MAX_SYMBOL_AMPLITUDE = 1e12

# Trailing-metadata key naming the machine-readable reason of an error (e.g. UNKNOWN_SESSION).
REASON_KEY = "diffusec-reason"


def symbols_to_bytes(symbols: torch.Tensor) -> bytes:
    """Real symbols (any shape, any float dtype) -> little-endian float32 bytes, C-order."""
    return symbols.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False).tobytes()


def bytes_to_symbols(data: bytes) -> torch.Tensor:
    """Little-endian float32 bytes -> a writable float32 tensor [N]. ValueError if len % 4 != 0."""
    if len(data) % 4:
        raise ValueError(f"{len(data)} bytes is not a whole number of float32 values (4 bytes each)")
    return torch.from_numpy(np.frombuffer(data, dtype="<f4").astype(np.float32))


def image_to_bytes(pixels01: torch.Tensor) -> tuple[bytes, list[int]]:
    """A [0, 1] image [C, H, W] -> (uint8 bytes in C-order, shape)."""
    u8 = (pixels01.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).contiguous()
    return u8.numpy().tobytes(), list(u8.shape)


def bytes_to_image(data: bytes, shape) -> torch.Tensor:
    """uint8 bytes + shape [C, H, W] -> [0, 1] float32 image [C, H, W]."""
    array = np.frombuffer(data, dtype=np.uint8).reshape(tuple(shape))
    return torch.from_numpy(array.astype(np.float32) / 255.0)


def error_reason(err: grpc.RpcError) -> str:
    """The ``diffusec-reason`` trailing metadata of a failed call ('' when absent)."""
    try:
        for key, value in err.trailing_metadata() or ():
            if key == REASON_KEY:
                return value
    except Exception:  # not every RpcError carries a call
        pass
    return ""


# In :func:`bind`'s error, which a service prints when it exits; link.procs.ProcessGroup.start looks for it.
PORT_IN_USE = "the port is in use"


def bind(server: grpc.Server, address: str) -> int:
    """Bind ``server`` to ``address`` (host:port; port 0 picks a free one) -> the port bound.

    OSError with what to do when the address is malformed, in use or not local.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise OSError(f"cannot listen on {address!r}: expected host:port with a port in 0..65535 "
                      f"(e.g. 127.0.0.1:50051; port 0 picks a free one)")
    if int(port):
        _refuse_if_taken(host, int(port), address)
    try:
        bound = server.add_insecure_port(address)
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
    """A TCP port that is free right now on ``host`` (for tests and local bring-up)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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
