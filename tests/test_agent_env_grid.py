"""Agent reward (eqs. 26-31), the measured grid (resumable) and its interpolator, and the gymnasium env."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from shared.agent import grid as grid_module
from shared.agent.env import EnvConfig, GridRewardSource, LiveRewardSource, StepSelectionEnv
from shared.agent.grid import Grid, GridAxes, GridError, Measure, cell_key, measure_grid, prepare_batch
from shared.agent.reward import (PAPER_WEIGHTS, RewardWeights, adv_indicator, adv_rate, batch_ssim, err_indicator,
                                 err_rate, reward)
from shared.agent.train import matching_grid
from shared.data import load_sample
from shared.pipeline import Pipeline


def test_adv_and_err_follow_eqs_27_to_30():
    h_clean = torch.tensor([0, 0, 0, 0, 1, 2])
    h_adv = torch.tensor([1, 1, 1, 0, 1, 5])
    h_final = torch.tensor([1, 0, 3, 4, 2, 5])
    # image 0: fooled, stays adversarial -> G; 1: fooled, restored -> neither; 2: fooled, new wrong class -> J
    # 3, 4: attack failed -> neither (whatever the chain does); 5: fooled and stays -> G
    assert adv_indicator(h_clean, h_adv, h_final).tolist() == [True, False, False, False, False, True]
    assert err_indicator(h_clean, h_adv, h_final).tolist() == [False, False, True, False, False, False]
    assert adv_rate(h_clean, h_adv, h_final) == pytest.approx(math.sqrt(2 / 6))
    assert err_rate(h_clean, h_adv, h_final) == pytest.approx(math.sqrt(1 / 6))


def test_reward_weights_multiply_the_paper_terms():
    assert (PAPER_WEIGHTS.eta, PAPER_WEIGHTS.eta1, PAPER_WEIGHTS.eta2, PAPER_WEIGHTS.eta3) == (1, -0.8, -0.7, -0.5)
    assert reward(1.0, 0.0, 0.0) == 0.0
    assert reward(0.5, 0.2, 0.4) == pytest.approx(-0.8 * 0.5 - 0.7 * 0.2 - 0.5 * 0.4)
    assert reward(0.0, 1.0, 1.0) == pytest.approx(-2.0)
    # eta scales the whole reward; each eta_i weighs only its own term
    assert reward(0.5, 0.2, 0.4, RewardWeights(eta=2.0)) == pytest.approx(2 * reward(0.5, 0.2, 0.4))
    assert reward(0.5, 0.2, 0.4, RewardWeights(eta1=0.0, eta2=0.0)) == pytest.approx(-0.5 * 0.4)
    assert batch_ssim(torch.tensor([0.2, 0.4, 0.9])) == pytest.approx(0.5)    # eq. 26: a plain mean


def synthetic(axes=GridAxes((1, 10, 50), (0, 50), (-6.0, 18.0))) -> Grid:
    d, p, s = np.meshgrid(np.array(axes.t_d, float), np.array(axes.t_plus, float), np.array(axes.snr_db), indexing="ij")
    ssim = 0.5 + 0.004 * d + 0.002 * p + 0.01 * s        # linear: trilinear interpolation must be exact
    adv, err, rob = 0.001 * d, 0.002 * p, 0.5 + 0.01 * s
    values = {"reward": -0.8 * (1 - ssim) - 0.7 * adv - 0.5 * err, "ssim": ssim, "adv": adv, "err": err,
              "robust_accuracy": rob}
    return Grid(axes, values, {"header": {"synthetic": True}})


def test_trilinear_is_exact_on_a_linear_surface_and_clamped_outside():
    g = synthetic()
    m = g.lookup(25, 20, 3.5)
    assert m["ssim"] == pytest.approx(0.5 + 0.004 * 25 + 0.002 * 20 + 0.01 * 3.5)
    assert m["reward"] == pytest.approx(reward(m["ssim"], m["adv"], m["err"]))
    assert g.lookup(1, 0, -6)["ssim"] == pytest.approx(g.values["ssim"][0, 0, 0])
    assert g.lookup(-5, -9, -30) == g.lookup(1, 0, -6)                 # clamped below
    assert g.lookup(99, 99, 40) == g.lookup(50, 50, 18)                # clamped above
    best = np.unravel_index(np.argmax(g.values["reward"][:, :, -1]), g.values["reward"].shape[:2])
    assert g.best_per_snr()[18.0] == (g.axes.t_d[best[0]], g.axes.t_plus[best[1]]) == (50, 50)   # robust-accuracy tie -> reward


@pytest.fixture(scope="module")
def tiny_pipeline(untrained_checkpoints) -> Pipeline:
    return Pipeline.load("cifar10", untrained_checkpoints)


TINY_AXES = GridAxes((1, 3), (0, 2), (0.0, 10.0))
TINY_MEASURE = Measure("ddim", 2, seed=0)


def test_grid_measures_resumes_and_refuses_other_settings(tiny_pipeline, tmp_path, monkeypatch):
    data = load_sample("cifar10").subset(4, 0)
    path = tmp_path / "agent_grid.json"
    real_finish, calls = grid_module._finish, []

    def flaky(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(grid_module, "_finish", flaky)
    with pytest.raises(KeyboardInterrupt):
        measure_grid(tiny_pipeline, data, path, TINY_AXES, TINY_MEASURE, progress=False)
    saved = json.loads(path.read_text())
    assert len(saved["cells"]) == 3 and saved["header"]["n"] == 4 and saved["header"]["attack"]["eps_label"] == "8/255"
    with pytest.raises(GridError, match="lacks 5 of 8"):
        Grid.load(path)
    calls.clear()
    monkeypatch.setattr(grid_module, "_finish", lambda *a, **k: (calls.append(1), real_finish(*a, **k))[1])
    grid = measure_grid(tiny_pipeline, data, path, TINY_AXES, TINY_MEASURE, progress=False)
    assert len(calls) == 5                                          # only the missing cells
    cell = json.loads(path.read_text())["cells"][cell_key(3, 2, 10.0)]
    assert set(grid.metrics) >= {"reward", "ssim", "adv", "err", "robust_accuracy", "clean_accuracy"}
    assert cell["reward"] == pytest.approx(reward(cell["ssim"], cell["adv"], cell["err"]), abs=1e-5)
    assert grid.lookup(3, 2, 10.0)["ssim"] == pytest.approx(cell["ssim"])
    with pytest.raises(GridError, match="different settings"):
        measure_grid(tiny_pipeline, data, path, TINY_AXES, Measure("ddim", 3, seed=0), progress=False)


def test_a_grid_is_keyed_on_the_weights_it_was_measured_on(tiny_pipeline, tmp_path):
    """New checkpoints (another md5) must not reuse a grid or an attacked batch measured on the old ones."""
    data = load_sample("cifar10").subset(2, 0)
    path = tmp_path / "agent_grid.json"
    axes = GridAxes((1,), (0,), (10.0,))
    old, new = {"classifier.pt": "0" * 32}, {"classifier.pt": "1" * 32}
    measure_grid(tiny_pipeline, data, path, axes, TINY_MEASURE, progress=False, models_md5=old)
    assert json.loads(path.read_text())["header"]["models_md5"] == old
    assert matching_grid(path, "cifar10", axes, TINY_MEASURE, 2, old) is not None
    assert matching_grid(path, "cifar10", axes, TINY_MEASURE, 2, new) is None
    with pytest.raises(GridError, match="different settings.*models_md5"):
        measure_grid(tiny_pipeline, data, path, axes, TINY_MEASURE, progress=False, models_md5=new)
    cache = tmp_path / "batch.pt"
    prepare_batch(tiny_pipeline, data, seed=0, cache=cache, models_md5=old)
    assert prepare_batch(tiny_pipeline, data, seed=0, cache=cache, models_md5=new).description["models_md5"] == new
    assert torch.load(cache, weights_only=True)["description"]["models_md5"] == new   # crafted again, not reused


@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")   # the paper's action box is [-25, 25]^2
def test_env_passes_check_env_and_keeps_the_state_box():
    env = StepSelectionEnv(GridRewardSource(synthetic()))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert 1 <= obs[0] <= 50 and 0 <= obs[1] <= 50 and -3 <= obs[2] <= 12
    rewards = []
    for step in range(3):
        obs, r, terminated, truncated, info = env.step(np.array([25.0, -25.0], np.float32))
        rewards.append(r)
        assert not terminated and truncated == (step == 2)
        assert 1 <= info["t_d"] <= 50 and 0 <= info["t_plus"] <= 50 and obs[2] == pytest.approx(info["snr_db"])
    assert (info["t_d"], info["t_plus"]) == (50, 0)
    assert rewards[-1] == pytest.approx(synthetic().reward(50, 0, info["snr_db"])["reward"])
    starts = [env.reset(seed=s)[1] for s in range(200)]
    assert {s["t_d"] for s in starts} <= set(range(1, 51)) and min(s["t_plus"] for s in starts) == 0
    assert all(-3 <= s["snr_db"] <= 12 for s in starts) and max(s["t_d"] for s in starts) == 50


def test_live_reward_source_runs_the_pipeline(tiny_pipeline):
    data = load_sample("cifar10").subset(2, 0)
    batch = prepare_batch(tiny_pipeline, data, seed=0)
    source = LiveRewardSource(tiny_pipeline, batch, Measure("ddim", 1, clean=False))
    env = StepSelectionEnv(source, EnvConfig(), fixed_snr_db=6.0)
    env.reset(seed=0)
    _, r, _, _, info = env.step(np.zeros(2, np.float32))
    assert r == pytest.approx(info["reward"]) and 0 <= info["ssim"] <= 1 and info["clean_accuracy"] is None
