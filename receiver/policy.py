"""Timestep policies: from the measured SNR to (t_D, t_plus) for the next sync epoch.

A policy sees the pilot SNR (dB) and the session's previous decision (None on the first sync);
the DDPG policy of paper IV-D will plug in here with the same interface.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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


POLICIES = ("fixed",)


def make_policy(name: str, t_d: int, t_plus: int, num_timesteps: int = 1000) -> Policy:
    """Build the policy ``name`` (one of POLICIES) from the CLI's options."""
    if name == "fixed":
        return FixedPolicy(t_d, t_plus, num_timesteps)
    raise ValueError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
