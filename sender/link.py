"""The sending end of the link: sync handshake, diffuse + encode, stream frames, collect acks.

    sync (pilot -> t_D, epoch) -> D(x; t_D) -> F -> z [L] float32 -> Frame ... -> Ack (class, image)

:meth:`LinkSender.run` is one loop over a :class:`sender.window.SendWindow`, which owns the
frames in flight: it refills the window in chunks, resends what it presumes lost (see
:mod:`sender.window` for when), and waits for acks. Around it the loop keeps the link up:

- reconnect: when the peer is unreachable (UNAVAILABLE) or has forgotten the session (it
  restarted), the sender backs off exponentially, syncs again, opens a new Transmit stream, and
  re-diffuses and re-encodes every unacknowledged frame under the new epoch and t_D;
- resync: with ``sync_every`` K, a Sync after every K new frames (paper IV-C: "synchronized at
  certain intervals"); new frames use its t_D, frames in flight keep theirs;
- refusals: an ack that completes nothing (the receiver refused the frame, or, with a link key,
  the ack's MAC is wrong) leaves its frame in flight. A frame refused for its session, epoch, t_d
  or MAC is sent again re-encoded after a fresh Sync; one whose ack was forged is sent again as
  it was (the receiver answers from its store); any other refusal is the sender's own fault and
  ends the run (LinkFailed).

Every failure (an RPC error, a refusal, a SyncReply that fails its check) counts towards the
outage; an outage that lasts ``retry_timeout_s`` without a new ack ends the run.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import torch

from protos.auth import LinkAuth
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.tls import PLAINTEXT, TlsFiles, open_channel
from protos.wire import GRPC_OPTIONS, error_reason, symbols_to_bytes
from shared.channel import pilot_sequence
from shared.pilot_aided import check_frame_pilot, frame_pilot_real
from shared.pipeline import Pipeline
from shared.row_noise import RowNoise

from .metrics import sync_histogram
from .options import SenderOptions
from .result import LinkResult, Sync
from .stream import TransmitStream
from .window import Refusal, SendWindow

__all__ = ["LinkFailed", "LinkResult", "LinkSender", "SenderOptions", "Sync"]

log = logging.getLogger("diffusec.sender")

RETRYABLE_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "ABORTED")   # transient: try again
RESYNC_REASONS = ("UNKNOWN_SESSION", "UNKNOWN_EPOCH", "EXPIRED_EPOCH")
# Refusals a correct sender cannot cause (something on the path changed the frame or the Sync it
# answered): re-sync, re-encode and send again.
TAMPER_REASONS = ("BAD_FRAME_MAC", "BAD_SYNC_MAC", "REPLAYED_SYNC", "TIMESTEP_MISMATCH")
# Refusals answered by sending the same frame again: a forged ack, a frame dropped with an ended
# stream, a receiver fault.
RESEND_REASONS = ("BAD_ACK_MAC", "CANCELLED", "PROCESSING_FAILED")


class LinkFailed(RuntimeError):
    """The link could not deliver: a fatal status from the peer, or unreachable for too long."""


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed: a status name, the machine-readable reason ("" if none), the details."""

    code: str
    reason: str
    details: str
    lasted_s: float = 0.0     # how long it had gone on when noticed (a stall): the outage starts that much earlier

    @classmethod
    def of_rpc(cls, err: grpc.RpcError) -> Failure:
        return cls(err.code().name, error_reason(err) or "", err.details() or "")

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES or self.code == "UNAUTHENTICATED" or self.reason in (
            RESYNC_REASONS + TAMPER_REASONS + RESEND_REASONS)


class SyncRefused(Exception):
    """The SyncReply failed the sender's check (its MAC): not acted on, the Sync is tried again."""

    def __init__(self, failure: Failure):
        super().__init__(failure.details)
        self.failure = failure


def _check_timesteps(t_d: int, t_plus: int, num_timesteps: int) -> None:
    """A SyncReply's (t_D, t_plus) must satisfy 0 <= t_D, 0 <= t_plus, t_D + t_plus <= T; anything else
    came from a broken receiver or an on-path relay, and diffusing with it would crash (t_D > T) or
    hang the sender (issue 17). LinkFailed, naming the values."""
    if t_d < 0 or t_plus < 0 or t_d + t_plus > num_timesteps:
        raise LinkFailed(f"the SyncReply's (t_D, t_plus) = ({t_d}, {t_plus}) is outside 0 <= t_D + t_plus <= "
                         f"T = {num_timesteps}; the receiver or something on the path sent it. Not sending with it")


def _check_frame_pilot(symbols: int, blocks: int) -> None:
    """A SyncReply's frame-pilot request: none (0, 0) or one in range; anything else is refused, not sent."""
    if (symbols, blocks) == (0, 0):
        return
    try:
        check_frame_pilot(symbols, blocks)
    except ValueError as err:
        raise LinkFailed(f"the SyncReply asks for {err}; the receiver or something on the path sent it") from None


class LinkSender:
    """Sends a set of images over the link to ``address`` (a receiver or a channel proxy).

    ``with LinkSender(...) as sender: result = sender.run(images, labels)`` closes the channel after.
    """

    def __init__(self, pipeline: Pipeline, address: str, options: SenderOptions,
                 on_ack: Callable[[int], None] | None = None, auth: LinkAuth | None = None,
                 tls: TlsFiles = PLAINTEXT):
        """``auth``: signs syncs and frames and checks replies and acks under the link key (None: no key);
        ``tls``: TLS to ``address`` (mutual with a certificate)."""
        self.pipeline, self.address, self.opt = pipeline, address, options
        self.auth = auth
        self.session = options.session or f"sender-{uuid.uuid4().hex[:12]}"
        self._jitter = random.Random(options.seed)
        self._channel = open_channel(address, tls, GRPC_OPTIONS)
        self._stub = link_pb2_grpc.LinkStub(self._channel)
        self._on_ack_count = on_ack or (lambda n: None)
        self._sync: Sync | None = None
        self._sequence = 0
        self._run_started = time.perf_counter()   # origin of Sync.at_s (reset by run())
        self._window: SendWindow | None = None     # the current (or last) run's
        self._since_sync = 0                       # new frames sent since the last Sync
        self._outage_started: float | None = None  # time.monotonic() of the current outage's first failure
        self._outage_acked = 0                     # acks when it started: a new ack ends it
        self._attempts = 0
        self._connected_at = 0.0                   # time.perf_counter() of the last (re)connect
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
        """One Sync round trip: pilot out, (epoch, t_D, t_plus, SNR) back. RpcError on failure; SyncRefused
        when the reply fails its MAC check (with a link key)."""
        pilot = pilot_sequence(self.session, self._sequence, self.opt.pilot_length)
        request = link_pb2.SyncRequest(session=self.session, sequence=self._sequence,
                                       pilot=symbols_to_bytes(pilot), preset=self.opt.preset)
        if self.auth is not None:
            self.auth.sign_sync_request(request)
        self._sequence += 1
        start = time.perf_counter()
        reply = self._stub.Sync(request, timeout=self.opt.sync_timeout_s)
        latency_ms = (time.perf_counter() - start) * 1000.0
        self.sync_seconds.observe(latency_ms / 1000.0)
        if self.auth is not None and not self.auth.sync_reply_valid(self.session, request.sequence, reply):
            if self.result is not None:
                self.result.count_refusal("BAD_SYNC_REPLY_MAC")
            raise SyncRefused(Failure("UNAUTHENTICATED", "BAD_SYNC_REPLY_MAC",
                                      f"the SyncReply's MAC is missing or wrong (t_D = {reply.t_d} claimed): changed "
                                      f"on the way, or the receiver has no or another link key"))
        expected = self.pipeline.preset.codec.channel_symbols
        if reply.latent_length and reply.latent_length != expected:
            raise LinkFailed(f"the receiver expects {reply.latent_length} symbols per frame but preset "
                             f"{self.opt.preset} sends {expected}; use the receiver's preset ({reply.preset})")
        _check_timesteps(reply.t_d, reply.t_plus, self.pipeline.schedule.num_timesteps)
        _check_frame_pilot(reply.frame_pilot_symbols, reply.frame_pilot_blocks)
        self._sync = Sync(reply.epoch, reply.t_d, reply.t_plus, reply.snr_db, latency_ms, start - self._run_started,
                          reply.frame_pilot_symbols, reply.frame_pilot_blocks)
        return self._sync

    # --- frames ---------------------------------------------------------------------------------
    def _encode(self, images_u8: torch.Tensor, indices: list[int], labels: torch.Tensor | None) -> list[link_pb2.Frame]:
        """Diffuse (current t_D) and encode ``images_u8[indices]`` -> one Frame per image."""
        sync = self._sync
        pixels = images_u8[indices].float().div_(255.0).to(self.pipeline.device)
        # One noise stream per image, seeded from (seed, image index): a frame re-encoded after a
        # re-sync, or sent in another chunk, is diffused with the same noise (runs repeat).
        noise = RowNoise.for_keys([(self.opt.seed, "diffuse", index) for index in indices])
        z = self.pipeline.encode(self.pipeline.diffuse(pixels, sync.t_d, noise)).cpu()
        frames = []
        for row, index in enumerate(indices):
            frame = link_pb2.Frame(frame_id=index, session=self.session, epoch=sync.epoch, t_d=sync.t_d,
                                   latent=symbols_to_bytes(z[row]), shape=[z.shape[1]], dtype="float32",
                                   return_image=self.opt.evaluation)
            if labels is not None and self.opt.evaluation:
                frame.label = int(labels[index])
            if sync.frame_pilot_blocks:   # a coherent receiver asked for one
                frame.pilot = symbols_to_bytes(frame_pilot_real(index, sync.frame_pilot_symbols,
                                                                sync.frame_pilot_blocks))
                frame.pilot_blocks = sync.frame_pilot_blocks
            if self.auth is not None:
                self.auth.sign_frame(frame)
            frames.append(frame)
        return frames

    # --- a run ----------------------------------------------------------------------------------
    def run(self, images_u8: torch.Tensor, labels: torch.Tensor | None = None) -> LinkResult:
        """Send every image (uint8 [N, C, H, W]) and wait for every ack; raises LinkFailed (``self.result``
        then holds what was acked)."""
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
                failure = self._stalled() or self._resync_if_due() or self._answer_refusals(stream, encode)
                if failure is not None:
                    stream.cancel()
                    stream = None
                    self._back_off(failure)
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
        self._since_sync, self._outage_started, self._outage_acked = 0, None, 0
        self._run_started = self.result.started_at = time.perf_counter()
        return self.result, self._window

    def _on_ack(self, ack: link_pb2.Ack) -> None:
        """An ack off the stream (reader thread): a refusal, one that fails its MAC check, or a result."""
        if self.auth is not None and not self.auth.ack_valid(self.session, ack):
            self._window.refuse(Refusal(ack.frame_id, "UNAUTHENTICATED", "BAD_ACK_MAC",
                                        f"the ack of frame {ack.frame_id} fails its MAC check: forged or changed "
                                        f"on the way"))
        elif ack.HasField("error"):
            self._window.refuse(Refusal(ack.frame_id, ack.error.code, ack.error.reason, ack.error.message))
        else:
            self._window.on_ack(ack)

    def _open_stream(self) -> TransmitStream:
        return TransmitStream(self._stub, self._on_ack, self._window.wake)

    def _reconnect(self, encode: Callable[[list[int]], list[link_pb2.Frame]]) -> TransmitStream | None:
        """Sync, open a Transmit stream, send every unacked frame again re-encoded under the new epoch.

        -> the stream; None when the peer failed (after backing off; LinkFailed when it is fatal).
        """
        failure = self._sync_now()
        if failure is not None:
            self._back_off(failure)
            return None
        stream = self._open_stream()
        self._connected_at = time.perf_counter()
        unacked = self._window.unacked()
        if unacked:
            self._window.resend(encode(unacked), stream)
        return stream

    def _after_stream_end(self, error: grpc.RpcError | None) -> None:
        """The stream ended before every ack came: back off on an error, else reconnect shortly."""
        if error is not None:
            self._back_off(Failure.of_rpc(error))
            return
        log.info("the peer ended the stream with %d frames unacknowledged; reconnecting", len(self._window.unacked()))
        self.result.reconnects += 1
        time.sleep(0.1)

    def _stalled(self) -> Failure | None:
        """A Failure when frames are in flight and no ack has come for a third of ``retry_timeout_s`` (at
        least 1 s) since the last ack or (re)connect: the peer or the path may be frozen with the
        connection still open. The caller reconnects; the outage counts from the last progress."""
        idle_s = self._window.idle_s(self._connected_at)
        if idle_s is None or idle_s < max(1.0, self.opt.retry_timeout_s / 3):
            return None
        return Failure("DEADLINE_EXCEEDED", "NO_ACKS", f"no ack for {idle_s:.1f} s with {len(self._window.unacked())} "
                                                       f"frames in flight", lasted_s=idle_s)

    def _resync_if_due(self) -> Failure | None:
        """The periodic Sync, once ``sync_every`` new frames went out under the last one (and more are
        to come) -> why it failed, else None."""
        due = self.opt.sync_every and self._since_sync >= self.opt.sync_every
        if not due or self._window.all_sent():
            return None
        return self._sync_now()

    def _sync_now(self) -> Failure | None:
        """A Sync, recorded -> why it failed, else None."""
        try:
            self.result.syncs.append(self.sync())
        except grpc.RpcError as err:
            return Failure.of_rpc(err)
        except SyncRefused as err:
            return err.failure
        self._since_sync = 0
        return None

    def _answer_refusals(self, stream: TransmitStream, encode) -> Failure | None:
        """Act on the refusals since the last look (see the module doc) -> a Failure when the Sync they
        called for failed (the caller reconnects); LinkFailed when one is the sender's own fault."""
        refusals = self._window.take_refusals()
        if not refusals:
            return None
        first = refusals[0]
        failure = Failure(first.code, first.reason, f"frame {first.frame_id} refused: {first.message}")
        if not failure.retryable:
            raise LinkFailed(f"{first.code} ({first.reason}) from {self.address}: {first.message}")
        self._back_off(failure, reconnect=False)
        ids = sorted({r.frame_id for r in refusals})
        if any(r.reason in RESYNC_REASONS + TAMPER_REASONS for r in refusals):
            sync_failure = self._sync_now()
            if sync_failure is not None:
                return sync_failure
            self._window.resend(encode(ids), stream)
        else:
            self._window.resend([m for m in map(self._window.message, ids) if m is not None], stream)
        return None

    def _frames_before_resync(self) -> int | None:
        """New frames that may go out before the next periodic Sync (None: no periodic Syncs)."""
        return self.opt.sync_every - self._since_sync if self.opt.sync_every else None

    def _back_off(self, failure: Failure, reconnect: bool = True) -> None:
        """Sleep before trying again when ``failure`` is transient; LinkFailed when it is fatal or the
        outage (failures with no new ack between them) has lasted past ``retry_timeout_s``."""
        if not failure.retryable:
            raise LinkFailed(f"{failure.code} from {self.address}: {failure.details}")
        now = time.monotonic()
        acked = self._window.acked if self._window else 0
        if self._outage_started is None or acked > self._outage_acked:
            self._outage_started, self._outage_acked, self._attempts = now - failure.lasted_s, acked, 0
        outage_started = self._outage_started
        if now - outage_started > self.opt.retry_timeout_s:
            raise LinkFailed(f"no progress with {self.address} for {now - outage_started:.0f} s (last: {failure.code}"
                             f"{f' {failure.reason}' if failure.reason else ''}: {failure.details}); is the receiver "
                             f"(or proxy) running, and is anything on the path changing the link's messages?")
        attempt, self._attempts = self._attempts, self._attempts + 1
        delay = min(2.0, 0.1 * 2 ** min(attempt, 5)) * (0.5 + self._jitter.random())
        # never sleep past --retry-timeout: the outage is judged right after the deadline
        delay = min(delay, self.opt.retry_timeout_s - (now - outage_started) + 0.01)
        # The first failure of an outage is a warning, so scripts (--json, no terminal) see it at once.
        (log.warning if attempt == 0 else log.info)(
            "link %s (%s); trying again in %.2f s (giving up after %g s without progress: --retry-timeout)",
            failure.code, failure.reason or failure.details, delay, self.opt.retry_timeout_s)
        self.result.reconnects += int(reconnect)
        time.sleep(delay)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LinkSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
