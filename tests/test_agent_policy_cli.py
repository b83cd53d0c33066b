"""Agent training (checkpoints, resume, curves), the ddpg/table policies (receiver too), and the CLI end to end."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from diffusec.cli import main
from receiver.policy import Decision, Episode, StepPolicy, make_policy
from receiver.sessions import SessionTable
from shared.agent.ddpg import DDPGConfig
from shared.agent.env import EnvConfig, apply_action
from shared.agent.grid import GRID_FILE, Grid, GridAxes
from shared.agent.policy import ActorPolicy, TablePolicy
from shared.agent.train import RESUME_FILE, train_agent
from shared.checkpoints import CheckpointError

SMALL = DDPGConfig(total_steps=300, learning_starts=100, batch_size=32, hidden=32)


def synthetic_grid() -> Grid:
    axes = GridAxes((1, 10, 50), (0, 50), (-6.0, 6.0, 18.0))
    d, p, s = np.meshgrid(np.array(axes.t_d, float), np.array(axes.t_plus, float), np.array(axes.snr_db), indexing="ij")
    rob = 0.6 - np.abs(d - (30 - 2 * s)) / 100 - p / 200   # best t_D falls with the SNR
    values = {"reward": rob - 1, "ssim": 0.8 + 0 * d, "adv": 0.1 + 0 * d, "err": 0.1 + 0 * d, "robust_accuracy": rob}
    return Grid(axes, values, {"header": {"synthetic": True}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent")
    manifest = train_agent(synthetic_grid(), out, "cifar10", SMALL, eval_every=100, progress=False,
                           plot_path=out / "curves.png", log=lambda m: None)
    return out, manifest


def test_training_writes_agent_manifest_resume_and_curves(trained):
    out, manifest = trained
    assert (out / "agent.pt").exists() and (out / RESUME_FILE).exists() and (out / "curves.png").stat().st_size > 10_000
    saved = json.loads((out / "agent.json").read_text())
    assert saved["ddpg"]["actor_lr"] == 1e-5 and saved["steps"] == 300 and saved["kind"] == "agent"
    assert [c["step"] for c in saved["curves"]] == [0, 100, 200, 300]
    assert set(saved["curves"][-1]["snr"]) == {"-3", "3", "9", "15"}
    assert set(saved["curves"][-1]["snr"]["3"]) >= {"reward", "ssim", "adv", "err"}


def test_training_resumes_from_the_resume_file(trained, tmp_path):
    out, _ = trained
    (tmp_path / RESUME_FILE).write_bytes((out / RESUME_FILE).read_bytes())
    messages = []
    manifest = train_agent(synthetic_grid(), tmp_path, "cifar10", DDPGConfig(**{**SMALL.to_dict(), "total_steps": 400}),
                           eval_every=100, progress=False, log=messages.append)
    assert any("resuming the agent from step 300" in m for m in messages)
    assert [c["step"] for c in manifest["curves"]] == [0, 100, 200, 300, 400]
    # resuming loses nothing: the same actor as one uninterrupted 400-step run
    straight = tmp_path / "straight"
    train_agent(synthetic_grid(), straight, "cifar10", DDPGConfig(**{**SMALL.to_dict(), "total_steps": 400}),
                eval_every=100, progress=False, log=lambda m: None)
    resumed_actor = torch.load(tmp_path / "agent.pt", weights_only=True)["state_dict"]["actor"]
    straight_actor = torch.load(straight / "agent.pt", weights_only=True)["state_dict"]["actor"]
    assert all(torch.equal(resumed_actor[k], straight_actor[k]) for k in straight_actor)


def test_actor_policy_matches_the_torch_actor_and_is_fast(trained):
    out, _ = trained
    policy = ActorPolicy.load(out, "cifar10")
    blob = torch.load(out / "agent.pt", weights_only=True)["state_dict"]
    from shared.agent.ddpg import Actor
    config = EnvConfig()
    actor = Actor([1, 0, -10], [50, 50, 20], [-25, -25], [25, 25], SMALL.hidden)
    actor.load_state_dict(blob["actor"])
    for state in [(1, 0, -3.0), (20, 0, 9.0), (50, 50, 15.0)]:
        with torch.no_grad():
            expected = actor(torch.tensor([state], dtype=torch.float32))[0].numpy()
        assert np.allclose(policy.action(*state), expected, atol=1e-4)
        assert policy.step(*state) == apply_action(config, state[0], state[1], expected)
    start = time.perf_counter()
    for i in range(500):
        t_d, t_plus = policy.step(20, 5, -6 + i % 24)
        assert 1 <= t_d <= 50 and 0 <= t_plus <= 50
    assert (time.perf_counter() - start) / 500 < 300e-6


def test_table_policy_takes_the_best_state_at_the_nearest_grid_snr():
    table = TablePolicy.from_grid(synthetic_grid())
    assert table.best == {-6.0: (50, 0), 6.0: (10, 0), 18.0: (1, 0)}
    assert table.step(33, 33, 5.0) == (10, 0) and table.step(1, 1, -40) == (50, 0) and table.step(1, 1, 12.5) == (1, 0)


def test_receiver_policies_load_prefetch_and_fail_clearly(trained, tmp_path):
    out, _ = trained
    with pytest.raises(CheckpointError, match="diffusec train agent --preset cifar10"):
        make_policy("ddpg", 20, 0, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="--grid-only"):
        make_policy("table", 20, 0, checkpoint_dir=tmp_path)
    policy = make_policy("ddpg", 20, 0, checkpoint_dir=out)
    table = SessionTable()
    first = table.sync("s", 3.0, policy)
    policy.prefetch(Decision(first.t_d, first.t_plus))  # what the receiver does once the reply is sent
    second = table.sync("s", 3.0, policy)
    inner = ActorPolicy.load(out, "cifar10")
    assert (first.t_d, first.t_plus) == inner.step(20, 0, 3.0)                 # first sync from the initial state
    assert (second.t_d, second.t_plus) == inner.step(first.t_d, first.t_plus, 3.0)
    # A prefetched row holds the exact decisions at its SNR points, and looks up the nearest one.
    exact = ActorPolicy.load(out, "cifar10")
    for snr in inner.snr_grid_db[::7]:
        assert policy.inner.step(first.t_d, first.t_plus, float(snr)) == exact.step(first.t_d, first.t_plus, float(snr))




def test_train_agent_has_one_option_per_ddpg_field_with_its_default_and_help():
    """The DDPG flags are made from DDPGConfig's fields: a new field is a new option, documented."""
    from dataclasses import fields

    from diffusec.agent import train_agent_command

    options = {p.name: p for p in train_agent_command.params}
    for f in fields(DDPGConfig):
        option = options[f.name]
        assert option.opts == [f"--{f.name.replace('_', '-')}"]
        assert option.default == f.default and option.help == f"DDPG: {f.metadata['help']}."


def invoke(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_grid_train_eval_and_adaptation(untrained_checkpoints, tmp_path, isolated_env):
    ck = str(untrained_checkpoints)
    tiny = ["--checkpoints", ck, "--data", "sample", "--grid-n", "4", "--grid-t-d", "1,3", "--grid-t-plus", "0,2",
            "--grid-snr", "0,10", "--sampler", "ddim", "--sampler-steps", "2", "--threads", "1"]
    code, out = invoke("eval", "--system", "diffusec", "--checkpoints", ck, "--data", "sample", "--n", "2")
    assert code == 2 and "diffusec train agent --preset cifar10" in out
    code, out = invoke("train", "agent", *tiny, "--grid-only")
    assert code == 0, out
    assert (untrained_checkpoints / GRID_FILE).exists() and not (untrained_checkpoints / "agent.pt").exists()
    code, out = invoke("train", "agent", *tiny, "--total-steps", "200", "--learning-starts", "100", "--batch-size", "16",
                       "--hidden", "16", "--eval-every", "100", "--out", str(tmp_path))
    assert code == 0, out
    assert (untrained_checkpoints / "agent.pt").exists() and (tmp_path / "agent-training-cifar10.png").exists()
    for system in ("diffusec", "table"):
        code, out = invoke("eval", "--system", system, "--checkpoints", ck, "--data", "sample", "--n", "3", "--batch", "2",
                           "--sampler", "ddim", "--steps", "1", "--snr-db", "3", "--source-attack", "pgd",
                           "--attack-steps", "1", "--threads", "1", "--json")
        assert code == 0, out
        payload = json.loads(out.strip().splitlines()[-1])
        assert payload["system"] == system and payload["policy_steps"] == 3 and len(payload["visited"]) == 2
        assert all(len(path) == 4 for path in payload["visited"]) and payload["source_attack"]["kind"] == "pgd"
        assert 1 <= payload["visited"][0][0][0] <= 50 and 0 <= payload["visited"][0][0][1] <= 50
    code, out = invoke("eval", "adaptation", "--checkpoints", ck, "--data", "sample", "--n", "2", "--quick",
                       "--snr", "0,6", "--out", str(tmp_path / "adapt"), "--threads", "1")
    assert code == 0, out
    result = json.loads((tmp_path / "adapt" / "adaptation.json").read_text())
    assert set(result["curves"]) == {"diffusec", "table", "plain"} and result["curves"]["plain"]["snr_db"] == [0.0, 6.0]
    assert result["attack"]["eps_label"] == "8/255" and (tmp_path / "adapt" / "adaptation.png").exists()


class _Alternating:
    """An inner step policy with no fixed point: (t_D, t_plus) -> (t_D + 10 or - 10, t_plus); counts calls."""

    name = "ddpg"

    def __init__(self):
        self.calls = 0

    def step(self, t_d, t_plus, snr_db):
        self.calls += 1
        return (t_d + 10 if t_d < 30 else t_d - 10), t_plus

    def describe(self):
        return "alternating"


def test_step_policy_runs_episodes_then_holds_until_the_snr_moves():
    inner = _Alternating()
    policy = StepPolicy(inner, Decision(20, 0), episode_steps=3, episode_change_db=2.0)
    table = SessionTable()
    # Episode 1 at ~15 dB: three decisions from (20, 0), then the choice holds despite pilot noise.
    chosen = [table.sync("s", snr, policy) for snr in (15.0, 15.4, 14.7, 15.9, 14.1, 15.2)]
    assert [e.t_d for e in chosen] == [30, 20, 30, 30, 30, 30]
    assert inner.calls == 3 and chosen[-1].episode == Episode(15.0, 3)
    # The SNR moves by more than 2 dB from the episode's start: a new episode of three decisions.
    after = [table.sync("s", snr, policy) for snr in (-3.0, -2.5, -3.4, -3.1)]
    assert [e.t_d for e in after] == [20, 30, 20, 20] and inner.calls == 6
    assert after[0].episode == Episode(-3.0, 1)
    # Sessions keep their own episodes.
    assert table.sync("other", 9.0, policy).episode == Episode(9.0, 1)


def test_step_policy_with_zero_episode_steps_decides_at_every_sync():
    inner = _Alternating()
    policy = StepPolicy(inner, Decision(20, 0), episode_steps=0)
    table = SessionTable()
    assert [table.sync("s", 15.0, policy).t_d for _ in range(5)] == [30, 20, 30, 20, 30] and inner.calls == 5
    with pytest.raises(ValueError, match="episode_steps"):
        StepPolicy(inner, Decision(20, 0), episode_steps=-1)
