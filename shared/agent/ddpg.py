"""DDPG (Lillicrap et al.), as the paper's Algorithm 1 runs it; CleanRL-style, readable top to bottom.

Why our own and not Stable-Baselines3: SB3's DDPG (a TD3 subclass) builds one optimizer
learning rate for actor and critic (``learning_rate``), and the paper trains the critic at 1e-4
and the actor at 1e-5 (VI-A). Patching SB3's optimizers after construction would hide that in a
detail; ~150 lines here make every hyperparameter visible in :class:`DDPGConfig`.

Algorithm 1, line by line:

- 1-3: replay buffer R, actor mu and critic Q, targets mu' <- mu, Q' <- Q;
- 5-8: per episode a random initial state; a = mu(s) + n (Gaussian exploration noise), or a
  uniformly random action for the first ``learning_starts`` steps (the paper's 2,500 random
  steps, VI-B); perform it, get s' and r (eq. 31);
- 9-12: store (s, a, r, s') (the buffer overwrites its oldest entry when full);
- 13-16: a minibatch; y = r + gamma * (1 - done) * Q'(s', mu'(s')) (eq. 36; ``done`` is 1 only at
  a true terminal state, never at the episode's time limit); critic minimises mean (Q(s,a) - y)^2
  (eq. 37); actor ascends Q(s, mu(s)) (eq. 38);
- 17: soft target updates theta' <- tau theta + (1 - tau) theta'.

Networks (VI-A): three fully connected layers, hidden width 256, ReLU after the first two; the
actor's last layer is tanh, scaled to the action bounds. Observations (and, for the critic,
actions) are mapped affinely from their Box to [-1, 1] inside the networks.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _hyperparameter(default, help: str):
    """A DDPGConfig field whose ``help`` is what ``diffusec train agent --help`` shows for its option."""
    return field(default=default, metadata={"help": help})


@dataclass
class DDPGConfig:
    """Every DDPG hyperparameter; the defaults are the paper's (VI-A, VI-B) where it gives one.

    Each field carries its help in ``metadata["help"]``: ``diffusec train agent`` makes one option
    per field from it (``--total-steps`` ...), so a new field is a new option with its help.
    """

    total_steps: int = _hyperparameter(10_000, "environment steps (ours: trains in about a minute on the grid env)")
    learning_starts: int = _hyperparameter(2_500, "uniformly random actions before learning (paper VI-B)")
    buffer_size: int = _hyperparameter(1_000_000, "replay buffer (paper: 1e6)")
    batch_size: int = _hyperparameter(256, "minibatch (ours; the paper's B = 256 is its reward batch)")
    gamma: float = _hyperparameter(0.99, "discount (paper)")
    tau: float = _hyperparameter(5e-3, "soft target update (paper)")
    critic_lr: float = _hyperparameter(1e-4, "paper")
    actor_lr: float = _hyperparameter(1e-5, "paper")
    hidden: int = _hyperparameter(256, "hidden width of actor and critic (paper)")
    exploration_noise: float = _hyperparameter(
        0.1, "Gaussian noise std, as a fraction of the action bound (ours, CleanRL's)")
    policy_frequency: int = _hyperparameter(
        1, "actor and target updates every this many critic updates (paper: 1)")
    seed: int = _hyperparameter(0, "seed")

    def to_dict(self) -> dict:
        return asdict(self)


# --- networks ----------------------------------------------------------------------------------------
class _Affine(nn.Module):
    """Maps a Box [low, high] affinely onto [-1, 1] (fixed, not trained)."""

    def __init__(self, low, high):
        super().__init__()
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("halfwidth", ((high - low) / 2).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.center) / self.halfwidth


class Actor(nn.Module):
    """mu(s): 3 FC layers, ReLU, ReLU, tanh scaled to [action_low, action_high]."""

    def __init__(self, obs_low, obs_high, act_low, act_high, hidden: int = 256):
        super().__init__()
        self.obs_norm = _Affine(obs_low, obs_high)
        act_low, act_high = torch.as_tensor(act_low, dtype=torch.float32), torch.as_tensor(act_high, dtype=torch.float32)
        self.fc1 = nn.Linear(len(obs_low), hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, len(act_low))
        self.register_buffer("action_scale", (act_high - act_low) / 2)
        self.register_buffer("action_bias", (act_high + act_low) / 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(self.obs_norm(obs)))
        x = F.relu(self.fc2(x))
        return torch.tanh(self.fc3(x)) * self.action_scale + self.action_bias


class Critic(nn.Module):
    """Q(s, a): 3 FC layers on [s, a] (both normalised to their boxes), ReLU, ReLU, linear."""

    def __init__(self, obs_low, obs_high, act_low, act_high, hidden: int = 256):
        super().__init__()
        self.obs_norm, self.act_norm = _Affine(obs_low, obs_high), _Affine(act_low, act_high)
        self.fc1 = nn.Linear(len(obs_low) + len(act_low), hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.obs_norm(obs), self.act_norm(action)], dim=1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# --- replay buffer -----------------------------------------------------------------------------------
class ReplayBuffer:
    """Circular buffer of (s, a, r, s', done); the oldest entry goes when full (Algorithm 1, 9-12)."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int):
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.obs = np.zeros((0, obs_dim), np.float32)
        self.next_obs = np.zeros((0, obs_dim), np.float32)
        self.actions = np.zeros((0, act_dim), np.float32)
        self.rewards = np.zeros((0, 1), np.float32)
        self.dones = np.zeros((0, 1), np.float32)

    def _grow(self) -> None:
        """Allocate lazily in chunks, so a 1e6 capacity costs memory only as it fills."""
        new = min(self.capacity, max(1024, 2 * len(self.obs)))
        for name in ("obs", "next_obs", "actions", "rewards", "dones"):
            old = getattr(self, name)
            grown = np.zeros((new, old.shape[1]), np.float32)
            grown[:len(old)] = old
            setattr(self, name, grown)

    def add(self, obs, action, reward: float, next_obs, done: bool) -> None:
        if self.pos >= len(self.obs):
            self._grow()
        i = self.pos
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.dones[i] = obs, action, reward, next_obs, done
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(0, self.size, size=batch_size)
        return tuple(torch.from_numpy(a[idx]) for a in (self.obs, self.actions, self.rewards, self.next_obs, self.dones))

    def state_dict(self) -> dict:
        n = self.size if self.size < self.capacity else self.capacity
        return {"capacity": self.capacity, "size": self.size, "pos": self.pos,
                **{k: getattr(self, k)[:n].copy() for k in ("obs", "next_obs", "actions", "rewards", "dones")}}

    def load_state_dict(self, state: dict) -> None:
        self.capacity, self.size, self.pos = state["capacity"], state["size"], state["pos"]
        for k in ("obs", "next_obs", "actions", "rewards", "dones"):
            setattr(self, k, np.asarray(state[k], np.float32).copy())


# --- the update rules (each a small function, tested one by one) ---------------------------------------
@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta' <- tau * theta + (1 - tau) * theta' (Algorithm 1, line 17)."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.mul_(1.0 - tau).add_(s, alpha=tau)


@torch.no_grad()
def td_target(rewards: torch.Tensor, next_obs: torch.Tensor, dones: torch.Tensor, target_actor: nn.Module,
              target_critic: nn.Module, gamma: float) -> torch.Tensor:
    """Eq. 36: y = r + gamma * (1 - done) * Q'(s', mu'(s')), shapes [B, 1]."""
    return rewards + gamma * (1.0 - dones) * target_critic(next_obs, target_actor(next_obs))


def critic_loss(critic: nn.Module, obs: torch.Tensor, actions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 37: mean (Q(s, a) - y)^2."""
    return F.mse_loss(critic(obs, actions), y)


def actor_loss(actor: nn.Module, critic: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """Eq. 38 as a loss: -mean Q(s, mu(s)); its gradient w.r.t. the actor is the sampled policy gradient."""
    return -critic(obs, actor(obs)).mean()


class DDPG:
    """Actor, critic, their targets and optimizers (separate learning rates, the reason this exists)."""

    def __init__(self, obs_low, obs_high, act_low, act_high, config: DDPGConfig = DDPGConfig()):
        self.config = config
        torch.manual_seed(config.seed)
        self.actor = Actor(obs_low, obs_high, act_low, act_high, config.hidden)
        self.critic = Critic(obs_low, obs_high, act_low, act_high, config.hidden)
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.act_low = np.asarray(act_low, np.float32)
        self.act_high = np.asarray(act_high, np.float32)
        self.updates = 0

    @torch.no_grad()
    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
        """mu(s) (+ Gaussian noise of std ``noise`` * action bound), clipped to the action box."""
        action = self.actor(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0].numpy()
        if noise > 0 and rng is not None:
            action = action + rng.normal(0.0, noise * (self.act_high - self.act_low) / 2)
        return np.clip(action, self.act_low, self.act_high).astype(np.float32)

    def update(self, batch: tuple[torch.Tensor, ...]) -> dict:
        """One critic step, and (every ``policy_frequency``) one actor step and the soft target updates."""
        obs, actions, rewards, next_obs, dones = batch
        y = td_target(rewards, next_obs, dones, self.target_actor, self.target_critic, self.config.gamma)
        q_loss = critic_loss(self.critic, obs, actions, y)
        self.critic_opt.zero_grad()
        q_loss.backward()
        self.critic_opt.step()
        out = {"critic_loss": q_loss.detach().item()}
        self.updates += 1
        if self.updates % self.config.policy_frequency == 0:
            a_loss = actor_loss(self.actor, self.critic, obs)
            self.actor_opt.zero_grad()
            a_loss.backward()
            self.actor_opt.step()
            soft_update(self.target_actor, self.actor, self.config.tau)
            soft_update(self.target_critic, self.critic, self.config.tau)
            out["actor_loss"] = a_loss.detach().item()
        return out

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "target_actor": self.target_actor.state_dict(), "target_critic": self.target_critic.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "target_actor", "target_critic", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.updates = state["updates"]


def train(env, config: DDPGConfig, agent: DDPG | None = None, buffer: ReplayBuffer | None = None,
          start_step: int = 0, rng: np.random.Generator | None = None,
          on_step: Callable[[int, DDPG, dict], None] | None = None,
          obs: np.ndarray | None = None) -> tuple[DDPG, ReplayBuffer]:
    """Algorithm 1 on a gymnasium ``env`` from ``start_step`` to ``config.total_steps``.

    ``on_step(step, agent, info)`` runs after every environment step (evaluation, checkpoints,
    progress). To resume, pass ``agent``, ``buffer``, ``rng``, ``start_step`` and ``obs``, the
    observation of an env (and action space) restored mid-run: the run then continues exactly as
    if never interrupted. Without ``obs`` the env and the action sampler are seeded from ``rng``.
    """
    obs_space, act_space = env.observation_space, env.action_space
    agent = agent or DDPG(obs_space.low, obs_space.high, act_space.low, act_space.high, config)
    buffer = buffer or ReplayBuffer(config.buffer_size, obs_space.shape[0], act_space.shape[0])
    rng = rng or np.random.default_rng(config.seed)
    if obs is None:
        act_space.seed(int(rng.integers(2**31)))
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
    for step in range(start_step, config.total_steps):
        if step < config.learning_starts:
            action = act_space.sample()
        else:
            action = agent.act(obs, rng, config.exploration_noise)
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
        if step >= config.learning_starts:
            info = {**info, **agent.update(buffer.sample(config.batch_size, rng))}
        if on_step is not None:
            on_step(step + 1, agent, info)
    return agent, buffer
