"""DDPG update rules (Algorithm 1, eqs. 36-38) and a learning check on a trivial 1-D task."""
from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from shared.agent.ddpg import (DDPG, Actor, Critic, DDPGConfig, ReplayBuffer, actor_loss, critic_loss,
                               soft_update, td_target, train)

OBS_LOW, OBS_HIGH = np.array([1, 0, -10], np.float32), np.array([50, 50, 20], np.float32)
ACT_LOW, ACT_HIGH = np.array([-25, -25], np.float32), np.array([25, 25], np.float32)


def nets(hidden: int = 16):
    torch.manual_seed(0)
    return Actor(OBS_LOW, OBS_HIGH, ACT_LOW, ACT_HIGH, hidden), Critic(OBS_LOW, OBS_HIGH, ACT_LOW, ACT_HIGH, hidden)


def batch(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.rand(n, 3, generator=g) * torch.tensor([49, 50, 30]) + torch.tensor([1, 0, -10])
    actions = (torch.rand(n, 2, generator=g) * 2 - 1) * 25
    return obs, actions, -torch.rand(n, 1, generator=g), obs.flip(0), (torch.rand(n, 1, generator=g) < 0.3).float()


def test_soft_update_moves_tau_of_the_way():
    target, _ = nets()
    source = Actor(OBS_LOW, OBS_HIGH, ACT_LOW, ACT_HIGH, 16)
    before = [p.clone() for p in target.parameters()]
    soft_update(target, source, 0.25)
    for t, b, s in zip(target.parameters(), before, source.parameters()):
        assert torch.allclose(t, 0.75 * b + 0.25 * s)
    soft_update(target, source, 1.0)
    assert all(torch.equal(t, s) for t, s in zip(target.parameters(), source.parameters()))


def test_td_target_is_r_plus_discounted_target_q_unless_done():
    actor, critic = nets()
    _, _, rewards, next_obs, dones = batch()
    y = td_target(rewards, next_obs, dones, actor, critic, 0.9)
    with torch.no_grad():
        expected = rewards + 0.9 * (1 - dones) * critic(next_obs, actor(next_obs))
    assert torch.allclose(y, expected)
    assert torch.allclose(y[dones.bool()], rewards[dones.bool()])      # terminal: no bootstrap
    assert not y.requires_grad


def test_critic_loss_decreases_on_a_fixed_batch():
    actor, critic = nets(64)
    obs, actions, rewards, next_obs, dones = batch(64)
    y = td_target(rewards, next_obs, dones, actor, critic, 0.99)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    first = critic_loss(critic, obs, actions, y).item()
    for _ in range(200):
        loss = critic_loss(critic, obs, actions, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert critic_loss(critic, obs, actions, y).item() < 0.2 * first


def test_actor_step_ascends_q_and_leaves_the_critic_alone():
    actor, critic = nets(32)
    obs = batch(64)[0]
    critic_before = [p.clone() for p in critic.parameters()]
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    with torch.no_grad():
        q0 = critic(obs, actor(obs)).mean()
    for _ in range(20):
        loss = actor_loss(actor, critic, obs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert critic(obs, actor(obs)).mean() > q0
    assert all(torch.equal(a, b) for a, b in zip(critic.parameters(), critic_before))


def test_tanh_output_respects_the_action_bounds():
    actor = Actor(OBS_LOW, OBS_HIGH, np.array([-25, -5], np.float32), np.array([25, 15], np.float32), 8)
    with torch.no_grad():
        for layer in (actor.fc1, actor.fc2, actor.fc3):
            layer.weight.mul_(100)        # saturate the tanh
        out = actor(torch.tensor([[1, 0, -10], [50, 50, 20], [25, 25, 5]], dtype=torch.float32) * 10)
    assert (out[:, 0] >= -25).all() and (out[:, 0] <= 25).all()
    assert (out[:, 1] >= -5).all() and (out[:, 1] <= 15).all()
    assert out.abs().max() > 4.9     # really saturated, at the bound


def test_separate_learning_rates_and_paper_defaults():
    config = DDPGConfig()
    assert (config.critic_lr, config.actor_lr, config.gamma, config.tau) == (1e-4, 1e-5, 0.99, 5e-3)
    assert (config.buffer_size, config.learning_starts, config.hidden) == (1_000_000, 2_500, 256)
    agent = DDPG(OBS_LOW, OBS_HIGH, ACT_LOW, ACT_HIGH, DDPGConfig(hidden=8))
    assert agent.actor_opt.param_groups[0]["lr"] == 1e-5 and agent.critic_opt.param_groups[0]["lr"] == 1e-4


def test_replay_buffer_overwrites_the_oldest_and_round_trips():
    buffer = ReplayBuffer(3, 1, 1)
    for i in range(5):
        buffer.add([i], [i], float(i), [i + 1], False)
    assert buffer.size == 3 and sorted(buffer.obs[:3, 0]) == [2, 3, 4]
    clone = ReplayBuffer(1, 1, 1)
    clone.load_state_dict(buffer.state_dict())
    assert clone.size == 3 and sorted(clone.rewards[:3, 0]) == [2, 3, 4]


def test_replay_buffer_samples_only_filled_rows():
    buffer = ReplayBuffer(10_000, 1, 1)          # allocates 1024 zero rows on the first add
    for i in range(5):
        buffer.add([i + 1], [0], 0.0, [0], False)
    obs = buffer.sample(1000, np.random.default_rng(0))[0]
    assert set(obs[:, 0].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_update_bootstraps_from_the_target_networks_then_soft_updates_them():
    config = DDPGConfig(hidden=16, gamma=0.9, tau=0.1, policy_frequency=2, critic_lr=1e-2, actor_lr=1e-2)
    agent = DDPG(OBS_LOW, OBS_HIGH, ACT_LOW, ACT_HIGH, config)
    with torch.no_grad():                        # targets that differ from the online networks
        for p in (*agent.target_critic.parameters(), *agent.target_actor.parameters()):
            p.add_(torch.randn_like(p))
    obs, actions, rewards, next_obs, dones = data = batch(32)
    y_target = td_target(rewards, next_obs, dones, agent.target_actor, agent.target_critic, 0.9)
    y_online = td_target(rewards, next_obs, dones, agent.actor, agent.critic, 0.9)
    with torch.no_grad():
        expected = critic_loss(agent.critic, obs, actions, y_target).item()
        wrong = critic_loss(agent.critic, obs, actions, y_online).item()
    assert abs(expected - wrong) > 1e-3 * expected       # the check below can tell the two apart
    targets = [p.clone() for p in (*agent.target_actor.parameters(), *agent.target_critic.parameters())]
    actor_before = [p.clone() for p in agent.actor.parameters()]
    first = agent.update(data)
    assert first["critic_loss"] == pytest.approx(expected, rel=1e-5) and "actor_loss" not in first
    # policy_frequency 2: after one critic step the actor and the targets have not moved
    assert all(torch.equal(a, b) for a, b in zip(agent.actor.parameters(), actor_before))
    assert all(torch.equal(a, b) for a, b in
               zip((*agent.target_actor.parameters(), *agent.target_critic.parameters()), targets))
    second = agent.update(data)
    assert "actor_loss" in second and agent.updates == 2
    assert not all(torch.equal(a, b) for a, b in zip(agent.actor.parameters(), actor_before))
    online = (*agent.actor.parameters(), *agent.critic.parameters())
    for target, old, new in zip((*agent.target_actor.parameters(), *agent.target_critic.parameters()), targets, online):
        torch.testing.assert_close(target, 0.9 * old + 0.1 * new)


class ChainEnv(gym.Env):
    """Never terminates; a time limit truncates every 2 steps. Reward 1 each step."""

    def __init__(self, terminate: bool = False):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.terminate, self.t = terminate, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t == 2
        return np.full(1, self.t / 2, np.float32), 1.0, end and self.terminate, end and not self.terminate, {}


def test_train_stores_termination_but_not_truncation_as_done():
    """A time limit is not a terminal state: its TD target must still bootstrap (done = 0)."""
    config = DDPGConfig(total_steps=6, learning_starts=100, hidden=8, buffer_size=100)
    _, truncated = train(ChainEnv(terminate=False), config)
    _, terminated = train(ChainEnv(terminate=True), config)
    assert truncated.dones[:6, 0].tolist() == [0.0] * 6
    assert terminated.dones[:6, 0].tolist() == [0.0, 1.0] * 3


class MatchEnv(gym.Env):
    """One-step episodes: observe x ~ U[-1, 1], act a in [-1, 1], reward -(a - x)^2."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x = np.zeros(1, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self.x, {}

    def step(self, action):
        return self.x, -float((action[0] - self.x[0]) ** 2), True, False, {}


def test_ddpg_learns_a_trivial_task():
    start = time.time()
    config = DDPGConfig(total_steps=1500, learning_starts=200, batch_size=64, hidden=64, actor_lr=1e-3,
                        critic_lr=1e-3, tau=0.02, exploration_noise=0.2, seed=1)
    agent, _ = train(MatchEnv(), config)
    xs = np.linspace(-0.9, 0.9, 19, dtype=np.float32)
    error = np.mean([abs(agent.act(np.array([x]))[0] - x) for x in xs])
    assert error < 0.15, f"mean |mu(x) - x| = {error:.3f} (random policy: ~0.67)"
    assert time.time() - start < 20
