"""The baseline of ``bench sync``: a bare gRPC echo behind a relay, the same shape as sender -> proxy -> receiver.

    python -m link.bench.echo server --listen ADDR                  # answers Link.Sync with a fixed reply
    python -m link.bench.echo relay --listen ADDR --upstream ADDR   # forwards Link.Sync, does nothing else

Both serve the real ``diffusec.link.v1.Link`` service (only Sync) with the services' gRPC options
and thread pools, so a Sync through relay -> echo costs exactly the transport and (de)serialisation
of a real Sync (the same SyncRequest/SyncReply messages and sizes) and none of its work.
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
from concurrent import futures

import grpc

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.serving import SERVER_OPTIONS, add_health, bind, set_serving, upstream_timeout_s
from protos.wire import GRPC_OPTIONS

LINK_SERVICE = link_pb2.DESCRIPTOR.services_by_name["Link"].full_name


class EchoServicer(link_pb2_grpc.LinkServicer):
    """Answers every Sync with a reply the size of a receiver's (same fields set)."""

    def Sync(self, request, context):
        return link_pb2.SyncReply(epoch=request.sequence + 1, t_d=20, t_plus=0, snr_db=15.0, policy="fixed",
                                  preset=request.preset or "cifar10", latent_length=768, num_timesteps=1000,
                                  timing=link_pb2.SyncTiming(receiver_us=1.0, snr_estimate_us=1.0, policy_us=1.0))


class RelayServicer(link_pb2_grpc.LinkServicer):
    """Forwards every Sync upstream untouched, like the channel proxy minus the channel."""

    def __init__(self, upstream: grpc.Channel):
        self.upstream = link_pb2_grpc.LinkStub(upstream)

    def Sync(self, request, context):
        try:
            reply = self.upstream.Sync(request, timeout=upstream_timeout_s(context.time_remaining()))
        except grpc.RpcError as err:
            context.abort(err.code(), err.details())
        reply.timing.proxy_us = 1.0
        return reply


def serve(servicer: link_pb2_grpc.LinkServicer, listen: str, max_workers: int = 32) -> grpc.Server:
    """Link (Sync only) + health on ``listen``, started; OSError when the address is taken."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="echo"),
                         options=SERVER_OPTIONS)
    link_pb2_grpc.add_LinkServicer_to_server(servicer, server)
    health = add_health(server, (LINK_SERVICE,))
    bind(server, listen)
    server.start()
    set_serving(health, (LINK_SERVICE,))
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m link.bench.echo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    sub.add_parser("server").add_argument("--listen", required=True, help="host:port")
    relay = sub.add_parser("relay")
    relay.add_argument("--listen", required=True, help="host:port")
    relay.add_argument("--upstream", required=True, help="host:port of the echo server")
    args = parser.parse_args(argv)
    channel = None
    try:
        if args.role == "server":
            server = serve(EchoServicer(), args.listen)
        else:
            channel = grpc.insecure_channel(args.upstream, options=GRPC_OPTIONS)
            server = serve(RelayServicer(channel), args.listen)
    except OSError as err:   # said before exiting: gRPC may abort the process while it tears down
        print(f"error: {err}", flush=True)
        os._exit(1)
    print(f"echo {args.role} on {args.listen}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=0.5).wait()
    if channel is not None:
        channel.close()


if __name__ == "__main__":
    main()
