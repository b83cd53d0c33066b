"""gRPC front of the channel proxy: a Link forwarder and the ChannelControl service.

The forwarder relays Sync and Transmit to the upstream receiver, passing every pilot and latent
symbol through the channel of :class:`channel_proxy.state.ChannelState`; errors of the upstream
call (status, message, ``diffusec-reason``) reach the sender unchanged.

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
from protos.wire import GRPC_OPTIONS, SERVER_OPTIONS, add_health, bind, set_serving

from shared.checkpoints import CheckpointError

from . import impairments as imp
from .adversary import AttackStage
from .delayline import DelayLine
from .state import ChannelState

log = logging.getLogger("diffusec.proxy")

LINK_SERVICE = link_pb2.DESCRIPTOR.services_by_name["Link"].full_name
CONTROL_SERVICE = link_pb2.DESCRIPTOR.services_by_name["ChannelControl"].full_name


def _through_channel(state: ChannelState, data: bytes) -> tuple[bytes, bool]:
    """float32 symbols through AWGN + jamming; malformed bytes pass unchanged (the receiver judges)."""
    if not data or len(data) % 4:
        return data, False
    return state.apply_bytes(data)


def _relay_error(context: grpc.ServicerContext, err: grpc.RpcError) -> None:
    """Abort the downstream call with the upstream call's status, message and trailing metadata."""
    try:
        metadata = err.trailing_metadata() or ()
        context.set_trailing_metadata(tuple((k, v) for k, v in metadata if not k.startswith("grpc-")))
    except Exception:  # noqa: BLE001 - an error without call metadata
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
        pilot, _ = _through_channel(self.state, request.pilot)
        out = link_pb2.SyncRequest()
        out.CopyFrom(request)
        out.pilot = pilot
        own = time.perf_counter() - start
        try:
            reply = self.upstream.Sync(out, timeout=context.time_remaining())
        except grpc.RpcError as err:
            _relay_error(context, err)
        self.state.count(syncs_forwarded=1)
        if self.sync_seconds is not None:
            self.sync_seconds.observe(time.perf_counter() - start)
        reply.timing.proxy_us = own * 1e6
        return reply

    def Transmit(self, request_iterator, context):
        line: DelayLine = DelayLine()
        state = self.state
        stage: AttackStage | None = None

        def read() -> None:
            nonlocal stage
            try:
                for frame in request_iterator:
                    state.count(frames_in=1)
                    dropped, delay = state.frame_fate()
                    if dropped:
                        state.count(frames_dropped=1)
                        continue
                    out = link_pb2.Frame()
                    out.CopyFrom(frame)
                    out.latent, jammed = _through_channel(state, frame.latent)
                    state.count(frames_forwarded=1, frames_jammed=int(jammed))
                    if state.adversarial_latent_length() is None:
                        line.put(out, delay)
                        continue
                    if stage is None:  # created with the first attacked frame: no thread otherwise
                        generator = state.attack_generator()
                        stage = AttackStage(lambda latents: state.attack(latents, generator), line.put,
                                            state.adversarial_latent_length)
                    stage.put(out, delay)
            except Exception as err:  # noqa: BLE001 - the sender went away
                log.debug("downstream stream ended: %r", err)
            finally:
                if stage is not None:
                    stage.close()  # the frames it holds go out before the line closes
                line.close()

        threading.Thread(target=read, name="proxy-reader", daemon=True).start()
        call = self.upstream.Transmit(iter(line))
        context.add_callback(call.cancel)
        context.add_callback(line.cancel)
        try:
            for ack in call:
                state.count(acks_returned=1)
                yield ack
        except grpc.RpcError as err:
            line.cancel()
            if err.code() != grpc.StatusCode.CANCELLED or context.is_active():
                _relay_error(context, err)


def impairment_message(item: imp.Impairment) -> link_pb2.Impairment:
    spec = item.spec
    if isinstance(spec, imp.Jamming):
        return link_pb2.Impairment(name=item.name, jamming=link_pb2.Jamming(pnr_db=spec.pnr_db))
    if isinstance(spec, imp.Drop):
        return link_pb2.Impairment(name=item.name, drop=link_pb2.Drop(rate=spec.rate))
    if isinstance(spec, imp.Adversarial):
        return link_pb2.Impairment(name=item.name, adversarial=link_pb2.Adversarial(
            pnr_db=spec.pnr_db, method=spec.method, steps=spec.steps, target=spec.target, surrogate=spec.surrogate))
    return link_pb2.Impairment(name=item.name, delay=link_pb2.Delay(ms=spec.ms, jitter_ms=spec.jitter_ms))


def spec_of(message: link_pb2.Impairment) -> imp.Spec:
    kind = message.WhichOneof("kind")
    if kind == "jamming":
        return imp.Jamming(message.jamming.pnr_db)
    if kind == "drop":
        return imp.Drop(message.drop.rate)
    if kind == "delay":
        return imp.Delay(message.delay.ms, message.delay.jitter_ms)
    if kind == "adversarial":
        a = message.adversarial
        return imp.Adversarial(a.pnr_db, a.method or "fgm", a.steps or 10,
                               a.target if a.HasField("target") else None, a.surrogate)
    raise ValueError(f"the impairment has no kind; set one of: {', '.join(imp.KINDS)}")


class ChannelControlServicer(link_pb2_grpc.ChannelControlServicer):
    def __init__(self, state: ChannelState):
        self.state = state

    def ListImpairments(self, request, context):
        return link_pb2.ListImpairmentsReply(impairments=[impairment_message(i) for i in self.state.list()])

    def AddImpairment(self, request, context):
        try:
            return impairment_message(self.state.add(request.impairment.name, spec_of(request.impairment)))
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except KeyError as err:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, err.args[0])
        except CheckpointError as err:  # the adversarial surrogate is missing; the proxy keeps serving
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))

    def RemoveImpairment(self, request, context):
        try:
            return link_pb2.RemoveImpairmentReply(removed=impairment_message(self.state.remove(request.name)))
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

    def Stats(self, request, context):
        return link_pb2.StatsReply(**self.state.stats())


def build_servers(state: ChannelState, listen: str, control: str, upstream: str, max_workers: int = 32,
                  sync_seconds=None) -> tuple[grpc.Server, grpc.Server, grpc.Channel, int, int]:
    """Link forwarder on ``listen`` and ChannelControl on ``control``, both with health; started.
    ``sync_seconds``: a histogram of relayed Sync seconds (channel_proxy.metrics)."""
    channel = grpc.insecure_channel(upstream, options=GRPC_OPTIONS)
    link = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="proxy"),
                       options=SERVER_OPTIONS)
    link_pb2_grpc.add_LinkServicer_to_server(LinkForwarder(state, channel, sync_seconds), link)
    link_health = add_health(link, (LINK_SERVICE,))
    ctl = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="control"), options=SERVER_OPTIONS)
    link_pb2_grpc.add_ChannelControlServicer_to_server(ChannelControlServicer(state), ctl)
    ctl_health = add_health(ctl, (CONTROL_SERVICE,))
    link_port, ctl_port = bind(link, listen), bind(ctl, control)
    link.start()
    ctl.start()
    set_serving(link_health, (LINK_SERVICE,))
    set_serving(ctl_health, (CONTROL_SERVICE,))
    return link, ctl, channel, link_port, ctl_port
