"""The sender's window without sockets: chunked refill, ack bookkeeping, fast retransmit, timeouts."""
from __future__ import annotations

import pytest

from protos.diffusec.link.v1 import link_pb2
from sender.result import LinkResult
from sender.window import FAST_RETRANSMIT_AFTER, FIRST_ACK_TIMEOUT_S, SendWindow


class FakeStream:
    """Records the frame ids sent, in order."""

    def __init__(self):
        self.sent: list[int] = []

    def send(self, frame: link_pb2.Frame) -> None:
        self.sent.append(frame.frame_id)


def encode(indices: list[int]) -> list[link_pb2.Frame]:
    return [link_pb2.Frame(frame_id=i) for i in indices]


def window_of(n: int, size: int, batch: int, ack_timeout_s: float = 5.0) -> tuple[SendWindow, list[int]]:
    counted: list[int] = []
    return SendWindow(LinkResult(acks=[None] * n), size, batch, ack_timeout_s, counted.append), counted


def ack(window: SendWindow, *frame_ids: int) -> None:
    for frame_id in frame_ids:
        window.on_ack(link_pb2.Ack(frame_id=frame_id))


def test_refill_sends_whole_chunks_until_the_window_is_full():
    window, _ = window_of(14, size=8, batch=4)
    stream = FakeStream()
    assert [window.refill(stream, encode) for _ in range(3)] == [4, 4, 0]
    ack(window, 0, 1, 2)
    assert window.refill(stream, encode) == 0          # room for 3 < a chunk (4): wait
    ack(window, 3)
    assert window.refill(stream, encode) == 4
    ack(window, 4)
    assert window.refill(stream, encode) == 0          # room for 1 of the last 2
    ack(window, 5)
    assert window.refill(stream, encode) == 2          # the last chunk is what is left
    assert stream.sent == list(range(14)) and window.all_sent() and window.result.frames_sent == 14
    assert window.refill(stream, encode, limit=3) == 0


def test_refill_stops_at_the_limit_before_a_periodic_sync():
    window, _ = window_of(10, size=8, batch=4)
    assert window.refill(FakeStream(), encode, limit=3) == 3 and window.next_index == 3


def test_acks_complete_frames_once_and_count_the_rest_as_duplicates():
    window, counted = window_of(3, size=4, batch=4)
    window.refill(FakeStream(), encode)
    ack(window, 0, 0, 7, 1, 2)
    assert window.complete() and window.acked == 3 and counted == [1, 1, 1]
    assert window.result.duplicate_acks == 2 and len(window.result.latencies_ms) == 3
    assert window.unacked() == []


def test_a_frame_is_resent_once_later_frames_are_acked():
    window, _ = window_of(6, size=6, batch=6)
    stream = FakeStream()
    window.refill(stream, encode)
    ack(window, *range(1, 1 + FAST_RETRANSMIT_AFTER))
    window.resend_lost_or_wait(stream)
    assert stream.sent[6:] == [0] and window.result.frames_resent == 1
    # The resent copy's ack says nothing about the order (Karn): frame 4 is not presumed lost.
    ack(window, 0)
    window.resend_lost_or_wait(stream)
    assert stream.sent[6:] == [0] and window.unacked() == [4, 5]


def test_at_the_tail_the_last_frame_acked_after_it_is_enough():
    window, _ = window_of(2, size=2, batch=2)
    stream = FakeStream()
    window.refill(stream, encode)
    ack(window, 1)
    window.resend_lost_or_wait(stream)
    assert stream.sent == [0, 1, 0]


def test_reconnect_resends_only_unacked_frames():
    window, _ = window_of(4, size=4, batch=4)
    window.refill(FakeStream(), encode)
    ack(window, 2)
    stream = FakeStream()
    window.resend(encode(window.unacked()) + encode([2]), stream)
    assert stream.sent == [0, 1, 3] and window.result.frames_resent == 3


def test_the_timeout_waits_for_the_first_ack_then_follows_the_ack_rate():
    window, _ = window_of(4, size=4, batch=4, ack_timeout_s=0.5)
    assert window.timeout_s(4) == FIRST_ACK_TIMEOUT_S
    window.refill(FakeStream(), encode)
    ack(window, 0)
    assert 0.5 <= window.timeout_s(3) < FIRST_ACK_TIMEOUT_S


class _ReplyingStub:
    """A Link stub whose Sync answers ``reply`` (what a tampering relay could send back)."""

    def __init__(self, reply):
        self.reply = reply

    def Sync(self, request, timeout=None):
        return self.reply


@pytest.mark.parametrize("t_d, t_plus", [(5000, 0), (990, 20), (-1, 0)])
def test_sender_refuses_a_sync_reply_outside_the_schedule(untrained_checkpoints, t_d, t_plus):
    from sender.link import LinkFailed, LinkSender, SenderOptions
    from shared.pipeline import Pipeline

    pipeline = Pipeline.load("cifar10", untrained_checkpoints, ("codec",))
    with LinkSender(pipeline, "127.0.0.1:1", SenderOptions()) as sender:
        sender._stub = _ReplyingStub(link_pb2.SyncReply(epoch=1, t_d=t_d, t_plus=t_plus, snr_db=10.0))
        with pytest.raises(LinkFailed, match=rf"\({t_d}, {t_plus}\) is outside"):
            sender.sync()
        sender._stub = _ReplyingStub(link_pb2.SyncReply(epoch=2, t_d=20, t_plus=0, snr_db=10.0))
        assert sender.sync().t_d == 20
