"""Step-selection policies built from the agent's artefacts: the trained actor, and the grid oracle.

Both map (current t_D, current t_plus, measured SNR dB) -> next (t_D, t_plus), clamped to the
state box of :class:`~shared.agent.env.EnvConfig`. They run inside the receiver's Sync, so they
avoid torch: the actor's three layers are evaluated with numpy (tens of microseconds).
"""
from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..checkpoints import CheckpointError
from .env import EnvConfig, apply_action, clamp_state

AGENT_FILE = "agent.pt"
SNR_ROW_STEP_DB = 0.05   # SNR resolution of the actor's precomputed decision rows
MAX_ROWS = 4096          # states kept (50 x 51 possible; a row is ~1 KB)
TRAIN_COMMAND = "diffusec train agent --preset {preset}"


def agent_path(directory: str | Path) -> Path:
    return Path(directory) / AGENT_FILE


def load_agent(directory: str | Path, preset: str) -> dict:
    """The saved agent blob (actor/critic state dicts, configs); CheckpointError naming the command if absent."""
    import torch

    path = agent_path(directory)
    if not path.exists():
        raise CheckpointError(f"no step-selection agent at {path}: train it with `{TRAIN_COMMAND.format(preset=preset)}` "
                              f"(it measures the grid first), or point --checkpoints at a folder with {AGENT_FILE}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        raise CheckpointError(f"cannot read {path}: {err}; re-train with `{TRAIN_COMMAND.format(preset=preset)}`") from err
    if blob.get("preset") != preset:
        raise CheckpointError(f"{path} was trained for preset {blob.get('preset')!r}, not {preset!r}")
    return blob["state_dict"]


def env_config_from(saved: dict) -> EnvConfig:
    return EnvConfig(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in saved.items()})


class ActorPolicy:
    """The DDPG actor mu(s): next state = clamp(state + mu(t_D, t_plus, SNR))."""

    name = "ddpg"

    def __init__(self, actor_state: dict, env_config: EnvConfig = EnvConfig()):
        def arr(key: str) -> np.ndarray:
            return actor_state[key].detach().cpu().numpy().astype(np.float64)

        self.layers = [(arr(f"fc{i}.weight").T.copy(), arr(f"fc{i}.bias")) for i in (1, 2, 3)]
        self.center, self.halfwidth = arr("obs_norm.center"), arr("obs_norm.halfwidth")
        self.scale, self.bias = arr("action_scale"), arr("action_bias")
        self.config = env_config
        # Decisions precomputed per state over an SNR grid (see prefetch): the Sync path then indexes
        # instead of running three layers on cold caches (~250 us when syncs are milliseconds apart).
        lo, hi = env_config.snr_obs_range_db
        self.snr_grid_db = np.arange(lo, hi + SNR_ROW_STEP_DB / 2, SNR_ROW_STEP_DB)
        self._rows: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._rows_lock = threading.Lock()

    @classmethod
    def load(cls, directory: str | Path, preset: str) -> "ActorPolicy":
        blob = load_agent(directory, preset)
        return cls(blob["actor"], env_config_from(blob["env_config"]))

    def actions(self, obs: np.ndarray) -> np.ndarray:
        """mu(s) for observations [N, 3] (t_D, t_plus, SNR dB; SNR already clipped) -> actions [N, 2]."""
        x = (obs - self.center) / self.halfwidth
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        x = np.maximum(x @ w1 + b1, 0.0)
        x = np.maximum(x @ w2 + b2, 0.0)
        return np.tanh(x @ w3 + b3) * self.scale + self.bias

    def action(self, t_d: float, t_plus: float, snr_db: float) -> np.ndarray:
        lo, hi = self.config.snr_obs_range_db
        return self.actions(np.array([[t_d, t_plus, min(max(snr_db, lo), hi)]]))[0]

    def step(self, t_d: int, t_plus: int, snr_db: float) -> tuple[int, int]:
        """The next state, computed exactly (eval, env) or, after :meth:`prefetch` of this state, looked
        up at the nearest SNR_ROW_STEP_DB point (the receiver's Sync path)."""
        t_d, t_plus = clamp_state(self.config, t_d, t_plus)
        row = self._rows.get((t_d, t_plus))
        if row is not None:
            lo, hi = self.config.snr_obs_range_db
            i = int(round((min(max(snr_db, lo), hi) - lo) / SNR_ROW_STEP_DB))
            return int(row[i, 0]), int(row[i, 1])
        return apply_action(self.config, t_d, t_plus, self.action(t_d, t_plus, snr_db))

    def prefetch(self, t_d: int, t_plus: int) -> None:
        """Precompute this state's decisions at every SNR_ROW_STEP_DB point (one batched pass, ~ms).

        Call it off the reply's path with the state just handed out: the next Sync of that session
        starts from it. Looked-up decisions equal the exact ones at an SNR at most
        SNR_ROW_STEP_DB / 2 away -- far inside the pilot estimate's own error (~0.16 dB mean).
        """
        t_d, t_plus = clamp_state(self.config, t_d, t_plus)
        if (t_d, t_plus) in self._rows:
            return
        n = len(self.snr_grid_db)
        obs = np.column_stack([np.full(n, float(t_d)), np.full(n, float(t_plus)), self.snr_grid_db])
        c = self.config
        delta = np.clip(self.actions(obs), -np.asarray(c.max_delta, float), np.asarray(c.max_delta, float))
        # apply_action, vectorised: add, round half to even (as Python's round), clamp into the box
        row = np.column_stack([np.clip(np.round(t_d + delta[:, 0]), *c.t_d_range),
                               np.clip(np.round(t_plus + delta[:, 1]), *c.t_plus_range)]).astype(np.int16)
        with self._rows_lock:
            self._rows[(t_d, t_plus)] = row
            while len(self._rows) > MAX_ROWS:
                self._rows.popitem(last=False)

    def describe(self) -> str:
        return "ddpg actor"


class TablePolicy:
    """Oracle baseline: the grid's best (t_D, t_plus) at the nearest grid SNR (highest robust accuracy, ties -> reward)."""

    name = "table"

    def __init__(self, best: dict[float, tuple[int, int]]):
        if not best:
            raise ValueError("empty table")
        self.snrs = sorted(best)
        self.best = best

    @classmethod
    def from_grid(cls, grid) -> "TablePolicy":
        return cls(grid.best_per_snr("robust_accuracy", "reward"))

    @classmethod
    def load(cls, directory: str | Path, preset: str) -> "TablePolicy":
        from .grid import GRID_FILE, Grid

        return cls.from_grid(Grid.load(Path(directory) / GRID_FILE, preset))

    def lookup(self, snr_db: float) -> tuple[int, int]:
        j = bisect.bisect_left(self.snrs, snr_db)
        candidates = [s for s in (self.snrs[max(j - 1, 0)], self.snrs[min(j, len(self.snrs) - 1)])]
        nearest = min(candidates, key=lambda s: (abs(s - snr_db), s))
        return self.best[nearest]

    def step(self, t_d: int, t_plus: int, snr_db: float) -> tuple[int, int]:
        return self.lookup(snr_db)

    def describe(self) -> str:
        return "table " + ", ".join(f"{s:g} dB->({d},{p})" for s, (d, p) in sorted(self.best.items()))


def load_step_policy(name: str, directory: str | Path, preset: str):
    """``ddpg`` -> :class:`ActorPolicy`, ``table`` -> :class:`TablePolicy` from ``directory``."""
    if name == "ddpg":
        return ActorPolicy.load(directory, preset)
    if name == "table":
        return TablePolicy.load(directory, preset)
    raise ValueError(f"unknown step policy {name!r}; use ddpg or table")
