"""gRPC front of the receiver: the ``Link`` servicer (proto <-> domain only) and the server."""
from __future__ import annotations

import logging
import queue
import threading
from concurrent import futures

import grpc

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.serving import SERVER_OPTIONS, add_health, bind, set_serving
from protos.wire import REASON_KEY

from .engine import AckOut, FrameIn, Receiver
from .errors import LinkError

log = logging.getLogger("diffusec.receiver")

LINK_SERVICE = link_pb2.DESCRIPTOR.services_by_name["Link"].full_name


def abort(context: grpc.ServicerContext, err: LinkError) -> None:
    """End the call with the error's status, message and ``diffusec-reason`` trailing metadata."""
    context.set_trailing_metadata(((REASON_KEY, err.reason),))
    context.abort(grpc.StatusCode[err.code], err.message)


def ack_message(ack: AckOut, duplicate: bool) -> link_pb2.Ack:
    return link_pb2.Ack(frame_id=ack.frame_id, predicted_class=ack.predicted_class, t_p=ack.t_p, epoch=ack.epoch,
                        t_d=ack.t_d, image=ack.image, image_shape=list(ack.image_shape), duplicate=duplicate)


def frame_in(frame: link_pb2.Frame) -> FrameIn:
    return FrameIn(frame.frame_id, frame.session, frame.epoch, frame.t_d, frame.latent, tuple(frame.shape),
                   frame.dtype, frame.label if frame.HasField("label") else None, frame.return_image)


class _EndOfInput:
    def __init__(self, submitted: int):
        self.submitted = submitted


class LinkServicer(link_pb2_grpc.LinkServicer):
    """Sync and Transmit, delegating to :class:`receiver.engine.Receiver`."""

    def __init__(self, receiver: Receiver):
        self.receiver = receiver

    def Sync(self, request, context):
        try:
            epoch, timing = self.receiver.sync_timed(request.session, request.sequence, request.pilot, request.preset)
        except LinkError as err:
            abort(context, err)
        timing = link_pb2.SyncTiming(receiver_us=timing.total_us, snr_estimate_us=timing.snr_estimate_us,
                                     policy_us=timing.policy_us)
        # Senders number syncs 0, 1, 2, ...: make the next pilot (and the policy's next decision) once
        # this reply is on its way.
        length = len(request.pilot) // 4
        context.add_callback(lambda: self.receiver.after_sync(request.session, request.sequence, length, epoch))
        return link_pb2.SyncReply(epoch=epoch.number, t_d=epoch.t_d, t_plus=epoch.t_plus, snr_db=epoch.snr_db,
                                  policy=self.receiver.policy.name, preset=self.receiver.preset.name,
                                  latent_length=self.receiver.latent_length,
                                  num_timesteps=self.receiver.num_timesteps, timing=timing)

    def Transmit(self, request_iterator, context):
        """Read frames on a helper thread so acks flow back while later frames still arrive."""
        events: queue.Queue = queue.Queue()

        def read() -> None:
            submitted = 0
            try:
                for frame in request_iterator:
                    future, duplicate = self.receiver.submit(frame_in(frame))
                    submitted += 1
                    future.add_done_callback(lambda f, d=duplicate: events.put((f, d)))
            except LinkError as err:
                events.put(err)
            except Exception as err:  # the client went away mid-stream: nothing to answer
                log.debug("transmit stream ended: %r", err)
            events.put(_EndOfInput(submitted))

        threading.Thread(target=read, name="transmit-reader", daemon=True).start()
        answered, expected = 0, None
        while expected is None or answered < expected:
            event = events.get()
            if isinstance(event, _EndOfInput):
                expected = event.submitted
            elif isinstance(event, LinkError):
                abort(context, event)
            else:
                future, duplicate = event
                answered += 1
                if future.exception() is not None:
                    log.exception("frame processing failed", exc_info=future.exception())
                    context.abort(grpc.StatusCode.INTERNAL, f"the receiver failed on a frame: {future.exception()}")
                yield ack_message(future.result(), duplicate)


def build_server(receiver: Receiver, listen: str, max_workers: int = 32) -> tuple[grpc.Server, int]:
    """A gRPC server with Link + health on ``listen`` (host:port; port 0 picks one) -> (server, port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="link"),
                         options=SERVER_OPTIONS)
    link_pb2_grpc.add_LinkServicer_to_server(LinkServicer(receiver), server)
    health = add_health(server, (LINK_SERVICE,))
    port = bind(server, listen)
    server.start()
    set_serving(health, (LINK_SERVICE,))
    return server, port
