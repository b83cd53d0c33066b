"""The receiver's side of link authentication (issue 17): check every SyncRequest and Frame, sign
every SyncReply and Ack, with the key shared with the sender (:mod:`protos.auth`).

Without a key nothing is checked or signed: the paper's setting, said once at start-up. With one:

- a SyncRequest must carry a valid MAC and a sequence above the last one accepted for its session
  (a replayed request would open an epoch the sender never asked for);
- a Frame's header must carry a valid MAC (the latent is not covered: the channel perturbs it);
- a failure is answered with UNAUTHENTICATED, counted by kind, and logged once per session.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from protos.auth import LinkAuth
from protos.diffusec.link.v1 import link_pb2
from shared.bounded import remember

from .errors import LinkError

log = logging.getLogger("diffusec.receiver")

MAX_TRACKED_SESSIONS = 4096


def unauthenticated(reason: str, message: str) -> LinkError:
    return LinkError("UNAUTHENTICATED", reason, message)


class LinkGuard:
    """Checks and signs the link's messages; ``refused`` counts the refusals by reason. Thread-safe."""

    def __init__(self, auth: LinkAuth | None):
        self.auth = auth
        self.refused: dict[str, int] = {"BAD_SYNC_MAC": 0, "REPLAYED_SYNC": 0, "BAD_FRAME_MAC": 0}
        self._last_sequence: OrderedDict[str, int] = OrderedDict()   # session -> last accepted sequence
        self._logged: OrderedDict[str, None] = OrderedDict()          # sessions whose first refusal was logged
        self._lock = threading.Lock()

    @property
    def keyed(self) -> bool:
        return self.auth is not None

    def check_sync(self, request: link_pb2.SyncRequest) -> None:
        """LinkError (UNAUTHENTICATED) unless the request is signed and fresh; no-op without a key."""
        if self.auth is None:
            return
        if not self.auth.sync_request_valid(request):
            raise self._refuse(request.session, "BAD_SYNC_MAC",
                               "the SyncRequest's MAC is missing or wrong: the sender has no or another link key, "
                               "or the request was changed on the way")
        with self._lock:
            last = self._last_sequence.get(request.session)
            fresh = last is None or request.sequence > last
            if fresh:
                remember(self._last_sequence, request.session, request.sequence, MAX_TRACKED_SESSIONS)
        if not fresh:
            raise self._refuse(request.session, "REPLAYED_SYNC",
                               f"SyncRequest sequence {request.sequence} of this session is not above the last one "
                               f"accepted ({last}): a replayed request, or a second sender with the same --session")

    def check_frame(self, frame: link_pb2.Frame) -> None:
        """LinkError (UNAUTHENTICATED) unless the frame's header is signed; no-op without a key."""
        if self.auth is not None and not self.auth.frame_valid(frame):
            raise self._refuse(frame.session, "BAD_FRAME_MAC",
                               f"frame {frame.frame_id}: the header's MAC is missing or wrong (t_d, epoch, label or "
                               f"session changed on the way, or another link key); re-sync and resend")

    def sign_reply(self, session: str, sequence: int, reply: link_pb2.SyncReply) -> None:
        if self.auth is not None:
            self.auth.sign_sync_reply(session, sequence, reply)

    def sign_ack(self, session: str, ack: link_pb2.Ack) -> None:
        if self.auth is not None:
            self.auth.sign_ack(session, ack)

    def _refuse(self, session: str, reason: str, message: str) -> LinkError:
        """Count the refusal, log it when it is the session's first, and return the error to raise."""
        with self._lock:
            self.refused[reason] += 1
            first = session not in self._logged
            if first:
                remember(self._logged, session, None, MAX_TRACKED_SESSIONS)
        if first:
            log.warning("session %.40r: %s (%s; further refusals of this session are counted, not logged)",
                        session, message, reason)
        return unauthenticated(reason, message)
