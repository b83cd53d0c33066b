"""The wire format the three services share: symbols and images as bytes, transport limits, error reasons.

Real channel symbols travel as little-endian float32 bytes in C-order (``latent``, ``pilot``);
images as uint8 bytes [C, H, W]. Every conversion of those bytes goes through this module, so the
format is written down once. Starting a gRPC server (bind, health) is :mod:`protos.serving`.
"""
from __future__ import annotations

import grpc
import numpy as np
import torch

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
    # Keepalive: an HTTP/2 ping every 10 s, answered within 5 s, or the connection is dropped and the
    # call fails UNAVAILABLE; a frozen peer (SIGSTOP, a hung host) is noticed though TCP stays up.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # ... and servers accept those pings (by default they answer pings more often than every 5 min
    # with GOAWAY "too_many_pings").
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]

# Channel symbols have unit average power. The proxy's noisiest channel (SNR -60 dB with a 60 dB
# jammer) has a noise std of about 1e6, so a symbol beyond this bound is no channel output: the
# receiver refuses it (BAD_AMPLITUDE; let through, the decoder returns NaN or a saturated image)
# and the proxy's adversary leaves it alone. tests/test_link_units.py checks the margin.
MAX_SYMBOL_AMPLITUDE = 1e12

# Trailing-metadata key naming the machine-readable reason of an error (e.g. UNKNOWN_SESSION).
REASON_KEY = "diffusec-reason"


def is_symbol_bytes(data: bytes) -> bool:
    """Whether ``data`` holds one or more whole float32 symbols (4 bytes each)."""
    return bool(data) and len(data) % 4 == 0


def bytes_to_array(data: bytes) -> np.ndarray:
    """Little-endian float32 bytes -> a read-only float32 view [N] (no copy). ValueError if len % 4 != 0."""
    if len(data) % 4:
        raise ValueError(f"{len(data)} bytes is not a whole number of float32 values (4 bytes each)")
    return np.frombuffer(data, dtype="<f4")


def array_to_bytes(symbols: np.ndarray) -> bytes:
    """Real symbols as a numpy array (any shape, any float dtype) -> little-endian float32 bytes, C-order."""
    return np.asarray(symbols).astype("<f4", copy=False).tobytes()  # tobytes writes C-order


def symbols_to_bytes(symbols: torch.Tensor) -> bytes:
    """Real symbols (any shape, any float dtype) -> little-endian float32 bytes, C-order."""
    return array_to_bytes(symbols.detach().to("cpu", torch.float32).contiguous().numpy())


def bytes_to_symbols(data: bytes) -> torch.Tensor:
    """Little-endian float32 bytes -> a writable float32 tensor [N]. ValueError if len % 4 != 0."""
    return torch.from_numpy(bytes_to_array(data).astype(np.float32))


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
