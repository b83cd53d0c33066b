"""`diffusec train agent`: DDPG on the grid environment, evaluated periodically at fixed SNRs (Fig. 4).

Checkpoints (in the preset's checkpoint folder):

- ``agent.pt`` + ``agent.json``: the actor and critic, the DDPG and environment configs, and the
  manifest (grid header, steps, final evaluation, wall time); written at the end;
- ``agent.resume.pt``: everything needed to continue (networks, targets, optimizers, replay
  buffer, random state, curves), written every ``checkpoint_every`` steps. A later run with the
  same hyperparameters continues from it; a larger ``--total-steps`` trains further.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

from .ddpg import DDPG, DDPGConfig, ReplayBuffer, train
from .env import EnvConfig, GridRewardSource, StepSelectionEnv
from .grid import Grid, GridAxes, GridError, Measure
from .policy import AGENT_FILE

RESUME_FILE = "agent.resume.pt"
EVAL_SNRS = (-3.0, 3.0, 9.0, 15.0)
EVAL_KEYS = ("reward", "ssim", "adv", "err", "robust_accuracy")


def evaluate_actor(agent: DDPG, source, env_config: EnvConfig, snrs=EVAL_SNRS, episodes: int = 8,
                   seed: int = 12345) -> dict:
    """Per SNR: the metrics averaged over ``episodes`` episodes x 3 deterministic steps (VI-B), same starts each time."""
    out = {}
    for snr in snrs:
        env = StepSelectionEnv(source, env_config, fixed_snr_db=snr)
        sums = dict.fromkeys(EVAL_KEYS, 0.0)
        count = 0
        obs, _ = env.reset(seed=seed)
        for _ in range(episodes):
            done = False
            while not done:
                obs, _, terminated, truncated, info = env.step(agent.act(obs))
                for k in EVAL_KEYS:
                    sums[k] += info.get(k) or 0.0
                count += 1
                done = terminated or truncated
            obs, _ = env.reset()
        out[f"{snr:g}"] = {k: round(v / count, 5) for k, v in sums.items()}
    return out


def _config_key(config: DDPGConfig) -> dict:
    key = config.to_dict()
    key.pop("total_steps")
    return key


def matching_grid(path: Path, preset: str, axes: GridAxes, measure: Measure, n: int,
                  models_md5: dict | None = None) -> Grid | None:
    """The complete grid at ``path`` if it was measured on these axes with this sampler, ``n`` images,
    clean batch (or not) and, when given, these checkpoints (``models_md5``), else None: then
    :func:`~.grid.measure_grid` measures, resumes or refuses it.

    Lets `diffusec train agent` skip loading the models when the grid it needs is already there.
    """
    if not path.exists():
        return None
    try:
        grid = Grid.load(path, preset)
    except GridError:     # incomplete or unreadable: measure_grid resumes or refuses it
        return None
    header = grid.meta.get("header", {})
    if (header.get("sampler"), header.get("n"), header.get("clean")) != (measure.sampler, n, measure.clean):
        return None
    if models_md5 is not None and header.get("models_md5") != models_md5:
        return None
    if (tuple(grid.axes.t_d), tuple(grid.axes.t_plus), tuple(grid.axes.snr_db)) != (axes.t_d, axes.t_plus, axes.snr_db):
        return None
    return grid


class _Run:
    """One training run: the env on the grid, the agent, its replay buffer and random stream, the
    evaluation curves; saved to (and resumed from) ``agent.resume.pt`` in ``directory``."""

    def __init__(self, grid: Grid, directory: Path, config: DDPGConfig, env_config: EnvConfig):
        self.grid, self.directory, self.config, self.env_config = grid, Path(directory), config, env_config
        self.source = GridRewardSource(grid)
        self.env = StepSelectionEnv(self.source, env_config)
        obs_space, act_space = self.env.observation_space, self.env.action_space
        self.agent = DDPG(obs_space.low, obs_space.high, act_space.low, act_space.high, config)
        self.buffer = ReplayBuffer(config.buffer_size, obs_space.shape[0], act_space.shape[0])
        self.rng = np.random.default_rng(config.seed)
        self.curves: list[dict] = []
        self.start_step, self.wall_before, self.obs = 0, 0.0, None
        self.resume_path = self.directory / RESUME_FILE
        self.started = time.time()

    def resume(self, log) -> None:
        """Continue from the resume file if it was written with these hyperparameters on this grid."""
        if not self.resume_path.exists():
            return
        blob = torch.load(self.resume_path, map_location="cpu", weights_only=False)
        if blob["config_key"] != _config_key(self.config) or blob["grid_header"] != self.grid.meta.get("header"):
            log(f"note: {self.resume_path} has other hyperparameters or another grid; starting afresh (it will be "
                f"overwritten)")
            return
        self.agent.load_state_dict(blob["agent"])
        self.buffer.load_state_dict(blob["buffer"])
        self.rng.bit_generator.state = blob["rng"]
        if "env" in blob:   # resume files before 2026-12-01 lack it: their episode restarts
            self.obs = self.env.restore(blob["env"])
        self.curves, self.start_step, self.wall_before = blob["curves"], blob["step"], blob.get("wall_s", 0.0)
        log(f"resuming the agent from step {self.start_step} ({self.resume_path})")

    def wall_s(self) -> float:
        """Seconds of training, earlier runs of this resume file included."""
        return self.wall_before + time.time() - self.started

    def record(self, step: int) -> None:
        """Evaluate the actor at the fixed SNRs and append the point to the curves."""
        per_snr = evaluate_actor(self.agent, self.source, self.env_config)
        self.curves.append({"step": step, "snr": per_snr,
                            "mean_reward": round(float(np.mean([v["reward"] for v in per_snr.values()])), 5)})

    def save_resume(self, step: int) -> None:
        tmp = self.resume_path.with_suffix(".tmp")
        self.directory.mkdir(parents=True, exist_ok=True)
        torch.save({"config_key": _config_key(self.config), "grid_header": self.grid.meta.get("header"),
                    "agent": self.agent.state_dict(), "buffer": self.buffer.state_dict(),
                    "rng": self.rng.bit_generator.state, "env": self.env.snapshot(), "curves": self.curves,
                    "step": step, "wall_s": self.wall_s()}, tmp)
        os.replace(tmp, self.resume_path)


def _save_agent(run: _Run, preset: str, eval_every: int, plot_path: Path | None) -> dict:
    """agent.pt/json (actor, critic, configs, manifest) and the curves PNG -> the manifest."""
    from ..checkpoints import save_checkpoint
    from .plots import plot_training

    config, env_config, grid = run.config, run.env_config, run.grid
    wall = run.wall_s()
    plot = None
    if plot_path is not None:
        plot = plot_training(run.curves, plot_path, config.learning_starts,
                             f"DDPG step selection, preset {preset}: evaluation every {eval_every} steps at fixed SNRs "
                             f"(8 episodes x 3 steps, grid reward)")
    manifest = {"ddpg": config.to_dict(), "env": dataclasses.asdict(env_config), "grid": grid.meta.get("header"),
                "grid_command": grid.meta.get("command"), "steps": config.total_steps, "wall_time_s": round(wall, 1),
                "metrics": run.curves[-1] if run.curves else {}, "curves": run.curves, "plot": plot,
                "reward_source": "grid (trilinear interpolation of agent_grid.json)"}
    state = {"actor": run.agent.actor.state_dict(), "critic": run.agent.critic.state_dict(),
             "env_config": dataclasses.asdict(env_config), "ddpg_config": config.to_dict()}
    save_checkpoint(run.directory, AGENT_FILE.removesuffix(".pt"), state, preset, manifest)
    return manifest


def train_agent(grid: Grid, directory: Path, preset: str, config: DDPGConfig = DDPGConfig(),
                env_config: EnvConfig = EnvConfig(), eval_every: int = 250, checkpoint_every: int = 1000,
                progress: bool = True, plot_path: Path | None = None, log=print) -> dict:
    """Train (or resume) the agent on ``grid``; write agent.pt/json, the resume file and the curves PNG -> manifest.

    The actor is evaluated every ``eval_every`` steps and the resume file written every
    ``checkpoint_every`` steps (both also at the last step); ``log`` gets the resume notes.
    """
    from tqdm import tqdm

    run = _Run(grid, directory, config, env_config)
    run.resume(log)
    run.started = time.time()   # the wall time counts training, not loading the resume file
    if run.start_step == 0:
        run.record(0)
    bar = tqdm(total=config.total_steps, initial=run.start_step, desc="agent (DDPG)", unit="step",
               disable=not progress, dynamic_ncols=True)

    def on_step(step: int, _agent: DDPG, info: dict) -> None:
        bar.update(1)
        if step % eval_every == 0 or step == config.total_steps:
            if not run.curves or run.curves[-1]["step"] != step:
                run.record(step)
            bar.set_postfix_str(f"mean eval reward {run.curves[-1]['mean_reward']:.3f}")
        if step % checkpoint_every == 0 or step == config.total_steps:
            run.save_resume(step)

    try:
        if run.start_step < config.total_steps:
            train(run.env, config, run.agent, run.buffer, run.start_step, run.rng, on_step, run.obs)
    finally:
        bar.close()
    return _save_agent(run, preset, eval_every, plot_path)
