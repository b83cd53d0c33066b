"""Timestep policies: from the measured SNR to (t_D, t_plus) for the next sync epoch.

A policy sees the pilot SNR (dB) and the session's previous decision (None on the first sync).

- ``fixed``: the same (t_D, t_plus) always (DiffuSeC plain when t_plus = 0);
- ``ddpg``: the trained step-selection actor (paper IV-D): (previous t_D, t_plus, SNR) -> action
  -> new clamped state; a session's first sync starts from the configured initial state. The
  actor was trained on episodes of 3 state updates at one SNR (section VI-B), so the receiver
  runs it the same way: one *episode* of ``episode_steps`` decisions per channel state, then it
  holds the last choice until the measured SNR moves more than ``episode_change_db`` from the
  SNR the episode started at (:class:`Episode`). ``episode_steps = 0`` applies the actor at
  every Sync instead (beyond its trained horizon the shipped actor can alternate between two
  states, see docs/agent.md);
- ``table``: the grid oracle, the measured best (t_D, t_plus) at the nearest grid SNR.

``ddpg`` and ``table`` read ``agent.pt`` / ``agent_grid.json`` from the checkpoint folder
(:mod:`shared.agent`), and evaluate in tens of microseconds (numpy, no torch).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("diffusec.receiver")


@dataclass(frozen=True)
class Episode:
    """Where a session's step policy is in its current episode (one channel state).

    ``snr_db``: the measured SNR (dB) at the episode's first Sync; ``steps``: policy decisions
    taken in it so far (the episode holds once ``steps`` reaches the policy's horizon).
    """

    snr_db: float
    steps: int


@dataclass(frozen=True)
class Decision:
    """Diffusing timesteps t_D of the sender, plus steps of the receiver (t_P = t_D + t_plus).

    ``episode`` is the step policy's bookkeeping (None for ``fixed``), carried from one Sync of
    a session to the next by the session table.
    """

    t_d: int
    t_plus: int
    episode: Episode | None = None


class Policy(Protocol):
    name: str

    def choose(self, snr_db: float, previous: Decision | None) -> Decision:
        """The timesteps for the next epoch, given the pilot SNR (dB)."""


class FixedPolicy:
    """The same (t_D, t_plus) whatever the SNR: DiffuSeC (plain) when t_plus = 0."""

    name = "fixed"

    def __init__(self, t_d: int = 20, t_plus: int = 0, num_timesteps: int = 1000):
        if t_d < 0 or t_plus < 0 or t_d + t_plus > num_timesteps:
            raise ValueError(f"need 0 <= t_D, 0 <= t_plus and t_D + t_plus <= {num_timesteps}; "
                             f"got t_D = {t_d}, t_plus = {t_plus}")
        self.decision = Decision(t_d, t_plus)

    def choose(self, snr_db: float, previous: Decision | None) -> Decision:
        return self.decision

    def describe(self) -> str:
        return f"fixed t_D={self.decision.t_d} t_plus={self.decision.t_plus}"


EPISODE_STEPS = 3          # decisions per episode: the agent's training horizon (section VI-B)
EPISODE_CHANGE_DB = 2.0    # a new episode when the SNR moves this far (pilot estimates err <= ~0.6 dB each)


class StepPolicy:
    """Adapter of a :mod:`shared.agent.policy` step policy (``ddpg`` or ``table``) to :class:`Policy`.

    Episodic, as the agent was trained: a session's episode starts at its first Sync and again
    whenever the measured SNR is more than ``episode_change_db`` away from the SNR the current
    episode started at; within an episode the inner policy steps at each Sync until it has taken
    ``episode_steps`` decisions, then the choice holds. ``episode_steps = 0``: step at every Sync.
    """

    def __init__(self, inner, initial: Decision = Decision(20, 0), episode_steps: int = EPISODE_STEPS,
                 episode_change_db: float = EPISODE_CHANGE_DB):
        if episode_steps < 0 or not episode_change_db > 0:
            raise ValueError(f"need episode_steps >= 0 and episode_change_db > 0; got {episode_steps}, "
                             f"{episode_change_db}")
        self.inner, self.name, self.initial = inner, inner.name, initial
        self.episode_steps, self.episode_change_db = episode_steps, episode_change_db
        self.prefetch(initial)

    def prefetch(self, decision: Decision) -> None:
        """Let the inner policy prepare the next Sync from ``decision`` (off the reply's path)."""
        if hasattr(self.inner, "prefetch"):
            self.inner.prefetch(decision.t_d, decision.t_plus)

    def choose(self, snr_db: float, previous: Decision | None) -> Decision:
        state = previous or self.initial
        episode = state.episode
        if episode is None or abs(snr_db - episode.snr_db) > self.episode_change_db:
            episode = Episode(snr_db, 0)                    # first Sync, or the channel moved
        if self.episode_steps and episode.steps >= self.episode_steps:
            return Decision(state.t_d, state.t_plus, episode)  # the episode is over: hold
        t_d, t_plus = self.inner.step(state.t_d, state.t_plus, snr_db)
        # Logged by the receiver once the reply is on its way (Receiver.after_sync), not here: a log
        # line on the Sync's own thread cost ~0.14 ms of a ~3 ms round trip.
        return Decision(t_d, t_plus, Episode(episode.snr_db, episode.steps + 1))

    def describe(self) -> str:
        desc = self.inner.describe()
        if self.name != "ddpg":
            return desc
        episodes = (f"episodes of {self.episode_steps} steps, a new one when the SNR moves > {self.episode_change_db:g} dB"
                    if self.episode_steps else "a step at every sync")
        return f"{desc}, first sync from t_D={self.initial.t_d} t_plus={self.initial.t_plus}, {episodes}"


POLICIES = ("fixed", "ddpg", "table")


def make_policy(name: str, t_d: int, t_plus: int, num_timesteps: int = 1000, checkpoint_dir: str | Path | None = None,
                preset: str = "cifar10", episode_steps: int = EPISODE_STEPS,
                episode_change_db: float = EPISODE_CHANGE_DB) -> Policy:
    """Build the policy ``name`` (one of POLICIES) from the CLI's options.

    ``fixed`` uses (t_d, t_plus); ``ddpg`` starts each session there and runs in episodes
    (:class:`StepPolicy`); ``ddpg`` and ``table`` load their artefacts from ``checkpoint_dir``
    (default: the preset's), CheckpointError if missing.
    """
    if name == "fixed":
        return FixedPolicy(t_d, t_plus, num_timesteps)
    if name in ("ddpg", "table"):
        from shared.agent.policy import load_step_policy
        from shared.checkpoints import resolve_checkpoint_dir

        directory = resolve_checkpoint_dir(preset, checkpoint_dir)
        # The table is a function of the SNR alone: looking it up at every Sync is its own episode.
        steps = episode_steps if name == "ddpg" else 0
        return StepPolicy(load_step_policy(name, directory, preset), Decision(t_d, t_plus), steps, episode_change_db)
    raise ValueError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
