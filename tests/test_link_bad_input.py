"""Bad requests to a real receiver (gRPC server on a loopback socket, untrained models):
each gets INVALID_ARGUMENT or OUT_OF_RANGE with a message naming the problem (a bad Sync as
the call's status, a bad frame as its ack's error, the stream going on), and the service keeps
serving."""
from __future__ import annotations

import grpc
import pytest
import torch

from link_support import make_untrained_checkpoints
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import MAX_MESSAGE_BYTES, error_reason, symbols_to_bytes
from receiver.engine import Receiver
from receiver.policy import FixedPolicy
from receiver.service import build_server
from shared.channel import pilot_sequence
from shared.pipeline import Pipeline

T_PLUS = 5
INVALID, OUT_OF_RANGE = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    pipeline = Pipeline.load("cifar10", make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt")))
    receiver = Receiver(pipeline, FixedPolicy(1, T_PLUS), max_batch=8, max_wait_ms=1)
    server, port = build_server(receiver, "127.0.0.1:0")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)])
    stub = link_pb2_grpc.LinkStub(channel)
    stub.port = port
    try:
        yield stub
    finally:
        channel.close()
        server.stop(0).wait()
        receiver.close()


def sync(stub, session="s", sequence=0, **overrides) -> link_pb2.SyncReply:
    fields = dict(session=session, sequence=sequence, pilot=symbols_to_bytes(pilot_sequence(session, sequence, 256)),
                  preset="cifar10")
    return stub.Sync(link_pb2.SyncRequest(**{**fields, **overrides}), timeout=10)


def frame(reply, frame_id=0, session="s", **overrides) -> link_pb2.Frame:
    fields = dict(frame_id=frame_id, session=session, epoch=reply.epoch, t_d=reply.t_d,
                  latent=symbols_to_bytes(torch.randn(768)), shape=[768], dtype="float32")
    fields.update(overrides)
    return link_pb2.Frame(**fields)


def transmit(stub, frames) -> list[link_pb2.Ack]:
    return list(stub.Transmit(iter(frames), timeout=30))


def still_serving(stub) -> None:
    reply = sync(stub, "healthy")
    acks = transmit(stub, [frame(reply, 1, "healthy", label=2)])
    assert len(acks) == 1 and acks[0].t_p == reply.t_d + T_PLUS and len(acks[0].image) == 3 * 32 * 32


def nan_latent():
    z = torch.randn(768)
    z[3] = float("nan")
    z[9] = float("inf")
    return symbols_to_bytes(z)


SYNC_CASES = {
    "empty session": (dict(session=""), INVALID, "MISSING_SESSION", "session is empty"),
    "ragged pilot": (dict(pilot=b"\0" * 10), INVALID, "BAD_LENGTH", "not a whole number of float32"),
    "short pilot": (dict(pilot=symbols_to_bytes(torch.ones(3))), INVALID, "BAD_PILOT_LENGTH", "16..65536"),
    "NaN pilot": (dict(pilot=symbols_to_bytes(torch.full((64,), float("nan")))), INVALID, "NON_FINITE", "64 NaN"),
    "other preset": (dict(preset="mnist"), INVALID, "PRESET_MISMATCH", "same --preset"),
    "huge pilot": (dict(pilot=symbols_to_bytes(torch.full((1024,), 1e30))), INVALID, "BAD_AMPLITUDE", "magnitude 1e+30"),
}


@pytest.mark.parametrize("case", list(SYNC_CASES))
def test_bad_sync(stub, case):
    overrides, code, reason, text = SYNC_CASES[case]
    with pytest.raises(grpc.RpcError) as err:
        sync(stub, **overrides)
    assert err.value.code() == code and error_reason(err.value) == reason and text in err.value.details()
    still_serving(stub)


FRAME_CASES = {
    "wrong shape": (dict(shape=[24, 32]), INVALID, "BAD_SHAPE", "expected [768]"),
    "wrong dtype": (dict(dtype="float16"), INVALID, "BAD_DTYPE", "float32"),
    "float64 bytes": (dict(latent=torch.randn(768, dtype=torch.float64).numpy().tobytes()), INVALID, "BAD_LENGTH",
                      "looks like float64"),
    "NaN and Inf": (dict(latent=nan_latent()), INVALID, "NON_FINITE", "1 NaN and 1 infinite"),
    "huge latent": (dict(latent=symbols_to_bytes(torch.full((768,), 3e38))), INVALID, "BAD_AMPLITUDE", "unit average power"),
    "unknown session": (dict(session="never-synced"), INVALID, "UNKNOWN_SESSION", "call Sync first"),
    "future epoch": (dict(epoch=999), OUT_OF_RANGE, "UNKNOWN_EPOCH", "never issued"),
    "epoch zero": (dict(epoch=0), OUT_OF_RANGE, "UNKNOWN_EPOCH", "never issued"),
    "negative t_d": (dict(t_d=-1), OUT_OF_RANGE, "BAD_TIMESTEP", "outside 0..1000"),
    "t_d beyond T": (dict(t_d=1001), OUT_OF_RANGE, "BAD_TIMESTEP", "outside 0..1000"),
    "t_P beyond T": (dict(t_d=999), OUT_OF_RANGE, "BAD_TIMESTEP", "exceeds T = 1000"),
    "t_d not its epoch's t_D": (dict(t_d=2), INVALID, "TIMESTEP_MISMATCH", "is not the t_D = 1 of epoch"),
    "label out of range": (dict(label=10), OUT_OF_RANGE, "BAD_LABEL", "outside 0..9"),
    "oversized latent": (dict(latent=b"\0" * (2 << 20), shape=[1 << 19]), INVALID, "TOO_LARGE",
                         "exceeds the receiver's limit"),
}


@pytest.mark.parametrize("case", list(FRAME_CASES))
def test_bad_frame(stub, case):
    overrides, code, reason, text = FRAME_CASES[case]
    reply = sync(stub)
    [ack] = transmit(stub, [frame(reply, frame_id=7, **overrides)])
    assert ack.HasField("error") and ack.frame_id == 7 and ack.error.code == code.name, ack.error
    assert ack.error.reason == reason and text in ack.error.message
    assert not ack.image and ack.t_p == 0
    still_serving(stub)


def test_a_bad_frame_among_good_ones_gets_its_own_error_and_the_stream_goes_on(stub):
    """One ack per frame, the bad one's saying why; resending the good frames is idempotent."""
    reply = sync(stub, "mixed")
    good = [frame(reply, i, "mixed") for i in range(3)]
    acks = transmit(stub, [good[0], frame(reply, 3, "mixed", shape=[5]), *good[1:]])
    by_id = {a.frame_id: a for a in acks}
    assert sorted(by_id) == [0, 1, 2, 3]
    assert by_id[3].error.reason == "BAD_SHAPE" and not any(by_id[i].HasField("error") for i in range(3))
    again = transmit(stub, good[:1])
    assert again[0].duplicate and again[0].predicted_class == by_id[0].predicted_class


def test_t_p_above_the_receivers_maximum(tmp_path):
    """--max-t-p bounds the work a frame can ask for (t_P network calls)."""
    pipeline = Pipeline.load("cifar10", make_untrained_checkpoints(tmp_path))
    receiver = Receiver(pipeline, FixedPolicy(1, T_PLUS), max_batch=8, max_wait_ms=1, max_t_p=T_PLUS)
    server, port = build_server(receiver, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = link_pb2_grpc.LinkStub(channel)
            [ack] = transmit(stub, [frame(sync(stub))])
        assert ack.error.code == "OUT_OF_RANGE" and ack.error.reason == "T_P_TOO_LARGE"
        assert "t_P = 6 exceeds this receiver's maximum of 5" in ack.error.message
    finally:
        server.stop(0).wait()
        receiver.close()


def test_old_epoch_frames_decode_under_their_epoch(stub):
    """A frame still in flight after a re-sync names the epoch (and so the t_D) it was diffused under."""
    first = sync(stub, "epochs")
    second = sync(stub, "epochs", sequence=1)
    assert second.epoch == first.epoch + 1
    acks = transmit(stub, [frame(first, 0, "epochs"), frame(second, 1, "epochs")])
    by_id = {a.frame_id: a for a in acks}
    assert (by_id[0].t_p, by_id[0].epoch) == (first.t_d + T_PLUS, first.epoch)
    assert (by_id[1].t_p, by_id[1].epoch) == (second.t_d + T_PLUS, second.epoch)


def test_message_beyond_the_transport_cap(stub):
    """gRPC itself refuses messages over MAX_MESSAGE_BYTES (RESOURCE_EXHAUSTED); the server lives on."""
    reply = sync(stub)
    with pytest.raises(grpc.RpcError) as err:
        transmit(stub, [frame(reply, latent=b"\0" * (MAX_MESSAGE_BYTES + 1024))])
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in err.value.details()
    still_serving(stub)


def test_a_second_server_cannot_take_the_port(stub, tmp_path):
    """gRPC's default SO_REUSEPORT would let a second receiver share the port and half the traffic."""
    pipeline = Pipeline.load("cifar10", make_untrained_checkpoints(tmp_path))
    second = Receiver(pipeline, FixedPolicy(1, T_PLUS), max_batch=8, max_wait_ms=1)
    try:
        with pytest.raises(OSError, match="in use"):
            build_server(second, f"127.0.0.1:{stub.port}")
        with pytest.raises(OSError, match="0..65535"):
            build_server(second, "127.0.0.1:99999")
    finally:
        second.close()
    still_serving(stub)


def test_free_ports_are_picked_below_the_ephemeral_range():
    """A port the kernel may hand out as a source port (e.g. to a health probe polling it) can be
    taken before the service binds it; free_port stays below that range."""
    from protos.serving import _ephemeral_range, free_port

    low, _ = _ephemeral_range()
    ports = {free_port() for _ in range(8)}
    assert all(20000 <= p < low for p in ports) and len(ports) > 1
