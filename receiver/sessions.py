"""Per-session sync epochs and the de-duplication of frames by id.

Every Sync opens a new epoch of its session (1, 2, ...) with the policy's (t_D, t_plus) and the
measured SNR. A frame names its epoch and carries the t_D it was diffused with, so frames
stamped with an older epoch still decode correctly: the receiver uses the frame's own t_D and
that epoch's t_plus. Each frame id is processed once per session: a resend gets the stored ack
(or joins the computation already under way).

Bounded memory: the last ``max_epochs`` epochs and ``max_acks`` acks of each session, and the
``max_sessions`` most recently used sessions, are kept.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field

from .errors import invalid, out_of_range
from .policy import Decision, Episode, Policy


@dataclass(frozen=True)
class Epoch:
    number: int
    t_d: int
    t_plus: int
    snr_db: float
    opened_at: float          # time.time() of the Sync
    episode: Episode | None = None   # the step policy's episode state after this Sync (None: fixed)


@dataclass
class Session:
    name: str
    epochs: OrderedDict = field(default_factory=OrderedDict)     # number -> Epoch
    last_epoch: int = 0
    results: OrderedDict = field(default_factory=OrderedDict)    # frame id -> Future (running or done)


class SessionTable:
    """Thread-safe table of sessions; Sync and frame admission go through it."""

    def __init__(self, max_sessions: int = 1024, max_epochs: int = 256, max_acks: int = 4096):
        self.max_sessions, self.max_epochs, self.max_acks = max_sessions, max_epochs, max_acks
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def sync(self, session: str, snr_db: float, policy: Policy) -> Epoch:
        """Open the next epoch of ``session`` (creating the session) with ``policy``'s decision."""
        with self._lock:
            state = self._sessions.get(session)
            if state is None:
                state = self._sessions[session] = Session(session)
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(session)
            previous = state.epochs[state.last_epoch] if state.last_epoch in state.epochs else None
            decision: Decision = policy.choose(
                snr_db, Decision(previous.t_d, previous.t_plus, previous.episode) if previous else None)
            state.last_epoch += 1
            epoch = Epoch(state.last_epoch, decision.t_d, decision.t_plus, snr_db, time.time(), decision.episode)
            state.epochs[epoch.number] = epoch
            while len(state.epochs) > self.max_epochs:
                state.epochs.popitem(last=False)
            return epoch

    def epoch(self, session: str, number: int) -> Epoch:
        """The epoch a frame names; INVALID_ARGUMENT/OUT_OF_RANGE when unknown."""
        with self._lock:
            return self._epoch_locked(session, number)

    def _epoch_locked(self, session: str, number: int) -> Epoch:
        state = self._sessions.get(session)
        if state is None:
            raise invalid("UNKNOWN_SESSION", f"unknown session {session!r}: call Sync first (the receiver may have "
                                             f"restarted and forgotten it; re-sync and resend)")
        if number in state.epochs:
            return state.epochs[number]
        if number == 0 or number > state.last_epoch:
            raise out_of_range("UNKNOWN_EPOCH", f"epoch {number} of session {session!r} was never issued (the latest "
                                                f"is {state.last_epoch}); stamp frames with SyncReply.epoch")
        raise out_of_range("EXPIRED_EPOCH", f"epoch {number} of session {session!r} has expired (the receiver keeps "
                                            f"the last {self.max_epochs}; the latest is {state.last_epoch}); "
                                            f"re-sync and re-encode the frame")

    def admit(self, session: str, number: int, frame_id: int) -> tuple[Epoch, Future, bool]:
        """Claim ``frame_id`` -> (its epoch, its result future, duplicate?).

        A new id gets a fresh future that the caller must complete; a known id gets the future
        of its first transmission (already done, or still running) and ``duplicate = True``.
        """
        with self._lock:
            epoch = self._epoch_locked(session, number)
            state = self._sessions[session]
            self._sessions.move_to_end(session)
            known = state.results.get(frame_id)
            # A frame that failed, or was dropped with a stream whose client went away, is processed afresh.
            if known is not None and not known.cancelled() and not (known.done() and known.exception() is not None):
                return epoch, known, True
            future: Future = Future()
            state.results[frame_id] = future
            state.results.move_to_end(frame_id)
            while len(state.results) > self.max_acks:
                state.results.popitem(last=False)
            return epoch, future, False
