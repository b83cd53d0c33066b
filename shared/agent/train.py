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


def train_agent(grid, directory: Path, preset: str, config: DDPGConfig = DDPGConfig(),
                env_config: EnvConfig = EnvConfig(), eval_every: int = 250, checkpoint_every: int = 1000,
                progress: bool = True, plot_path: Path | None = None, log=print) -> dict:
    """Train (or resume) the agent on ``grid``; write agent.pt/json, the resume file and the curves PNG -> manifest."""
    from tqdm import tqdm

    from ..checkpoints import save_checkpoint
    from .plots import plot_training

    directory = Path(directory)
    source = GridRewardSource(grid)
    env = StepSelectionEnv(source, env_config)
    obs_space, act_space = env.observation_space, env.action_space
    agent = DDPG(obs_space.low, obs_space.high, act_space.low, act_space.high, config)
    buffer = ReplayBuffer(config.buffer_size, obs_space.shape[0], act_space.shape[0])
    rng = np.random.default_rng(config.seed)
    curves: list[dict] = []
    start_step, wall_before, obs = 0, 0.0, None
    resume = directory / RESUME_FILE
    if resume.exists():
        blob = torch.load(resume, map_location="cpu", weights_only=False)
        if blob["config_key"] == _config_key(config) and blob["grid_header"] == grid.meta.get("header"):
            agent.load_state_dict(blob["agent"])
            buffer.load_state_dict(blob["buffer"])
            rng.bit_generator.state = blob["rng"]
            if "env" in blob:   # resume files before 2026-12-01 lack it: their episode restarts
                obs = env.restore(blob["env"])
            curves, start_step, wall_before = blob["curves"], blob["step"], blob.get("wall_s", 0.0)
            log(f"resuming the agent from step {start_step} ({resume})")
        else:
            log(f"note: {resume} has other hyperparameters or another grid; starting afresh (it will be overwritten)")
    start = time.time()

    def record(step: int) -> None:
        per_snr = evaluate_actor(agent, source, env_config)
        curves.append({"step": step, "snr": per_snr,
                       "mean_reward": round(float(np.mean([v["reward"] for v in per_snr.values()])), 5)})

    def save_resume(step: int) -> None:
        tmp = resume.with_suffix(".tmp")
        directory.mkdir(parents=True, exist_ok=True)
        torch.save({"config_key": _config_key(config), "grid_header": grid.meta.get("header"), "agent": agent.state_dict(),
                    "buffer": buffer.state_dict(), "rng": rng.bit_generator.state, "env": env.snapshot(),
                    "curves": curves, "step": step,
                    "wall_s": wall_before + time.time() - start}, tmp)
        os.replace(tmp, resume)

    if start_step == 0:
        record(0)
    bar = tqdm(total=config.total_steps, initial=start_step, desc="agent (DDPG)", unit="step", disable=not progress,
               dynamic_ncols=True)

    def on_step(step: int, _agent: DDPG, info: dict) -> None:
        bar.update(1)
        if step % eval_every == 0 or step == config.total_steps:
            if not curves or curves[-1]["step"] != step:
                record(step)
            bar.set_postfix_str(f"mean eval reward {curves[-1]['mean_reward']:.3f}")
        if step % checkpoint_every == 0 or step == config.total_steps:
            save_resume(step)

    try:
        if start_step < config.total_steps:
            train(env, config, agent, buffer, start_step, rng, on_step, obs)
    finally:
        bar.close()
    wall = wall_before + time.time() - start
    final = curves[-1] if curves else {}
    plot = None
    if plot_path is not None:
        plot = plot_training(curves, plot_path, config.learning_starts,
                             f"DDPG step selection, preset {preset}: evaluation every {eval_every} steps at fixed SNRs "
                             f"(8 episodes x 3 steps, grid reward)")
    manifest = {"ddpg": config.to_dict(), "env": dataclasses.asdict(env_config), "grid": grid.meta.get("header"),
                "grid_command": grid.meta.get("command"), "steps": config.total_steps, "wall_time_s": round(wall, 1),
                "metrics": final, "curves": curves, "plot": plot,
                "reward_source": "grid (trilinear interpolation of agent_grid.json)"}
    state = {"actor": agent.actor.state_dict(), "critic": agent.critic.state_dict(),
             "env_config": dataclasses.asdict(env_config), "ddpg_config": config.to_dict()}
    save_checkpoint(directory, AGENT_FILE.removesuffix(".pt"), state, preset, manifest)
    return manifest
