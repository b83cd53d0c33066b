"""Property-based (hypothesis): random syncs, frames and control calls thrown at a real receiver and a
real channel proxy (gRPC servers on loopback, in this process, untrained models) each get a defined
answer -- a status with a message, or an ack (with an error or a result) -- and both keep serving."""
from __future__ import annotations

import struct

import grpc
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channel_proxy.service import build_servers
from channel_proxy.state import ChannelState
from link_support import free_port, make_untrained_checkpoints
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import symbols_to_bytes
from receiver.engine import Receiver
from receiver.policy import FixedPolicy
from receiver.service import build_server
from shared.channel import pilot_sequence
from shared.pipeline import Pipeline

# Statuses a bad request may get; never UNKNOWN or INTERNAL (an unhandled exception).
DEFINED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAUTHENTICATED,
           grpc.StatusCode.RESOURCE_EXHAUSTED}
FRAME_ERRORS = {"INVALID_ARGUMENT", "OUT_OF_RANGE", "UNAUTHENTICATED"}


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    pipeline = Pipeline.load("cifar10", make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt")))
    receiver = Receiver(pipeline, FixedPolicy(2, 1), max_batch=8, max_wait_ms=1)
    server, port = build_server(receiver, "127.0.0.1:0")
    state = ChannelState(snr_db=20.0, upstream=f"127.0.0.1:{port}")
    proxy, control = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    servers = build_servers(state, proxy, control, f"127.0.0.1:{port}")
    link_channel, ctl_channel = grpc.insecure_channel(proxy), grpc.insecure_channel(control)
    yield link_pb2_grpc.LinkStub(link_channel), link_pb2_grpc.ChannelControlStub(ctl_channel)
    link_channel.close()
    ctl_channel.close()
    for s in servers[:2]:
        s.stop(0).wait()
    servers[2].close()
    server.stop(0).wait()
    receiver.close()


texts = st.text(max_size=40) | st.sampled_from(["s", "fuzz", ""])
ints = st.integers(-2**31, 2**31 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
# float32 symbols (any values, NaN and inf included) or raw bytes of any length
symbols = st.lists(floats, max_size=64).map(lambda v: struct.pack(f"<{len(v)}f", *v)) | st.binary(max_size=64)


syncs = st.builds(link_pb2.SyncRequest, session=texts, sequence=st.integers(0, 2**64 - 1), pilot=symbols,
                  preset=st.sampled_from(["", "cifar10", "mnist", "x"]), mac=st.binary(max_size=40))
frames = st.builds(link_pb2.Frame, frame_id=st.integers(0, 2**64 - 1), session=texts, epoch=st.integers(0, 5),
                   t_d=ints, latent=symbols, shape=st.lists(st.integers(0, 2**32 - 1), max_size=3),
                   dtype=st.sampled_from(["", "float32", "float16", "x"]), return_image=st.booleans())
impairments = st.one_of(
    st.builds(lambda n, v: link_pb2.Impairment(name=n, jamming=link_pb2.Jamming(pnr_db=v)), texts, floats),
    st.builds(lambda n, v: link_pb2.Impairment(name=n, drop=link_pb2.Drop(rate=v)), texts, floats),
    st.builds(lambda n, a, b: link_pb2.Impairment(name=n, delay=link_pb2.Delay(ms=a, jitter_ms=b)), texts, floats, floats),
    st.builds(lambda n, t, r: link_pb2.Impairment(name=n, sync_tamper=link_pb2.SyncTamper(t_d=t, rate=r)), texts, ints,
              floats),
    st.builds(lambda n, t: link_pb2.Impairment(name=n, ack_forge=link_pb2.AckForge(target=t)), texts, ints),
    st.builds(link_pb2.Impairment, name=texts))


def still_serving(link, control) -> None:
    control.ClearImpairments(link_pb2.ClearImpairmentsRequest(), timeout=10)
    control.SetSnr(link_pb2.SetSnrRequest(snr_db=20.0), timeout=10)
    reply = link.Sync(link_pb2.SyncRequest(session="ok", preset="cifar10",
                                           pilot=symbols_to_bytes(pilot_sequence("ok", 0, 64))), timeout=10)
    frame = link_pb2.Frame(frame_id=0, session="ok", epoch=reply.epoch, t_d=reply.t_d, shape=[768],
                           latent=symbols_to_bytes(torch.zeros(768)))
    [ack] = link.Transmit(iter([frame]), timeout=30)
    assert not ack.HasField("error")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sync_requests=st.lists(syncs, max_size=3), frame_batch=st.lists(frames, max_size=4),
       added=st.lists(impairments, max_size=2), snr=floats)
def test_every_request_gets_a_defined_answer(services, sync_requests, frame_batch, added, snr):
    link, control = services
    for request in sync_requests:
        try:
            link.Sync(request, timeout=10)
        except grpc.RpcError as err:
            assert err.code() in DEFINED and err.details(), (err.code(), err.details())
    for impairment in added:
        try:
            control.AddImpairment(link_pb2.AddImpairmentRequest(impairment=impairment), timeout=10)
        except grpc.RpcError as err:
            assert err.code() in DEFINED and err.details(), (err.code(), err.details())
    try:
        control.SetSnr(link_pb2.SetSnrRequest(snr_db=snr), timeout=10)
    except grpc.RpcError as err:
        assert err.code() in DEFINED and err.details()
    control.ClearImpairments(link_pb2.ClearImpairmentsRequest(), timeout=10)   # no drops/delays for the frames
    control.SetSnr(link_pb2.SetSnrRequest(snr_db=20.0), timeout=10)
    try:
        acks = list(link.Transmit(iter(frame_batch), timeout=60))
    except grpc.RpcError as err:   # only the transport's own limit may end the stream
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (err.code(), err.details())
    else:
        assert len(acks) == len(frame_batch)
        assert all(a.error.code in FRAME_ERRORS and a.error.message for a in acks if a.HasField("error"))
    still_serving(link, control)
