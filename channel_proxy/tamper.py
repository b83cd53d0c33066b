"""Rewrites of the link's control messages by an on-path attacker: the ``sync-tamper``,
``frame-tamper`` and ``ack-forge`` impairments (issue 17, docs/security.md).

A :class:`MessageTamper` sees every SyncReply on its way to the sender, every frame on its way to
the receiver and every ack on its way back, and may change their fields in place; each hook says
whether it changed the message (the proxy counts those). ``draw`` is the proxy's seeded uniform
generator in [0, 1), for tampering with a share ``rate`` of the messages. What a key protects
against is exactly this: with a link key, both ends refuse every message changed here.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from protos.diffusec.link.v1 import link_pb2
from shared.bounded import remember

Draw = Callable[[], float]

# (session, epoch or frame id) entries an attacker remembers, oldest dropped first.
MAX_REMEMBERED = 4096


class MessageTamper:
    """Leaves everything alone; a kind overrides the hooks it uses."""

    def sync_reply(self, session: str, reply: link_pb2.SyncReply, draw: Draw) -> bool:
        return False

    def frame(self, frame: link_pb2.Frame, draw: Draw) -> bool:
        return False

    def ack(self, session: str, ack: link_pb2.Ack, draw: Draw) -> bool:
        return False


def hit(rate: float | None, draw: Draw) -> bool:
    """Whether this message is one of the share ``rate`` (None: every message) tampered with."""
    return rate is None or draw() < rate


class SyncRewriter(MessageTamper):
    """Tells the sender t_D = ``t_d`` (and t_plus) in place of the receiver's choice, and hides it: the
    frames of that epoch get the receiver's t_D back on their way in, their acks the forged one."""

    def __init__(self, t_d: int, t_plus: int | None, rate: float | None):
        self.t_d, self.t_plus, self.rate = t_d, t_plus, rate
        self._epochs: OrderedDict[tuple[str, int], int] = OrderedDict()   # (session, epoch) -> the true t_D

    def sync_reply(self, session, reply, draw) -> bool:
        if not hit(self.rate, draw):
            return False
        remember(self._epochs, (session, reply.epoch), reply.t_d, MAX_REMEMBERED)
        reply.t_d = self.t_d
        if self.t_plus is not None:
            reply.t_plus = self.t_plus
        return True

    def frame(self, frame, draw) -> bool:
        true_t_d = self._epochs.get((frame.session, frame.epoch))
        if true_t_d is None or frame.t_d != self.t_d:
            return False
        frame.t_d = true_t_d
        return True

    def ack(self, session, ack, draw) -> bool:
        if (session, ack.epoch) in self._epochs and not ack.HasField("error"):
            ack.t_d = self.t_d   # the echo the sender expects; part of hiding, not counted
        return False


class FrameRewriter(MessageTamper):
    """Stamps frames with t_D = ``t_d`` on their way to the receiver (it would purify with a t_P the
    sender never chose) and puts the sender's own t_D back into their acks."""

    def __init__(self, t_d: int, rate: float | None):
        self.t_d, self.rate = t_d, rate
        self._frames: OrderedDict[tuple[str, int], int] = OrderedDict()   # (session, frame id) -> the sent t_D

    def frame(self, frame, draw) -> bool:
        if frame.t_d == self.t_d or not hit(self.rate, draw):
            return False
        remember(self._frames, (frame.session, frame.frame_id), frame.t_d, MAX_REMEMBERED)
        frame.t_d = self.t_d
        return True

    def ack(self, session, ack, draw) -> bool:
        sent_t_d = self._frames.get((session, ack.frame_id))
        if sent_t_d is not None and not ack.HasField("error"):
            ack.t_d = sent_t_d
        return False


class AckForger(MessageTamper):
    """Changes the class an ack reports: to ``target``, or to the next class ((c + 1) mod classes)."""

    def __init__(self, target: int | None, rate: float | None, num_classes: int):
        self.target, self.rate, self.num_classes = target, rate, num_classes

    def ack(self, session, ack, draw) -> bool:
        if ack.HasField("error") or not hit(self.rate, draw):
            return False
        forged = self.target if self.target is not None else (ack.predicted_class + 1) % self.num_classes
        changed = forged != ack.predicted_class
        ack.predicted_class = forged
        return changed
