"""The link key (issue 17): signed syncs, frame headers and acks, and the proxy's tampering kinds.

A real receiver and a real channel proxy (gRPC servers on loopback sockets, in this process,
untrained models) and a :class:`sender.link.LinkSender`. Without a key the tampering goes through
(or, for frame-tamper, meets the receiver's epoch check); with one every tampered message is
refused, and the run still delivers every frame with the receiver's honest answers.
"""
from __future__ import annotations

import grpc
import pytest
import torch

from channel_proxy.impairments import kind_class
from channel_proxy.service import build_servers
from channel_proxy.state import ChannelState
from link_support import free_port, make_untrained_checkpoints
from protos.auth import KEY_ENV, LinkAuth, LinkKeyError, canonical, load_link_key
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import error_reason, symbols_to_bytes
from receiver.engine import Receiver
from receiver.guard import LinkGuard
from receiver.policy import FixedPolicy
from receiver.service import build_server
from sender.link import LinkFailed, LinkSender, SenderOptions
from shared.channel import pilot_sequence
from shared.pipeline import Pipeline

KEY = b"k" * 32
T_D, T_PLUS = 3, 2
N = 12


# --- the MAC itself ------------------------------------------------------------------------------
def test_canonical_encoding_tells_fields_apart():
    assert canonical("ack", "ab", "c") != canonical("ack", "a", "bc")
    assert canonical("ack", 1) != canonical("ack", "1") != canonical("ack", 1.0)
    assert canonical("ack", None) != canonical("ack", 0) and canonical("frame", 1) != canonical("ack", 1)
    assert canonical("ack", [1, 2], 3) != canonical("ack", [1], 2, 3)


def test_every_signed_field_matters():
    auth = LinkAuth(KEY)
    frame = link_pb2.Frame(frame_id=4, session="s", epoch=2, t_d=5, shape=[768], dtype="float32", label=3,
                           latent=b"\0" * 8)
    auth.sign_frame(frame)
    assert auth.frame_valid(frame)
    frame.latent = b"\1" * 8                      # not covered: the channel changes it by design
    assert auth.frame_valid(frame)
    for field, value in (("frame_id", 5), ("session", "t"), ("epoch", 3), ("t_d", 1), ("label", 4),
                         ("return_image", True), ("dtype", "")):
        changed = link_pb2.Frame()
        changed.CopyFrom(frame)
        setattr(changed, field, value)
        assert not auth.frame_valid(changed), field
    unlabelled = link_pb2.Frame()
    unlabelled.CopyFrom(frame)
    unlabelled.ClearField("label")
    assert not auth.frame_valid(unlabelled)
    assert not LinkAuth(b"x" * 32).frame_valid(frame)

    ack = link_pb2.Ack(frame_id=4, predicted_class=1, t_p=7, epoch=2, t_d=5, image=b"\1\2", image_shape=[1, 1, 2])
    auth.sign_ack("s", ack)
    assert auth.ack_valid("s", ack) and not auth.ack_valid("other session", ack)
    for field, value in (("predicted_class", 2), ("t_p", 8), ("image", b"\1\3"), ("duplicate", True)):
        changed = link_pb2.Ack()
        changed.CopyFrom(ack)
        setattr(changed, field, value)
        assert not auth.ack_valid("s", changed), field
    reply = link_pb2.SyncReply(epoch=1, t_d=20, t_plus=3, snr_db=14.5, preset="cifar10", latent_length=768)
    auth.sign_sync_reply("s", 7, reply)
    assert auth.sync_reply_valid("s", 7, reply) and not auth.sync_reply_valid("s", 6, reply)
    reply.t_d = 1
    assert not auth.sync_reply_valid("s", 7, reply)


def test_key_loading(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert load_link_key(None) is None
    (tmp_path / "k").write_bytes(b"  0123456789abcdef0123\n")
    assert load_link_key(tmp_path / "k") == b"0123456789abcdef0123"
    monkeypatch.setenv(KEY_ENV, "fedcba9876543210")
    assert load_link_key(None) == b"fedcba9876543210"
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(LinkKeyError, match="holds 3 bytes; a link key needs at least 16"):
        load_link_key(tmp_path / "short")
    with pytest.raises(LinkKeyError, match="cannot read the link key file"):
        load_link_key(tmp_path / "missing")


# --- a receiver with a key ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def pipeline(checkpoints):
    return Pipeline.load("cifar10", checkpoints)


def start_receiver(pipeline, key: bytes | None):
    receiver = Receiver(pipeline, FixedPolicy(T_D, T_PLUS), max_batch=8, max_wait_ms=1)
    server, port = build_server(receiver, "127.0.0.1:0", guard=LinkGuard(LinkAuth(key) if key else None))
    return receiver, server, f"127.0.0.1:{port}"


def signed_sync(stub, auth, session="s", sequence=0):
    request = link_pb2.SyncRequest(session=session, sequence=sequence, preset="cifar10",
                                   pilot=symbols_to_bytes(pilot_sequence(session, sequence, 256)))
    if auth is not None:
        auth.sign_sync_request(request)
    return stub.Sync(request, timeout=10)


def test_a_keyed_receiver_refuses_what_is_not_signed_and_signs_what_it_sends(pipeline):
    auth = LinkAuth(KEY)
    receiver, server, address = start_receiver(pipeline, KEY)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = link_pb2_grpc.LinkStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                signed_sync(stub, None)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and error_reason(err.value) == "BAD_SYNC_MAC"
            reply = signed_sync(stub, auth, sequence=3)
            assert auth.sync_reply_valid("s", 3, reply) and reply.t_d == T_D
            with pytest.raises(grpc.RpcError) as err:
                signed_sync(stub, auth, sequence=3)                      # replayed
            assert error_reason(err.value) == "REPLAYED_SYNC" and "not above the last one" in err.value.details()

            frames = [link_pb2.Frame(frame_id=i, session="s", epoch=reply.epoch, t_d=T_D, shape=[768],
                                     latent=symbols_to_bytes(torch.randn(768)), label=1) for i in range(3)]
            auth.sign_frame(frames[0])
            auth.sign_frame(frames[1])
            frames[1].t_d = 1                                           # changed after signing
            acks = {a.frame_id: a for a in stub.Transmit(iter(frames), timeout=30)}
        assert all(auth.ack_valid("s", a) for a in acks.values())
        assert not acks[0].HasField("error") and acks[0].t_p == T_D + T_PLUS
        for i in (1, 2):
            assert acks[i].error.code == "UNAUTHENTICATED" and acks[i].error.reason == "BAD_FRAME_MAC"
        assert receiver.frames_processed == 1
    finally:
        server.stop(0).wait()
        receiver.close()


# --- the tampering kinds, through a proxy ----------------------------------------------------------
@pytest.fixture
def link(pipeline):
    """-> start(key): a keyed (or unkeyed) receiver behind a proxy -> (proxy address, proxy state)."""
    running = []

    def start(key: bytes | None):
        receiver, server, address = start_receiver(pipeline, key)
        state = ChannelState(snr_db=20.0, seed=0, upstream=address)
        servers = build_servers(state, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}", address)
        running.append((receiver, server, servers))
        return f"127.0.0.1:{servers[3]}", state

    yield start
    for receiver, server, (proxy_link, ctl, channel, _, _) in running:
        proxy_link.stop(0).wait()
        ctl.stop(0).wait()
        channel.close()
        server.stop(0).wait()
        receiver.close()


def images_and_labels():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(N) % 10


def send(pipeline, address, key, **options):
    images, labels = images_and_labels()
    # Refused frames are resent on the refusal, not on a timeout: a short ack timeout only adds spurious
    # resends on a loaded machine (where these tests failed with 0.5 s).
    opts = SenderOptions(window=4, batch=4, ack_timeout_s=5.0, seed=0, **options)
    with LinkSender(pipeline, address, opts, auth=LinkAuth(key) if key else None) as sender:
        return sender.run(images, labels)


def tamper(state, kind, **params):
    state.add("", kind_class(kind)(**params))


def test_sync_tamper_without_a_key_goes_unseen(pipeline, link):
    address, state = link(None)
    tamper(state, "sync-tamper", t_d=1)
    result = send(pipeline, address, None)
    assert all(a is not None for a in result.acks) and not result.refusals
    assert {s.t_d for s in result.syncs} == {1}                         # what the sender was told
    assert {a.t_p for a in result.acks} == {T_D + T_PLUS}               # what the receiver did
    assert {a.t_d for a in result.acks} == {1}                          # the echo, forged back
    stats = state.stats()
    assert stats["syncs_tampered"] == 1 and stats["frames_tampered"] == N


def test_sync_tamper_with_a_key_is_refused_and_the_run_delivers(pipeline, link):
    address, state = link(KEY)
    tamper(state, "sync-tamper", t_d=1, rate=0.5)
    result = send(pipeline, address, KEY, sync_every=4)
    assert all(a is not None for a in result.acks)
    assert result.refusals.get("BAD_SYNC_REPLY_MAC", 0) == state.stats()["syncs_tampered"] > 0
    assert {s.t_d for s in result.syncs} == {T_D} and {a.t_p for a in result.acks} == {T_D + T_PLUS}


def test_frame_tamper_meets_the_epoch_check_without_a_key_and_the_mac_with_one(pipeline, link):
    for key, reason in ((None, "TIMESTEP_MISMATCH"), (KEY, "BAD_FRAME_MAC")):
        address, state = link(key)
        tamper(state, "frame-tamper", t_d=9, rate=0.5)
        result = send(pipeline, address, key)
        assert all(a is not None for a in result.acks), key
        assert {a.t_p for a in result.acks} == {T_D + T_PLUS}
        assert result.refusals[reason] == state.stats()["frames_tampered"] > 0


def test_ack_forge_fools_an_unkeyed_sender_and_is_refused_with_a_key(pipeline, link):
    address, state = link(KEY)
    truth = [a.predicted_class for a in send(pipeline, address, KEY).acks]
    tamper(state, "ack-forge", rate=0.5)
    result = send(pipeline, address, KEY)
    assert [a.predicted_class for a in result.acks] == truth             # the receiver's answers, stored
    assert result.refusals["BAD_ACK_MAC"] == state.stats()["acks_forged"] > 0

    address, state = link(None)
    tamper(state, "ack-forge", target=7)
    result = send(pipeline, address, None)
    assert {a.predicted_class for a in result.acks} == {7}
    assert state.stats()["acks_forged"] > 0


def test_tampering_every_message_ends_the_run_with_what_was_delivered(pipeline, link):
    address, state = link(KEY)
    tamper(state, "ack-forge")
    images, labels = images_and_labels()
    opts = SenderOptions(window=4, batch=4, ack_timeout_s=0.2, retry_timeout_s=1.5, seed=0)
    with LinkSender(pipeline, address, opts, auth=LinkAuth(KEY)) as sender:
        with pytest.raises(LinkFailed, match="no progress .* BAD_ACK_MAC"):
            sender.run(images, labels)
        assert sender.result.frames_sent > 0 and sender.result.refusals["BAD_ACK_MAC"] > 0
        assert sender.acked == 0


def test_a_sender_without_the_key_is_refused(pipeline, link):
    address, _ = link(KEY)
    images, labels = images_and_labels()
    with LinkSender(pipeline, address, SenderOptions(retry_timeout_s=1.0)) as sender:
        with pytest.raises(LinkFailed, match="BAD_SYNC_MAC"):
            sender.run(images[:2], labels[:2])
