"""gRPC health checks (grpc.health.v1) without importing torch: fast enough for container probes.

Addresses are ``host:port`` strings; times are in seconds.
"""
from __future__ import annotations

import time
from typing import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.tls import PLAINTEXT, TlsFiles, open_channel

SERVING = "SERVING"


def check(address: str, service: str = "", timeout_s: float = 2.0, tls: TlsFiles = PLAINTEXT) -> str:
    """One Check call -> the status name (SERVING, NOT_SERVING, ...) or the gRPC error code name.

    A server that is not listening gives "UNAVAILABLE"; a service it does not know, "NOT_FOUND".
    ``tls``: for a server that serves TLS (mutual: with a client certificate).
    """
    with open_channel(address, tls, []) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                               timeout=timeout_s)
        except grpc.RpcError as err:
            return err.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def wait_serving(address: str, timeout_s: float = 120.0, service: str = "",
                 alive: Callable[[], str | None] | None = None, poll_s: float = 0.1, tls: TlsFiles = PLAINTEXT) -> float:
    """Poll ``address`` until SERVING -> seconds waited.

    ``alive()`` is called between polls and returns None while the server's process lives, or a
    message when it has died; that message is raised at once as RuntimeError. TimeoutError after
    ``timeout_s`` with the last status seen.
    """
    start = time.monotonic()
    last = "no answer"
    with open_channel(address, tls, []) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.monotonic() - start
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as err:
                last = err.code().name
            if alive is not None:
                death = alive()
                if death:
                    raise RuntimeError(death)
            if time.monotonic() - start > timeout_s:
                raise TimeoutError(f"{address} not SERVING after {timeout_s:.0f} s (last: {last})")
            time.sleep(poll_s)


def probe(address: str, service: str = "", wait_s: float = 0.0, timeout_s: float = 2.0) -> str:
    """:func:`check`, repeated every 0.2 s for up to ``wait_s`` seconds until SERVING -> the last status."""
    deadline = time.monotonic() + wait_s
    while True:
        status = check(address, service, timeout_s)
        if status == SERVING or time.monotonic() >= deadline:
            return status
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """``python -m link.health ADDR [--service S] [--wait S]``: exit 0 when SERVING, else 1.

    The same as ``diffusec health`` without loading torch (about 0.1 s): for container probes.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m link.health", description=main.__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port")
    parser.add_argument("--service", default="", help="service name (default: the whole server)")
    parser.add_argument("--wait", type=float, default=0.0, help="keep polling this many seconds")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per check")
    args = parser.parse_args(argv)
    status = probe(args.address, args.service, args.wait, args.timeout)
    print(f"{args.address}{'/' + args.service if args.service else ''}: {status}")
    return 0 if status == SERVING else 1


if __name__ == "__main__":
    raise SystemExit(main())
