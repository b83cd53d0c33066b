"""gRPC front of the channel proxy: a Link forwarder and the ChannelControl service.

Both only translate messages and call the domain code. The forwarder relays Sync and Transmit to
the upstream receiver, passing every pilot and frame through the channel of
:class:`channel_proxy.state.ChannelState` (and :class:`channel_proxy.outbound.Outbound`); errors of
the upstream call (status, message, ``diffusec-reason``) reach the sender unchanged.

While an ``adversarial`` impairment is on, latent frames (after AWGN and jamming) go through an
:class:`channel_proxy.adversary.AttackStage` that perturbs them in batches. Pilots never do: the
attacker is stealthy. It has nothing to optimise on a pilot (no image, no classifier decision), and
transmitting during pilots would only lower the receiver's SNR estimate, revealing the attack and
making an SNR-adaptive receiver purify harder. So the receiver's estimate sees the AWGN (and any
``jamming``) alone, as in the attack paper, where the perturbation is added to the data symbols only.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent import futures

import grpc

from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.serving import SERVER_OPTIONS, add_health, bind, set_serving, upstream_timeout_s
from protos.tls import PLAINTEXT, TlsFiles, is_loopback, open_channel
from protos.wire import GRPC_OPTIONS
from shared.checkpoints import CheckpointError

from .impairments import Impairment
from .outbound import Outbound
from .state import ChannelState

log = logging.getLogger("diffusec.proxy")

LINK_SERVICE = link_pb2.DESCRIPTOR.services_by_name["Link"].full_name
CONTROL_SERVICE = link_pb2.DESCRIPTOR.services_by_name["ChannelControl"].full_name


def _relay_error(context: grpc.ServicerContext, err: grpc.RpcError) -> None:
    """Abort the downstream call with the upstream call's status, message and trailing metadata."""
    try:
        metadata = err.trailing_metadata() or ()
        context.set_trailing_metadata(tuple((k, v) for k, v in metadata if not k.startswith("grpc-")))
    except Exception:
        pass
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"receiver unavailable behind the channel proxy: {details}"
    context.abort(code, details)


class LinkForwarder(link_pb2_grpc.LinkServicer):
    def __init__(self, state: ChannelState, upstream: grpc.Channel, sync_seconds=None):
        """``sync_seconds``: a histogram that observes each relayed Sync (seconds), for --metrics."""
        self.state = state
        self.upstream = link_pb2_grpc.LinkStub(upstream)
        self.sync_seconds = sync_seconds

    def Sync(self, request, context):
        delay = self.state.sync_delay()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        pilot = self.state.pass_sync_pilot(request.pilot, request.sequence)
        out = link_pb2.SyncRequest()
        out.CopyFrom(request)
        out.pilot = pilot
        own = time.perf_counter() - start
        try:
            reply = self.upstream.Sync(out, timeout=upstream_timeout_s(context.time_remaining()))
        except grpc.RpcError as err:
            _relay_error(context, err)
        self.state.count(syncs_forwarded=1)
        self.state.tamper_sync_reply(request.session, reply)
        if self.sync_seconds is not None:
            self.sync_seconds.observe(time.perf_counter() - start)
        reply.timing.proxy_us = own * 1e6
        return reply

    def Transmit(self, request_iterator, context):
        outbound = Outbound(self.state)
        session = [""]   # the stream's session, from its frames (acks do not name it)
        threading.Thread(target=self._read, args=(request_iterator, outbound, session), name="proxy-reader",
                         daemon=True).start()
        call = self.upstream.Transmit(iter(outbound))
        context.add_callback(call.cancel)
        context.add_callback(outbound.cancel)
        try:
            for ack in call:
                self.state.count(acks_returned=1)
                self.state.tamper_ack(session[0], ack)
                yield ack
        except grpc.RpcError as err:
            outbound.cancel()
            if err.code() != grpc.StatusCode.CANCELLED or context.is_active():
                _relay_error(context, err)

    def _read(self, request_iterator, outbound: Outbound, session: list[str]) -> None:
        """The sender's frames through the channel into ``outbound``, until the sender's stream ends;
        ``session[0]``: the session of the latest frame."""
        try:
            for frame in request_iterator:
                session[0] = frame.session
                fate = self.state.forward(frame.latent, frame.session, frame.frame_id, frame.pilot, frame.pilot_blocks)
                if fate.dropped:
                    continue
                out = link_pb2.Frame()
                out.CopyFrom(frame)
                out.latent = fate.latent
                out.pilot = fate.pilot
                self.state.tamper_frame(out)
                outbound.put(out, fate)
        except Exception as err:
            log.debug("downstream stream ended: %r", err)
        finally:
            outbound.close()  # the frames it holds go out before the stream to the receiver ends


class ChannelControlServicer(link_pb2_grpc.ChannelControlServicer):
    def __init__(self, state: ChannelState):
        self.state = state

    def ListImpairments(self, request, context):
        return link_pb2.ListImpairmentsReply(impairments=[item.to_message() for item in self.state.list()])

    def AddImpairment(self, request, context):
        try:
            item = Impairment.from_message(request.impairment)
            return self.state.add(item.name, item.spec).to_message()
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except KeyError as err:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, err.args[0])
        except CheckpointError as err:  # a latent attack's surrogate is missing; the proxy keeps serving
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))

    def RemoveImpairment(self, request, context):
        try:
            return link_pb2.RemoveImpairmentReply(removed=self.state.remove(request.name).to_message())
        except KeyError as err:
            context.abort(grpc.StatusCode.NOT_FOUND, err.args[0])

    def ClearImpairments(self, request, context):
        return link_pb2.ClearImpairmentsReply(removed=self.state.clear())

    def SetSnr(self, request, context):
        try:
            self.state.set_snr(request.snr_db)
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        return self.Stats(request, context)

    def ScheduleSnr(self, request, context):
        try:
            self.state.schedule_snr([(p.at_s, p.snr_db) for p in request.points], request.period_s)
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        return self.Stats(request, context)

    def ScheduleFading(self, request, context):
        try:
            points = [(p.at_s, Impairment.from_message(p.fading).spec if p.HasField("fading") else None)
                      for p in request.points]
            self.state.schedule_fading(points, request.period_s)
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        return self.Stats(request, context)

    def Stats(self, request, context):
        return link_pb2.StatsReply(**self.state.stats())


def build_servers(state: ChannelState, listen: str, control: str, upstream: str, max_workers: int = 32,
                  sync_seconds=None, tls: TlsFiles = PLAINTEXT) -> tuple[grpc.Server, grpc.Server, grpc.Channel, int, int]:
    """Link forwarder on ``listen`` and ChannelControl on ``control``, both with health; started.
    ``sync_seconds``: a histogram of relayed Sync seconds (channel_proxy.metrics); ``tls``: TLS on both
    servers and towards the upstream receiver (mutual with a CA)."""
    channel = open_channel(upstream, tls, GRPC_OPTIONS)
    credentials = tls.server_credentials() if tls.enabled else None
    link = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="proxy"),
                       options=SERVER_OPTIONS)
    link_pb2_grpc.add_LinkServicer_to_server(LinkForwarder(state, channel, sync_seconds), link)
    link_health = add_health(link, (LINK_SERVICE,))
    ctl = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="control"), options=SERVER_OPTIONS)
    link_pb2_grpc.add_ChannelControlServicer_to_server(ChannelControlServicer(state), ctl)
    ctl_health = add_health(ctl, (CONTROL_SERVICE,))
    link_port, ctl_port = bind(link, listen, credentials), bind(ctl, control, credentials)
    if credentials is None and not is_loopback(control):
        log.warning("ChannelControl listens on %s without TLS: anyone who reaches it can change the channel; "
                    "give --tls-cert/--tls-key/--tls-ca (`diffusec certs DIR`) or listen on 127.0.0.1", control)
    link.start()
    ctl.start()
    set_serving(link_health, (LINK_SERVICE,))
    set_serving(ctl_health, (CONTROL_SERVICE,))
    return link, ctl, channel, link_port, ctl_port
