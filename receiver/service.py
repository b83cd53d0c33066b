"""gRPC front of the receiver: the ``Link`` servicer (proto <-> domain only) and the server.

Every frame gets an ack: a refused one (a bad header, an unknown epoch, a wrong MAC) an ack whose
``error`` says why, and the stream goes on. Frames of a stream whose client has gone are dropped
from the queue before they reach the models.
"""
from __future__ import annotations

import logging
import queue
import threading
from concurrent import futures
from concurrent.futures import Future

import grpc

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.serving import SERVER_OPTIONS, add_health, bind, set_serving
from protos.tls import PLAINTEXT, TlsFiles
from protos.wire import REASON_KEY

from .engine import AckOut, FrameIn, Receiver
from .errors import LinkError
from .guard import LinkGuard

log = logging.getLogger("diffusec.receiver")

LINK_SERVICE = link_pb2.DESCRIPTOR.services_by_name["Link"].full_name


def abort(context: grpc.ServicerContext, err: LinkError) -> None:
    """End the call with the error's status, message and ``diffusec-reason`` trailing metadata."""
    context.set_trailing_metadata(((REASON_KEY, err.reason),))
    context.abort(grpc.StatusCode[err.code], err.message)


def ack_message(ack: AckOut, duplicate: bool) -> link_pb2.Ack:
    return link_pb2.Ack(frame_id=ack.frame_id, predicted_class=ack.predicted_class, t_p=ack.t_p, epoch=ack.epoch,
                        t_d=ack.t_d, image=ack.image, image_shape=list(ack.image_shape), duplicate=duplicate)


def refusal_ack(frame_id: int, err: LinkError) -> link_pb2.Ack:
    """The ack of a frame the receiver refused: its id and why (the stream goes on)."""
    return link_pb2.Ack(frame_id=frame_id, error=link_pb2.FrameError(code=err.code, reason=err.reason,
                                                                      message=err.message))


def outcome_ack(frame_id: int, future: Future, duplicate: bool) -> link_pb2.Ack:
    """The ack of an admitted frame once its future is done: the result, or why there is none."""
    if future.cancelled():   # queued for a stream that has gone, and this was a resend joining it
        return refusal_ack(frame_id, LinkError("ABORTED", "CANCELLED", f"frame {frame_id} was dropped with the stream "
                                                                       f"that first sent it; resend it"))
    if future.exception() is not None:
        log.error("frame %d: processing failed", frame_id, exc_info=future.exception())
        return refusal_ack(frame_id, LinkError("INTERNAL", "PROCESSING_FAILED",
                                               f"the receiver failed on frame {frame_id}: {future.exception()}"))
    return ack_message(future.result(), duplicate)


def frame_in(frame: link_pb2.Frame) -> FrameIn:
    return FrameIn(frame.frame_id, frame.session, frame.epoch, frame.t_d, frame.latent, tuple(frame.shape),
                   frame.dtype, frame.label if frame.HasField("label") else None, frame.return_image, frame.pilot,
                   frame.pilot_blocks)


class _EndOfInput:
    def __init__(self, submitted: int):
        self.submitted = submitted


class _StreamFrames:
    """The frames one Transmit stream queued for the models, until they are done; cancelled when the
    client goes away (the batcher skips cancelled frames)."""

    def __init__(self):
        self._queued: set[Future] = set()
        self._lock = threading.Lock()

    def track(self, future: Future) -> None:
        with self._lock:
            self._queued.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        with self._lock:
            self._queued.discard(future)

    def cancel(self) -> None:
        with self._lock:
            queued = list(self._queued)
        dropped = sum(future.cancel() for future in queued)
        if dropped:
            log.info("a Transmit stream ended with %d frames queued; dropped them", dropped)


class LinkServicer(link_pb2_grpc.LinkServicer):
    """Sync and Transmit, delegating to :class:`receiver.engine.Receiver`; ``guard`` checks and signs
    the messages (with a link key)."""

    def __init__(self, receiver: Receiver, guard: LinkGuard | None = None):
        self.receiver = receiver
        self.guard = guard or LinkGuard(None)

    def Sync(self, request, context):
        try:
            self.guard.check_sync(request)
            epoch, timing = self.receiver.sync_timed(request.session, request.sequence, request.pilot, request.preset)
        except LinkError as err:
            abort(context, err)
        timing = link_pb2.SyncTiming(receiver_us=timing.total_us, snr_estimate_us=timing.snr_estimate_us,
                                     policy_us=timing.policy_us)
        # Senders number syncs 0, 1, 2, ...: make the next pilot (and the policy's next decision) once
        # this reply is on its way.
        length = len(request.pilot) // 4
        context.add_callback(lambda: self.receiver.after_sync(request.session, request.sequence, length, epoch))
        reply = link_pb2.SyncReply(epoch=epoch.number, t_d=epoch.t_d, t_plus=epoch.t_plus, snr_db=epoch.snr_db,
                                   policy=self.receiver.policy.name, preset=self.receiver.preset.name,
                                   latent_length=self.receiver.latent_length,
                                   num_timesteps=self.receiver.num_timesteps, timing=timing)
        coherent = self.receiver.coherent
        if coherent is not None:   # ask every frame of this epoch for a pilot
            reply.frame_pilot_symbols, reply.frame_pilot_blocks = coherent.pilot_symbols, coherent.pilot_blocks
        self.guard.sign_reply(request.session, request.sequence, reply)
        return reply

    def Transmit(self, request_iterator, context):
        """Read frames on a helper thread so acks flow back while later frames still arrive; one ack
        per frame, a refused frame's saying why."""
        events: queue.Queue = queue.Queue()
        queued = _StreamFrames()
        context.add_callback(queued.cancel)

        def read() -> None:
            submitted = 0
            try:
                for frame in request_iterator:
                    submitted += 1
                    self._admit(frame, events, queued)
            except Exception as err:  # the client went away mid-stream: nothing to answer
                log.debug("transmit stream ended: %r", err)
            events.put(_EndOfInput(submitted))

        threading.Thread(target=read, name="transmit-reader", daemon=True).start()
        answered, expected = 0, None
        while expected is None or answered < expected:
            event = events.get()
            if isinstance(event, _EndOfInput):
                expected = event.submitted
                continue
            session, ack = event
            answered += 1
            self.guard.sign_ack(session, ack)
            yield ack

    def _admit(self, frame: link_pb2.Frame, events: queue.Queue, queued: _StreamFrames) -> None:
        """Check and queue one frame; its ack (or refusal) goes to ``events`` as (session, Ack) when ready."""
        try:
            self.guard.check_frame(frame)
            future, duplicate = self.receiver.submit(frame_in(frame))
        except LinkError as err:
            events.put((frame.session, refusal_ack(frame.frame_id, err)))
            return
        except Exception:  # noqa: BLE001 - a bug must cost one frame an error ack, not hang the stream
            log.exception("frame %d of %s: unexpected error", frame.frame_id, frame.session[:64])
            events.put((frame.session, refusal_ack(frame.frame_id, LinkError(
                "INTERNAL", "INTERNAL_ERROR", "the receiver failed on this frame (its log says why); the stream goes on"))))
            return
        if not duplicate:
            queued.track(future)
        future.add_done_callback(
            lambda f, i=frame.frame_id, d=duplicate, s=frame.session: events.put((s, outcome_ack(i, f, d))))


def build_server(receiver: Receiver, listen: str, max_workers: int = 32, guard: LinkGuard | None = None,
                 tls: TlsFiles = PLAINTEXT) -> tuple[grpc.Server, int]:
    """A gRPC server with Link + health on ``listen`` (host:port; port 0 picks one) -> (server, port).
    ``guard``: checks and signs messages under a link key (None: no key); ``tls``: TLS (mutual with a CA)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="link"),
                         options=SERVER_OPTIONS)
    link_pb2_grpc.add_LinkServicer_to_server(LinkServicer(receiver, guard), server)
    health = add_health(server, (LINK_SERVICE,))
    port = bind(server, listen, tls.server_credentials() if tls.enabled else None)
    server.start()
    set_serving(health, (LINK_SERVICE,))
    return server, port
