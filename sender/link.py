"""The sending end of the link: sync handshake, diffuse + encode, stream frames, collect acks.

    sync (pilot -> t_D, epoch) -> D(x; t_D) -> F -> z [L] float32 -> Frame ... -> Ack (class, image)

Frames go out in chunks of ``batch`` (at least half a window, or what is left), so that the
receiver's micro-batches stay whole. Reliability: at most ``window`` frames are unacknowledged at a
time; a frame is sent again with
the same id (the receiver answers a known id from its store, so resending is idempotent) when it
is presumed lost:

- at once when ``FAST_RETRANSMIT_AFTER`` frames sent after it (or, at the tail, every frame sent
  after it) have been acked: the receiver answers in arrival order, so it was lost on the way.
  Only acks of frames sent once count (Karn's rule: the ack of a resent frame may answer any of
  its copies, so it says nothing about the order);
- or when nothing moved for it for the retransmission timeout: no ack of a frame queued ahead of
  it since it was sent. The timeout is max(``ack_timeout_s``, 2 x unacked frames x the time per
  ack so far): the frames queued with it (at most all the unacked ones) can take that long, and at
  the tail of a run, with few frames left, it is short. Before the first ack it is at least
  ``FIRST_ACK_TIMEOUT_S`` (the receiver may be warming up).

When the peer is unreachable (UNAVAILABLE) or
has forgotten the session (it restarted), the sender backs off exponentially, syncs again, and
re-diffuses and re-encodes every unacknowledged frame under the new epoch and t_D.
"""
from __future__ import annotations

import itertools
import logging
import queue
import random
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import grpc
import torch

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import GRPC_OPTIONS, error_reason, symbols_to_bytes
from shared.channel import pilot_sequence
from shared.pipeline import Pipeline

from .metrics import sync_histogram
from .options import SenderOptions  # noqa: F401 - part of this module's API

log = logging.getLogger("diffusec.sender")

RETRYABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                   grpc.StatusCode.ABORTED)
RESYNC_REASONS = ("UNKNOWN_SESSION", "UNKNOWN_EPOCH", "EXPIRED_EPOCH")
# A frame is presumed lost once this many frames sent after it have been acked (as TCP's 3 dup acks).
FAST_RETRANSMIT_AFTER = 3
# Until the first ack of a run, frames are resent after at least this many seconds.
FIRST_ACK_TIMEOUT_S = 30.0


class LinkFailed(RuntimeError):
    """The link could not deliver: a fatal status from the peer, or unreachable for too long."""


@dataclass
class Sync:
    """One Sync's answer: the epoch and its timesteps, the SNR (dB) the receiver measured on the pilot."""

    epoch: int
    t_d: int                  # diffusing timesteps the sender uses in this epoch
    t_plus: int               # the receiver's extra denoising steps (t_P = t_D + t_plus)
    snr_db: float
    latency_ms: float         # the round trip
    at_s: float = 0.0         # when the pilot was sent: seconds since the current run() started


@dataclass
class _Pending:
    index: int                 # position in the image set = frame id
    message: link_pb2.Frame
    sent_at: float
    first_sent_at: float
    order: int = 0                 # position in the order of (re)transmissions
    resent: bool = False           # sent more than once: its ack says nothing about order (Karn)
    later_acked: int = 0           # frames sent once, after its last transmission, that have been acked
    waiting_since: float = 0.0     # its last transmission, or the last ack of a frame queued ahead of it


@dataclass
class LinkResult:
    """What came back: one ack per image (None for an image that was never acked)."""

    acks: list
    syncs: list = field(default_factory=list)
    frames_sent: int = 0                # distinct frames transmitted
    frames_resent: int = 0              # retransmissions (timeouts and reconnects)
    duplicate_acks: int = 0             # acks for frames already acked
    reconnects: int = 0
    latencies_ms: list = field(default_factory=list)   # first send -> ack, per frame
    wall_time_s: float = 0.0
    started_at: float = 0.0             # time.perf_counter() when run() started (Sync.at_s counts from it)
    error: str | None = None


class _Stream:
    """One Transmit call: frames go in through a queue, acks come out on a reader thread."""

    def __init__(self, stub: link_pb2_grpc.LinkStub, on_ack: Callable, on_end: Callable):
        self._requests: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.finished = threading.Event()
        self.call = stub.Transmit(self._frames())
        self._on_ack, self._on_end = on_ack, on_end
        self._thread = threading.Thread(target=self._read, name="sender-acks", daemon=True)
        self._thread.start()

    def _frames(self):
        while True:
            frame = self._requests.get()
            if frame is None:
                return
            yield frame

    def _read(self) -> None:
        try:
            for ack in self.call:
                self._on_ack(ack)
        except grpc.RpcError as err:
            self.error = err
        finally:
            self.finished.set()
            self._on_end()

    def send(self, frame: link_pb2.Frame) -> None:
        self._requests.put(frame)

    def close(self, timeout: float = 10.0) -> None:
        """Half-close and wait for the remaining acks."""
        self._requests.put(None)
        self.finished.wait(timeout)

    def cancel(self) -> None:
        self._requests.put(None)
        self.call.cancel()
        self.finished.wait(2.0)


class LinkSender:
    """Sends a set of images over the link to ``address`` (a receiver or a channel proxy)."""

    def __init__(self, pipeline: Pipeline, address: str, options: SenderOptions,
                 on_ack: Callable[[int], None] | None = None):
        self.pipeline, self.address, self.opt = pipeline, address, options
        self.session = options.session or f"sender-{uuid.uuid4().hex[:12]}"
        self.generator = torch.Generator().manual_seed(options.seed)
        self._jitter = random.Random(options.seed)
        self._channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        self._stub = link_pb2_grpc.LinkStub(self._channel)
        self._cond = threading.Condition()
        self._on_ack_count = on_ack or (lambda n: None)
        self._sync: Sync | None = None
        self._sequence = 0
        self._first_send_at: float | None = None  # this run's first frame (s, perf_counter)
        self._run_started = time.perf_counter()   # origin of Sync.at_s (reset by run())
        self._acks = 0                             # distinct acks this run
        self._last_ack_at = 0.0
        self._attempts = 0
        self.result: LinkResult | None = None      # the current (or last) run's, for --metrics
        self.sync_seconds = sync_histogram()       # Sync round trips, observed always (cheap), served with --metrics

    @property
    def acked(self) -> int:
        """Distinct acks of the current run."""
        return self._acks

    @property
    def last_sync(self) -> "Sync | None":
        return self._sync

    # --- sync handshake -------------------------------------------------------------------------
    def sync(self) -> Sync:
        """One Sync round trip: pilot out, (epoch, t_D, t_plus, SNR) back. RpcError on failure."""
        pilot = pilot_sequence(self.session, self._sequence, self.opt.pilot_length)
        request = link_pb2.SyncRequest(session=self.session, sequence=self._sequence,
                                       pilot=symbols_to_bytes(pilot), preset=self.opt.preset)
        self._sequence += 1
        start = time.perf_counter()
        reply = self._stub.Sync(request, timeout=self.opt.sync_timeout_s)
        latency_ms = (time.perf_counter() - start) * 1000.0
        self.sync_seconds.observe(latency_ms / 1000.0)
        expected = self.pipeline.preset.codec.channel_symbols
        if reply.latent_length and reply.latent_length != expected:
            raise LinkFailed(f"the receiver expects {reply.latent_length} symbols per frame but preset "
                             f"{self.opt.preset} sends {expected}; use the receiver's preset ({reply.preset})")
        self._sync = Sync(reply.epoch, reply.t_d, reply.t_plus, reply.snr_db, latency_ms, start - self._run_started)
        return self._sync

    # --- frames ---------------------------------------------------------------------------------
    def _encode(self, images_u8: torch.Tensor, indices: list[int], labels: torch.Tensor | None) -> list[link_pb2.Frame]:
        """Diffuse (current t_D) and encode ``images_u8[indices]`` -> one Frame per image."""
        sync = self._sync
        pixels = images_u8[indices].float().div_(255.0).to(self.pipeline.device)
        z = self.pipeline.encode(self.pipeline.diffuse(pixels, sync.t_d, self.generator)).cpu()
        frames = []
        for row, index in enumerate(indices):
            frame = link_pb2.Frame(frame_id=index, session=self.session, epoch=sync.epoch, t_d=sync.t_d,
                                   latent=symbols_to_bytes(z[row]), shape=[z.shape[1]], dtype="float32",
                                   return_image=self.opt.evaluation)
            if labels is not None and self.opt.evaluation:
                frame.label = int(labels[index])
            frames.append(frame)
        return frames

    def _timeout_s(self, unacked: int) -> float:
        """Seconds without progress after which an unacked frame is presumed lost (see the module doc).

        At most the ``unacked`` frames are queued at the receiver with it, and they take about
        unacked x (time per ack) to be answered; twice that is the timeout.
        """
        if not self._acks or self._first_send_at is None:
            return max(self.opt.ack_timeout_s, FIRST_ACK_TIMEOUT_S)
        per_ack = (self._last_ack_at - self._first_send_at) / self._acks
        return max(self.opt.ack_timeout_s, 2.0 * max(unacked, 1) * per_ack)

    def run(self, images_u8: torch.Tensor, labels: torch.Tensor | None = None) -> LinkResult:
        """Send every image (uint8 [N, C, H, W]) and wait for every ack; raises LinkFailed."""
        n = len(images_u8)
        result = self.result = LinkResult(acks=[None] * n)
        pending: OrderedDict[int, _Pending] = OrderedDict()
        self._first_send_at, self._acks = None, 0
        order = itertools.count()
        started = self._run_started = result.started_at = time.perf_counter()

        def on_ack(ack: link_pb2.Ack) -> None:
            with self._cond:
                if 0 <= ack.frame_id < n and result.acks[ack.frame_id] is None:
                    result.acks[ack.frame_id] = ack
                    item = pending.pop(ack.frame_id, None)
                    now = time.perf_counter()
                    self._acks, self._last_ack_at = self._acks + 1, now
                    if item is not None:
                        result.latencies_ms.append((now - item.first_sent_at) * 1000.0)
                        for other in pending.values():
                            if other.order > item.order:
                                other.waiting_since = now          # queued behind it: the receiver moved on
                            elif not item.resent:
                                other.later_acked += 1             # sent before it, still unacked: lost?
                    self._on_ack_count(1)
                else:
                    result.duplicate_acks += 1
                self._cond.notify_all()

        def on_end() -> None:
            with self._cond:
                self._cond.notify_all()

        stream: _Stream | None = None
        next_index, since_sync, outage_started = 0, 0, None
        try:
            while True:
                # (Re)connect: sync, then (re-)encode every unacknowledged frame under the new epoch.
                if stream is None:
                    try:
                        result.syncs.append(self.sync())
                        since_sync = 0
                        stream = _Stream(self._stub, on_ack, on_end)
                        with self._cond:
                            resend = list(pending)
                        for frame in self._encode(images_u8, resend, labels) if resend else ():
                            with self._cond:
                                item = pending.get(frame.frame_id)
                                if item is None:
                                    continue
                                item.message, item.sent_at = frame, time.perf_counter()
                                item.order, item.resent, item.later_acked = next(order), True, 0
                                item.waiting_since = item.sent_at
                            stream.send(frame)
                            result.frames_resent += 1
                        outage_started = None
                    except grpc.RpcError as err:
                        outage_started = self._retry_or_raise(err, outage_started, result)
                        stream = None
                        continue
                with self._cond:
                    if all(a is not None for a in result.acks):
                        break
                if stream.finished.is_set():
                    err = stream.error
                    stream = None
                    if err is None:  # the peer ended the stream with frames outstanding
                        log.info("the peer ended the stream with %d frames unacknowledged; reconnecting", len(pending))
                        result.reconnects += 1
                        time.sleep(0.1)
                        continue
                    outage_started = self._retry_or_raise(err, outage_started, result)
                    continue
                # Periodic re-sync (paper IV-C: "synchronized at certain intervals").
                if self.opt.sync_every and since_sync >= self.opt.sync_every and next_index < n:
                    try:
                        result.syncs.append(self.sync())
                        since_sync = 0
                    except grpc.RpcError as err:
                        stream.cancel()
                        stream = None
                        outage_started = self._retry_or_raise(err, outage_started, result)
                        continue
                with self._cond:
                    room = self.opt.window - len(pending)
                take = min(self.opt.batch, room, n - next_index)
                # Refill in chunks (half a window at least): single frames sent as single acks come
                # back would split the receiver's micro-batches for the rest of the run.
                if take < min(self.opt.batch, max(1, self.opt.window // 2), n - next_index):
                    take = 0
                if self.opt.sync_every:
                    take = min(take, self.opt.sync_every - since_sync)
                if take > 0:
                    indices = list(range(next_index, next_index + take))
                    frames = self._encode(images_u8, indices, labels)
                    now = time.perf_counter()
                    with self._cond:
                        for frame in frames:
                            pending[frame.frame_id] = _Pending(frame.frame_id, frame, now, now, next(order),
                                                               waiting_since=now)
                        if self._first_send_at is None:
                            self._first_send_at = now
                    for frame in frames:
                        stream.send(frame)
                    next_index += take
                    since_sync += take
                    result.frames_sent += take
                    continue
                # Window full or all sent: resend what timed out, else wait for acks.
                with self._cond:
                    now = time.perf_counter()
                    newest = max((item.order for item in pending.values()), default=-1)
                    # Lost: no ack in time, or acks for FAST_RETRANSMIT_AFTER later frames, or (at the
                    # tail, where fewer follow it) for every frame sent after it.
                    timeout = self._timeout_s(len(pending))
                    late = [item for item in pending.values()
                            if now - item.waiting_since > timeout or item.later_acked >= FAST_RETRANSMIT_AFTER
                            or (item.later_acked and item.order == newest)]
                    for item in late:
                        item.sent_at, item.order, item.resent, item.later_acked = now, next(order), True, 0
                        item.waiting_since = now
                    if not late:
                        self._cond.wait(0.05)
                for item in late:
                    log.debug("frame %d: presumed lost (no ack in time, or later frames acked); resending", item.index)
                    stream.send(item.message)
                    result.frames_resent += 1
            if stream is not None:
                stream.close()
        except BaseException:
            if stream is not None:
                stream.cancel()
            raise
        finally:
            result.wall_time_s = time.perf_counter() - started
        return result

    def _retry_or_raise(self, err: grpc.RpcError, outage_started: float | None, result: LinkResult) -> float:
        """Back off before reconnecting when ``err`` is transient; LinkFailed otherwise."""
        code, reason = err.code(), error_reason(err)
        if code not in RETRYABLE_CODES and reason not in RESYNC_REASONS:
            raise LinkFailed(f"{code.name} from {self.address}: {err.details()}")
        now = time.monotonic()
        outage_started = outage_started or now
        if now - outage_started > self.opt.retry_timeout_s:
            raise LinkFailed(f"{self.address} unreachable for {now - outage_started:.0f} s "
                             f"(last: {code.name}: {err.details()}); is the receiver (or proxy) running?")
        if outage_started == now:
            self._attempts = 0
        attempt, self._attempts = self._attempts, self._attempts + 1
        delay = min(2.0, 0.1 * 2 ** min(attempt, 5)) * (0.5 + self._jitter.random())
        # never sleep past --retry-timeout: the outage is judged right after the deadline
        delay = min(delay, self.opt.retry_timeout_s - (now - outage_started) + 0.01)
        # The first failure of an outage is a warning, so scripts (--json, no terminal) see it at once.
        (log.warning if attempt == 0 else log.info)(
            "link %s (%s); reconnecting in %.2f s (giving up after %g s: --retry-timeout)", code.name,
            reason or err.details(), delay, self.opt.retry_timeout_s)
        result.reconnects += 1
        time.sleep(delay)
        return outage_started

    def close(self) -> None:
        self._channel.close()
