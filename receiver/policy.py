"""Timestep policies: from the measured SNR to (t_D, t_plus) for the next sync epoch.

A policy sees the pilot SNR (dB) and the session's previous decision (None on the first sync).

- ``fixed``: the same (t_D, t_plus) always (DiffuSeC plain when t_plus = 0);
- ``ddpg``: the trained step-selection actor (paper IV-D): (previous t_D, t_plus, SNR) -> action
  -> new clamped state; a session's first sync starts from the configured initial state;
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
class Decision:
    """Diffusing timesteps t_D of the sender, plus steps of the receiver (t_P = t_D + t_plus)."""

    t_d: int
    t_plus: int


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


class StepPolicy:
    """Adapter of a :mod:`shared.agent.policy` step policy (``ddpg`` or ``table``) to :class:`Policy`."""

    def __init__(self, inner, initial: Decision = Decision(20, 0)):
        self.inner, self.name, self.initial = inner, inner.name, initial
        self.prefetch(initial)

    def prefetch(self, decision: Decision) -> None:
        """Let the inner policy prepare the next Sync from ``decision`` (off the reply's path)."""
        if hasattr(self.inner, "prefetch"):
            self.inner.prefetch(decision.t_d, decision.t_plus)

    def choose(self, snr_db: float, previous: Decision | None) -> Decision:
        state = previous or self.initial
        t_d, t_plus = self.inner.step(state.t_d, state.t_plus, snr_db)
        # Logged by the receiver once the reply is on its way (Receiver.after_sync), not here: a log
        # line on the Sync's own thread cost ~0.14 ms of a ~3 ms round trip.
        return Decision(t_d, t_plus)

    def describe(self) -> str:
        desc = self.inner.describe()
        return f"{desc}, first sync from t_D={self.initial.t_d} t_plus={self.initial.t_plus}" if self.name == "ddpg" else desc


POLICIES = ("fixed", "ddpg", "table")


def make_policy(name: str, t_d: int, t_plus: int, num_timesteps: int = 1000, checkpoint_dir: str | Path | None = None,
                preset: str = "cifar10") -> Policy:
    """Build the policy ``name`` (one of POLICIES) from the CLI's options.

    ``fixed`` uses (t_d, t_plus); ``ddpg`` starts each session there; ``ddpg`` and ``table`` load
    their artefacts from ``checkpoint_dir`` (default: the preset's), CheckpointError if missing.
    """
    if name == "fixed":
        return FixedPolicy(t_d, t_plus, num_timesteps)
    if name in ("ddpg", "table"):
        from shared.agent.policy import load_step_policy
        from shared.checkpoints import default_checkpoint_dir

        directory = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(preset)
        return StepPolicy(load_step_policy(name, directory, preset), Decision(t_d, t_plus))
    raise ValueError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
