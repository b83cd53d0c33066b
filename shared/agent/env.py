"""The step-selection MDP of paper IV-D as a ``gymnasium.Env``.

State s = (t_D, t_plus, SNR dB), a float Box. Action a = (delta t_D, delta t_plus) in
[-t'_Dmax, t'_Dmax] x [-t'_plusmax, t'_plusmax] = [-25, 25]^2 (VI-A). The next state is the old one
moved by the action, rounded to whole timesteps and clamped to t_D in [1, t_Dmax = 50],
t_plus in [0, t_plusmax = 50]; the SNR is drawn once per episode, uniformly from the training
range -3..12 dB (VI-C), and does not change within it. The reward of a step is eq. 31 measured
at the *new* state (r^i = R(s^i, s^{i+1}): the chain runs with the timesteps just chosen).
Episodes are 3 state updates long (VI-B: "the state [is] updated 3 times every episode"), then
truncated (a time limit, not a terminal state). Initial (t_D, t_plus) is uniform on the integers
1..50 x 0..50 (VI-C).

Bounds, eqs. 24-25. Eq. 24 (t_Dmax + t_plusmax < T) holds: 50 + 50 < 1000. The text of eq. 25
reads "t_D + t_plus < t_Dmax", which cannot be meant literally: with t_Dmax = 50 it would cap
t_P = t_D + t_plus below 50 and make the stated range t_plus in [0, 50] (and VI-C's random
initial states, t_D up to 50 *and* t_plus up to 50) impossible. We read eq. 25 as the per-factor
box t_D <= t_Dmax, t_plus <= t_plusmax, which with eq. 24 keeps t_P = t_D + t_plus < T: it is
consistent with every number the paper gives and with its evaluation protocol.

The reward comes from a :class:`RewardSource`: :class:`GridRewardSource` (the measured grid,
interpolated; see :mod:`shared.agent.grid` for what that costs in fidelity) or
:class:`LiveRewardSource` (one pipeline run of the fixed attacked batch per step).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import gymnasium as gym
import numpy as np

from .reward import PAPER_WEIGHTS, RewardWeights


@dataclass(frozen=True)
class EnvConfig:
    t_d_range: tuple[int, int] = (1, 50)           # [1, t_Dmax]
    t_plus_range: tuple[int, int] = (0, 50)        # [0, t_plusmax]
    max_delta: tuple[float, float] = (25.0, 25.0)  # t'_Dmax, t'_plusmax
    snr_range_db: tuple[float, float] = (-3.0, 12.0)   # training SNRs, drawn per episode
    snr_obs_range_db: tuple[float, float] = (-10.0, 20.0)  # observation Box (eval SNRs -6..18 fit inside)
    episode_steps: int = 3


class RewardSource(Protocol):
    def measure(self, t_d: int, t_plus: int, snr_db: float) -> dict:
        """Metrics at the state (t_D, t_plus, SNR): at least ``reward``, ``ssim``, ``adv``, ``err``."""


class GridRewardSource:
    """Rewards from the measured grid (trilinear, clamped)."""

    def __init__(self, grid, weights: RewardWeights = PAPER_WEIGHTS):
        self.grid, self.weights = grid, weights

    def measure(self, t_d: int, t_plus: int, snr_db: float) -> dict:
        return self.grid.reward(t_d, t_plus, snr_db, self.weights)


class LiveRewardSource:
    """Rewards from a pipeline run of the fixed attacked batch at each step (what the paper does)."""

    def __init__(self, pipeline, batch, measure, weights: RewardWeights = PAPER_WEIGHTS):
        self.pipeline, self.batch, self.measure_cfg, self.weights = pipeline, batch, measure, weights

    def measure(self, t_d: int, t_plus: int, snr_db: float) -> dict:
        from .grid import measure_state

        return measure_state(self.pipeline, self.batch, t_d, t_plus, snr_db, self.measure_cfg, self.weights)


def clamp_state(config: EnvConfig, t_d: float, t_plus: float) -> tuple[int, int]:
    """Round to whole timesteps and clamp into the state box."""
    lo_d, hi_d = config.t_d_range
    lo_p, hi_p = config.t_plus_range
    return int(min(max(round(t_d), lo_d), hi_d)), int(min(max(round(t_plus), lo_p), hi_p))


def apply_action(config: EnvConfig, t_d: int, t_plus: int, action) -> tuple[int, int]:
    """The next (t_D, t_plus): the action clipped to its box, added, rounded and clamped."""
    a0 = float(np.clip(action[0], -config.max_delta[0], config.max_delta[0]))
    a1 = float(np.clip(action[1], -config.max_delta[1], config.max_delta[1]))
    return clamp_state(config, t_d + a0, t_plus + a1)


class StepSelectionEnv(gym.Env):
    """Observation float32 [t_D, t_plus, SNR dB]; action float32 [delta t_D, delta t_plus]."""

    metadata = {"render_modes": []}

    def __init__(self, reward_source: RewardSource, config: EnvConfig = EnvConfig(), fixed_snr_db: float | None = None):
        super().__init__()
        self.source, self.config, self.fixed_snr_db = reward_source, config, fixed_snr_db
        c = config
        self.observation_space = gym.spaces.Box(
            low=np.array([c.t_d_range[0], c.t_plus_range[0], c.snr_obs_range_db[0]], dtype=np.float32),
            high=np.array([c.t_d_range[1], c.t_plus_range[1], c.snr_obs_range_db[1]], dtype=np.float32),
            dtype=np.float32)
        self.action_space = gym.spaces.Box(low=-np.array(c.max_delta, dtype=np.float32),
                                           high=np.array(c.max_delta, dtype=np.float32), dtype=np.float32)
        self.t_d, self.t_plus, self.snr_db, self.steps = c.t_d_range[0], c.t_plus_range[0], 0.0, 0

    def _obs(self) -> np.ndarray:
        lo, hi = self.config.snr_obs_range_db
        return np.array([self.t_d, self.t_plus, min(max(self.snr_db, lo), hi)], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Random initial (t_D, t_plus); SNR from ``options['snr_db']``, the fixed SNR, or uniform on the training range."""
        super().reset(seed=seed)
        c, rng = self.config, self.np_random
        self.t_d = int(rng.integers(c.t_d_range[0], c.t_d_range[1] + 1))
        self.t_plus = int(rng.integers(c.t_plus_range[0], c.t_plus_range[1] + 1))
        options = options or {}
        if "t_d" in options:
            self.t_d, self.t_plus = clamp_state(c, options["t_d"], options.get("t_plus", self.t_plus))
        if options.get("snr_db") is not None:
            self.snr_db = float(options["snr_db"])
        elif self.fixed_snr_db is not None:
            self.snr_db = float(self.fixed_snr_db)
        else:
            self.snr_db = float(rng.uniform(*c.snr_range_db))
        self.steps = 0
        return self._obs(), {"t_d": self.t_d, "t_plus": self.t_plus, "snr_db": self.snr_db}

    def snapshot(self) -> dict:
        """The episode in progress and the random streams of the env and its action space (the random
        actions before learning starts), for a training run's resume file."""
        return {"t_d": self.t_d, "t_plus": self.t_plus, "snr_db": self.snr_db, "steps": self.steps,
                "np_random": self.np_random.bit_generator.state,
                "action_rng": self.action_space.np_random.bit_generator.state}

    def restore(self, snapshot: dict) -> np.ndarray:
        """Continue the episode saved by :meth:`snapshot` -> its current observation (no reset)."""
        self.t_d, self.t_plus, self.snr_db, self.steps = (snapshot["t_d"], snapshot["t_plus"], snapshot["snr_db"],
                                                          snapshot["steps"])
        self.np_random.bit_generator.state = snapshot["np_random"]
        self.action_space.np_random.bit_generator.state = snapshot["action_rng"]
        return self._obs()

    def step(self, action):
        self.t_d, self.t_plus = apply_action(self.config, self.t_d, self.t_plus, action)
        self.steps += 1
        metrics = self.source.measure(self.t_d, self.t_plus, self.snr_db)
        info = {**metrics, "t_d": self.t_d, "t_plus": self.t_plus, "snr_db": self.snr_db}
        truncated = self.steps >= self.config.episode_steps
        return self._obs(), float(metrics["reward"]), False, truncated, info
