"""The sending end of the link: sync handshake, diffuse + encode, stream frames, collect acks.

    sync (pilot -> t_D, epoch) -> D(x; t_D) -> F -> z [L] float32 -> Frame ... -> Ack (class, image)

:meth:`LinkSender.run` is one loop over a :class:`sender.window.SendWindow`, which owns the
frames in flight: it refills the window in chunks, resends what it presumes lost (see
:mod:`sender.window` for when), and waits for acks. Around it the loop keeps the link up:

- reconnect: when the peer is unreachable (UNAVAILABLE) or has forgotten the session (it
  restarted), the sender backs off exponentially, syncs again, opens a new Transmit stream, and
  re-diffuses and re-encodes every unacknowledged frame under the new epoch and t_D;
- resync: with ``sync_every`` K, a Sync after every K new frames (paper IV-C: "synchronized at
  certain intervals"); new frames use its t_D, frames in flight keep theirs.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable

import grpc
import torch

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.wire import GRPC_OPTIONS, error_reason, symbols_to_bytes
from shared.channel import pilot_sequence
from shared.pipeline import Pipeline

from .metrics import sync_histogram
from .options import SenderOptions
from .result import LinkResult, Sync
from .stream import TransmitStream
from .window import SendWindow

__all__ = ["LinkFailed", "LinkResult", "LinkSender", "SenderOptions", "Sync"]

log = logging.getLogger("diffusec.sender")

RETRYABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                   grpc.StatusCode.ABORTED)
RESYNC_REASONS = ("UNKNOWN_SESSION", "UNKNOWN_EPOCH", "EXPIRED_EPOCH")


class LinkFailed(RuntimeError):
    """The link could not deliver: a fatal status from the peer, or unreachable for too long."""


def _check_timesteps(t_d: int, t_plus: int, num_timesteps: int) -> None:
    """A SyncReply's (t_D, t_plus) must satisfy 0 <= t_D, 0 <= t_plus, t_D + t_plus <= T; anything else
    came from a broken receiver or an on-path relay, and diffusing with it would crash (t_D > T) or
    hang the sender (issue 17). LinkFailed, naming the values."""
    if t_d < 0 or t_plus < 0 or t_d + t_plus > num_timesteps:
        raise LinkFailed(f"the SyncReply's (t_D, t_plus) = ({t_d}, {t_plus}) is outside 0 <= t_D + t_plus <= "
                         f"T = {num_timesteps}; the receiver or something on the path sent it. Not sending with it")


class LinkSender:
    """Sends a set of images over the link to ``address`` (a receiver or a channel proxy).

    ``with LinkSender(...) as sender: result = sender.run(images, labels)`` closes the channel after.
    """

    def __init__(self, pipeline: Pipeline, address: str, options: SenderOptions,
                 on_ack: Callable[[int], None] | None = None):
        self.pipeline, self.address, self.opt = pipeline, address, options
        self.session = options.session or f"sender-{uuid.uuid4().hex[:12]}"
        self.generator = torch.Generator().manual_seed(options.seed)
        self._jitter = random.Random(options.seed)
        self._channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        self._stub = link_pb2_grpc.LinkStub(self._channel)
        self._on_ack_count = on_ack or (lambda n: None)
        self._sync: Sync | None = None
        self._sequence = 0
        self._run_started = time.perf_counter()   # origin of Sync.at_s (reset by run())
        self._window: SendWindow | None = None     # the current (or last) run's
        self._since_sync = 0                       # new frames sent since the last Sync
        self._outage_started: float | None = None  # time.monotonic() of the current outage's first failure
        self._attempts = 0
        self.result: LinkResult | None = None      # the current (or last) run's, for --metrics
        self.sync_seconds = sync_histogram()       # Sync round trips, observed always (cheap), served with --metrics

    @property
    def acked(self) -> int:
        """Distinct acks of the current run."""
        return self._window.acked if self._window else 0

    @property
    def last_sync(self) -> Sync | None:
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
        _check_timesteps(reply.t_d, reply.t_plus, self.pipeline.schedule.num_timesteps)
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

    # --- a run ----------------------------------------------------------------------------------
    def run(self, images_u8: torch.Tensor, labels: torch.Tensor | None = None) -> LinkResult:
        """Send every image (uint8 [N, C, H, W]) and wait for every ack; raises LinkFailed."""
        result, window = self._start_run(len(images_u8))

        def encode(indices: list[int]) -> list[link_pb2.Frame]:
            return self._encode(images_u8, indices, labels)

        stream: TransmitStream | None = None
        try:
            while True:
                if stream is None:
                    stream = self._reconnect(encode)
                    continue
                if window.complete():
                    break
                if stream.finished.is_set():
                    ended, stream = stream, None
                    self._after_stream_end(ended.error)
                    continue
                error = self._resync_if_due()
                if error is not None:
                    stream.cancel()
                    stream = None
                    self._back_off(error)
                    continue
                sent = window.refill(stream, encode, self._frames_before_resync())
                self._since_sync += sent
                if not sent:   # window full or all sent
                    window.resend_lost_or_wait(stream)
            stream.close()
        except BaseException:
            if stream is not None:
                stream.cancel()
            raise
        finally:
            result.wall_time_s = time.perf_counter() - result.started_at
        return result

    def _start_run(self, n: int) -> tuple[LinkResult, SendWindow]:
        """A fresh result and window for ``n`` images; Sync times count from now."""
        self.result = LinkResult(acks=[None] * n)
        self._window = SendWindow(self.result, self.opt.window, self.opt.batch, self.opt.ack_timeout_s,
                                  self._on_ack_count)
        self._since_sync, self._outage_started = 0, None
        self._run_started = self.result.started_at = time.perf_counter()
        return self.result, self._window

    def _reconnect(self, encode: Callable[[list[int]], list[link_pb2.Frame]]) -> TransmitStream | None:
        """Sync, open a Transmit stream, send every unacked frame again re-encoded under the new epoch.

        -> the stream; None when the peer failed (after backing off; LinkFailed when it is fatal).
        """
        try:
            self.result.syncs.append(self.sync())
            self._since_sync = 0
            stream = TransmitStream(self._stub, self._window.on_ack, self._window.wake)
            unacked = self._window.unacked()
            if unacked:
                self._window.resend(encode(unacked), stream)
            self._outage_started = None
            return stream
        except grpc.RpcError as err:
            self._back_off(err)
            return None

    def _after_stream_end(self, error: grpc.RpcError | None) -> None:
        """The stream ended before every ack came: back off on an error, else reconnect shortly."""
        if error is not None:
            self._back_off(error)
            return
        log.info("the peer ended the stream with %d frames unacknowledged; reconnecting", len(self._window.unacked()))
        self.result.reconnects += 1
        time.sleep(0.1)

    def _resync_if_due(self) -> grpc.RpcError | None:
        """The periodic Sync, once ``sync_every`` new frames went out under the last one (and more are
        to come) -> the RpcError when it failed, else None."""
        due = self.opt.sync_every and self._since_sync >= self.opt.sync_every
        if not due or self._window.all_sent():
            return None
        try:
            self.result.syncs.append(self.sync())
        except grpc.RpcError as err:
            return err
        self._since_sync = 0
        return None

    def _frames_before_resync(self) -> int | None:
        """New frames that may go out before the next periodic Sync (None: no periodic Syncs)."""
        return self.opt.sync_every - self._since_sync if self.opt.sync_every else None

    def _back_off(self, err: grpc.RpcError) -> None:
        """Sleep before reconnecting when ``err`` is transient; LinkFailed when it is fatal or the outage
        has lasted past ``retry_timeout_s``."""
        code, reason = err.code(), error_reason(err)
        if code not in RETRYABLE_CODES and reason not in RESYNC_REASONS:
            raise LinkFailed(f"{code.name} from {self.address}: {err.details()}")
        now = time.monotonic()
        outage_started = self._outage_started = self._outage_started or now
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
        self.result.reconnects += 1
        time.sleep(delay)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LinkSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
