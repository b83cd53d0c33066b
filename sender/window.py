"""The sender's window: the frames of one run that are sent and not yet acked, and when to send one again.

    next images --refill (a chunk)--> in flight (at most ``size``) --ack--> done
                                         `-- presumed lost: sent again, same frame id

Frames go out in chunks of ``batch`` (at least half a window, or what is left), so that the
receiver's micro-batches stay whole. At most ``size`` frames are unacknowledged at a time; a
frame is sent again with the same id (the receiver answers a known id from its store, so resending
is idempotent) when it is presumed lost:

- at once when ``FAST_RETRANSMIT_AFTER`` frames sent after it (or, at the tail, every frame sent
  after it) have been acked: the receiver answers in arrival order, so it was lost on the way.
  Only acks of frames sent once count (Karn's rule: the ack of a resent frame may answer any of
  its copies, so it says nothing about the order);
- or when nothing moved for it for the retransmission timeout: no ack of a frame queued ahead of
  it since it was sent. The timeout is max(``ack_timeout_s``, 2 x unacked frames x the time per
  ack so far): the frames queued with it (at most all the unacked ones) can take that long, and at
  the tail of a run, with few frames left, it is short. Before the first ack it is at least
  ``FIRST_ACK_TIMEOUT_S`` (the receiver may be warming up).

Acks arrive on the stream's reader thread (:meth:`SendWindow.on_ack`); everything else runs on
the sender's thread. Times are ``time.perf_counter()`` seconds.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protos.diffusec.link.v1 import link_pb2

from .result import LinkResult
from .stream import TransmitStream

log = logging.getLogger("diffusec.sender")

# A frame is presumed lost once this many frames sent after it have been acked (as TCP's 3 dup acks).
FAST_RETRANSMIT_AFTER = 3
# Until the first ack of a run, frames are resent after at least this many seconds.
FIRST_ACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Refusal:
    """An ack that completed nothing: the receiver's refusal of a frame (its FrameError), or an ack that
    failed the sender's own check (reason BAD_ACK_MAC)."""

    frame_id: int
    code: str        # grpc.StatusCode name
    reason: str
    message: str


@dataclass
class InFlight:
    """One sent, unacknowledged frame."""

    index: int                 # position in the image set = frame id
    message: link_pb2.Frame
    first_sent_at: float
    order: int = 0                 # position in the order of (re)transmissions
    resent: bool = False           # sent more than once: its ack says nothing about order (Karn)
    later_acked: int = 0           # frames sent once, after its last transmission, that have been acked
    waiting_since: float = 0.0     # its last transmission, or the last ack of a frame queued ahead of it


class SendWindow:
    """The in-flight frames of one run over ``len(result.acks)`` images; records into ``result``
    (acks, latencies, frames sent and resent, duplicate acks). ``on_ack_count(1)`` per new ack."""

    def __init__(self, result: LinkResult, size: int, batch: int, ack_timeout_s: float,
                 on_ack_count: Callable[[int], None]):
        self.result = result
        self.size, self.batch, self.ack_timeout_s = size, batch, ack_timeout_s
        self.next_index = 0                  # the first image not sent yet
        self.acked = 0                       # distinct acks
        self._pending: OrderedDict[int, InFlight] = OrderedDict()   # frame id -> frame
        self._order = itertools.count()      # numbers every (re)transmission
        self._cond = threading.Condition()   # guards _pending and the ack tallies; notified on every ack
        self._on_ack_count = on_ack_count
        self._first_send_at: float | None = None
        self._last_ack_at = 0.0
        self._refusals: list[Refusal] = []

    # --- the stream's reader thread -------------------------------------------------------------
    def on_ack(self, ack: link_pb2.Ack) -> None:
        """Record ``ack``: the first one of a frame completes it, any other is a duplicate."""
        with self._cond:
            acks = self.result.acks
            if 0 <= ack.frame_id < len(acks) and acks[ack.frame_id] is None:
                acks[ack.frame_id] = ack
                self._complete(ack.frame_id)
                self._on_ack_count(1)
            else:
                self.result.duplicate_acks += 1
            self._cond.notify_all()

    def _complete(self, frame_id: int) -> None:
        """Frame ``frame_id`` is acked: what that says about the frames still in flight (lock held)."""
        item = self._pending.pop(frame_id, None)
        now = time.perf_counter()
        self.acked, self._last_ack_at = self.acked + 1, now
        if item is None:
            return
        self.result.latencies_ms.append((now - item.first_sent_at) * 1000.0)
        for other in self._pending.values():
            if other.order > item.order:
                other.waiting_since = now          # queued behind it: the receiver moved on
            elif not item.resent:
                other.later_acked += 1             # sent before it, still unacked: lost?

    def refuse(self, refusal: Refusal) -> None:
        """Record an ack that completes nothing: the receiver refused the frame, or the ack failed its check.
        The frame stays in flight; the sender's thread takes the refusals (:meth:`take_refusals`) and acts."""
        with self._cond:
            self._refusals.append(refusal)
            self.result.count_refusal(refusal.reason)
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake the sender from its wait for acks (the stream ended)."""
        with self._cond:
            self._cond.notify_all()

    # --- the sender's thread --------------------------------------------------------------------
    def take_refusals(self) -> list[Refusal]:
        """The refusals since the last call, whose frames are still unacked."""
        with self._cond:
            refusals, self._refusals = self._refusals, []
            return [r for r in refusals if r.frame_id in self._pending]

    def complete(self) -> bool:
        """Every image acked."""
        with self._cond:
            return self.acked == len(self.result.acks)

    def idle_s(self, since: float) -> float | None:
        """Seconds without an ack while frames are in flight, counted from the last ack or ``since``
        (a perf_counter time, e.g. the last reconnect), whichever is later; None when none is in flight."""
        with self._cond:
            if not self._pending:
                return None
            return time.perf_counter() - max(self._last_ack_at, since)

    def all_sent(self) -> bool:
        """Every image has gone out at least once."""
        return self.next_index >= len(self.result.acks)

    def unacked(self) -> list[int]:
        """Frame ids sent and not acked, in the order they were first sent."""
        with self._cond:
            return list(self._pending)

    def message(self, frame_id: int) -> link_pb2.Frame | None:
        """The last copy sent of frame ``frame_id``; None when it is no longer in flight."""
        with self._cond:
            item = self._pending.get(frame_id)
            return None if item is None else item.message

    def refill(self, stream: TransmitStream, encode: Callable[[list[int]], list[link_pb2.Frame]],
               limit: int | None = None) -> int:
        """Send the next chunk of new frames when there is room for one -> how many were sent (0: none).

        ``encode(indices)`` -> one Frame per image index; ``limit``: at most this many (the frames
        left before a periodic Sync is due), None for no limit.
        """
        take = self._chunk(limit)
        if take <= 0:
            return 0
        frames = encode(list(range(self.next_index, self.next_index + take)))
        now = time.perf_counter()
        with self._cond:
            for frame in frames:
                self._pending[frame.frame_id] = InFlight(frame.frame_id, frame, now, next(self._order),
                                                         waiting_since=now)
            if self._first_send_at is None:
                self._first_send_at = now
        for frame in frames:
            stream.send(frame)
        self.next_index += take
        self.result.frames_sent += take
        return take

    def _chunk(self, limit: int | None) -> int:
        """How many new frames to send now (0 while the window lacks room for a chunk)."""
        left = len(self.result.acks) - self.next_index
        with self._cond:
            room = self.size - len(self._pending)
        take = min(self.batch, room, left)
        # Refill in chunks (half a window at least): single frames sent as single acks come
        # back would split the receiver's micro-batches for the rest of the run.
        if take < min(self.batch, max(1, self.size // 2), left):
            take = 0
        return take if limit is None else min(take, limit)

    def resend(self, frames: list[link_pb2.Frame], stream: TransmitStream) -> None:
        """Send ``frames`` (unacked ones, re-encoded after a reconnect) in place of their earlier copies."""
        for frame in frames:
            with self._cond:
                item = self._pending.get(frame.frame_id)
                if item is None:   # acked meanwhile
                    continue
                item.message = frame
                self._mark_sent(item, time.perf_counter())
            stream.send(frame)
            self.result.frames_resent += 1

    def resend_lost_or_wait(self, stream: TransmitStream) -> None:
        """Send every frame presumed lost again (see the module doc); when none is, wait up to 50 ms for an ack."""
        with self._cond:
            now = time.perf_counter()
            lost = self._presumed_lost(now)
            for item in lost:
                self._mark_sent(item, now)
            if not lost:
                self._cond.wait(0.05)
        for item in lost:
            log.debug("frame %d: presumed lost (no ack in time, or later frames acked); resending", item.index)
            stream.send(item.message)
            self.result.frames_resent += 1

    def _presumed_lost(self, now: float) -> list[InFlight]:
        """No ack in time, or acks for FAST_RETRANSMIT_AFTER later frames, or (at the tail, where
        fewer follow it) for every frame sent after it (lock held)."""
        newest = max((item.order for item in self._pending.values()), default=-1)
        timeout = self.timeout_s(len(self._pending))
        return [item for item in self._pending.values()
                if now - item.waiting_since > timeout or item.later_acked >= FAST_RETRANSMIT_AFTER
                or (item.later_acked and item.order == newest)]

    def _mark_sent(self, item: InFlight, now: float) -> None:
        """``item`` goes out again at ``now``: last in the order, and its ack no longer tells the order (Karn)."""
        item.order, item.resent, item.later_acked = next(self._order), True, 0
        item.waiting_since = now

    def timeout_s(self, unacked: int) -> float:
        """Seconds without progress after which an unacked frame is presumed lost (see the module doc).

        At most the ``unacked`` frames are queued at the receiver with it, and they take about
        unacked x (time per ack) to be answered; twice that is the timeout.
        """
        if not self.acked or self._first_send_at is None:
            return max(self.ack_timeout_s, FIRST_ACK_TIMEOUT_S)
        per_ack = (self._last_ack_at - self._first_send_at) / self.acked
        return max(self.ack_timeout_s, 2.0 * max(unacked, 1) * per_ack)
