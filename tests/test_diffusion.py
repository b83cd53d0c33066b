"""DDPM schedule, forward process (eq. 12), posterior, and the asymmetric denoisers (eqs. 20-23)."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.diffusion import (as_timesteps, denoise_ddim, denoise_ddpm, linear_beta_schedule, p_sample,
                              predict_x0_from_eps, q_posterior, q_sample, strided_timesteps, to_model_space,
                              to_pixels)
from shared.presets import DiffusionConfig
from shared.row_noise import RowNoise

S = linear_beta_schedule()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def oracle(x0: torch.Tensor):
    """A perfect denoiser: always predicts the true clean image."""
    return lambda x_t, t: x0.expand_as(x_t).clone()


# --- schedule -----------------------------------------------------------------------------------

def test_schedule_is_ddpm_linear():
    assert S.num_timesteps == 1000
    assert S.betas.dtype == torch.float64 and S.betas.shape == (1001,)
    assert S.betas[0].item() == 0.0
    assert S.betas[1].item() == pytest.approx(1e-4, abs=1e-12)
    assert S.betas[1000].item() == pytest.approx(0.02, abs=1e-12)
    diffs = S.betas[2:] - S.betas[1:-1]
    assert torch.allclose(diffs, torch.full_like(diffs, (0.02 - 1e-4) / 999), atol=1e-12)


def test_alpha_bar_is_cumulative_product_and_monotone():
    assert S.alpha_bars[0].item() == 1.0
    assert (S.alpha_bars[1:] < S.alpha_bars[:-1]).all()
    for t in (1, 2, 20, 50, 1000):
        expected = math.prod(1.0 - S.betas[i].item() for i in range(1, t + 1))
        assert S.alpha_bars[t].item() == pytest.approx(expected, rel=1e-10)
    # Known DDPM values: abar_1000 ~ 4.04e-5, abar_20 ~ 0.9943.
    assert S.alpha_bars[1000].item() == pytest.approx(4.035e-5, rel=1e-2)
    assert S.alpha_bars[20].item() == pytest.approx(0.99429, rel=1e-4)


def test_schedule_follows_config():
    s = linear_beta_schedule(DiffusionConfig(num_timesteps=10, beta_start=0.1, beta_end=0.2))
    assert s.num_timesteps == 10
    assert s.betas[1].item() == pytest.approx(0.1) and s.betas[10].item() == pytest.approx(0.2)


def test_pixel_space_roundtrip():
    p = torch.rand(4, 3, 8, 8)
    assert torch.allclose(to_pixels(to_model_space(p)), p, atol=1e-6)
    assert to_pixels(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 1.0]


# --- forward process ----------------------------------------------------------------------------

def test_q_sample_t0_returns_x0_exactly():
    x0 = torch.rand(3, 3, 8, 8) * 2 - 1
    assert torch.equal(q_sample(x0, 0, S, generator=gen(0)), x0)


@pytest.mark.parametrize("t", [1, 20, 200, 1000])
def test_q_sample_statistics(t):
    n = 200_000
    x0 = torch.full((n, 1, 1, 1), 0.6)
    x_t = q_sample(x0, t, S, generator=gen(t))
    abar = S.alpha_bars[t].item()
    assert x_t.mean().item() == pytest.approx(math.sqrt(abar) * 0.6, abs=5 * math.sqrt((1 - abar) / n) + 1e-6)
    assert x_t.var().item() == pytest.approx(1 - abar, rel=0.02, abs=1e-9)


def test_q_sample_per_sample_timesteps_and_given_noise():
    x0 = torch.rand(3, 1, 4, 4) * 2 - 1
    noise = torch.randn(3, 1, 4, 4, generator=gen(1))
    t = torch.tensor([0, 10, 500])
    x_t = q_sample(x0, t, S, noise=noise)
    for i in range(3):
        abar = S.alpha_bars[t[i]].item()
        expected = math.sqrt(abar) * x0[i] + math.sqrt(1 - abar) * noise[i]
        assert torch.allclose(x_t[i], expected, atol=1e-6)
    # the inverse used by eps-prediction
    assert torch.allclose(predict_x0_from_eps(x_t, t, noise, S), x0, atol=1e-4)


@pytest.mark.parametrize("bad", [-1, 1001, torch.tensor([0, 1001]), torch.tensor([-5, 3])])
def test_out_of_range_timesteps_raise(bad):
    x0 = torch.zeros(2, 1, 2, 2)
    with pytest.raises(ValueError):
        q_sample(x0, bad, S)
    with pytest.raises(ValueError):
        denoise_ddpm(oracle(x0), x0, bad, S)
    with pytest.raises(ValueError):
        denoise_ddim(oracle(x0), x0, bad, S)


def test_wrong_timestep_shape_raises():
    with pytest.raises(ValueError):
        as_timesteps(torch.tensor([1, 2, 3]), 2, S)


# --- posterior ----------------------------------------------------------------------------------

@pytest.mark.parametrize("t", [1, 2, 37, 999, 1000])
def test_q_posterior_matches_ddpm_closed_form(t):
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    x_t = torch.randn(2, 3, 4, 4, generator=gen(t))
    mean, var = q_posterior(x0, x_t, torch.full((2,), t), S)
    beta = S.betas[t].item()
    abar, abar_prev = S.alpha_bars[t].item(), S.alpha_bars[t - 1].item()
    # DDPM (Ho et al. 2020) eq. 7
    mu = (math.sqrt(abar_prev) * beta / (1 - abar)) * x0 + (math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar)) * x_t
    assert torch.allclose(mean, mu, atol=1e-5)
    assert var.shape == (2, 1, 1, 1)
    assert torch.allclose(var, torch.full_like(var, (1 - abar_prev) / (1 - abar) * beta), rtol=1e-5)


@pytest.mark.parametrize("t", [2, 30])
def test_posterior_sampling_preserves_forward_marginals(t):
    """x_t ~ q(x_t|x0), x_{t-1} ~ q(x_{t-1}|x_t,x0)  =>  x_{t-1} ~ q(x_{t-1}|x0)."""
    n = 200_000
    x0 = torch.full((n, 1, 1, 1), -0.3)
    g = gen(100 + t)
    x_t = q_sample(x0, t, S, generator=g)
    x_prev = p_sample(oracle(x0), x_t, torch.full((n,), t), S, generator=g)
    abar_prev = S.alpha_bars[t - 1].item()
    assert x_prev.mean().item() == pytest.approx(math.sqrt(abar_prev) * -0.3, abs=5 * math.sqrt((1 - abar_prev) / n))
    assert x_prev.var().item() == pytest.approx(1 - abar_prev, rel=0.03)


def test_p_sample_at_t1_is_noiseless():
    x0 = torch.rand(4, 1, 3, 3) * 2 - 1
    x1 = q_sample(x0, 1, S, generator=gen(0))
    a = p_sample(oracle(x0), x1, torch.ones(4, dtype=torch.int64), S, generator=gen(1))
    b = p_sample(oracle(x0), x1, torch.ones(4, dtype=torch.int64), S, generator=gen(2))
    assert torch.equal(a, b)
    assert torch.allclose(a, x0, atol=1e-5)


def test_p_sample_clamps_prediction():
    x_t = torch.zeros(2, 1, 2, 2)
    wild = lambda x, t: torch.full_like(x, 50.0)  # noqa: E731
    sane = lambda x, t: torch.full_like(x, 1.0)   # noqa: E731
    t = torch.ones(2, dtype=torch.int64)
    assert torch.allclose(p_sample(wild, x_t, t, S), p_sample(sane, x_t, t, S))
    # and the prediction is used: at t = 1 (no noise) the step lands on the posterior mean of x0_hat = 1
    mean, _ = q_posterior(torch.ones_like(x_t), x_t, t, S)
    assert torch.allclose(p_sample(sane, x_t, t, S), mean)
    low = lambda x, t: torch.full_like(x, -1.0)   # noqa: E731
    assert not torch.allclose(p_sample(low, x_t, t, S), p_sample(sane, x_t, t, S))


# --- DDPM purification (eqs. 21-23) -------------------------------------------------------------

def test_denoise_ddpm_with_oracle_lands_on_x0():
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    x_tp = q_sample(x0, 20, S, generator=gen(0))
    out = denoise_ddpm(oracle(x0), x_tp, 20, S, generator=gen(1))
    assert torch.allclose(out, x0, atol=1e-4)
    assert (x_tp - x0).abs().max() > 0.05  # the input really was noisy


def test_denoise_ddpm_calls_predictor_t_p_times_in_order():
    x0 = torch.zeros(2, 1, 2, 2)
    seen: list[list[int]] = []

    def predictor(x_t, t):
        seen.append(t.tolist())
        return torch.zeros_like(x_t)

    denoise_ddpm(predictor, q_sample(x0, 7, S, generator=gen(0)), 7, S, generator=gen(1))
    assert seen == [[t, t] for t in range(7, 0, -1)]


def test_denoise_ddpm_t_p_zero_is_identity():
    x = torch.randn(3, 1, 4, 4, generator=gen(0))
    called = []
    out = denoise_ddpm(lambda x_t, t: called.append(1) or x_t, x, 0, S)
    assert torch.equal(out, x) and not called


def test_denoise_ddpm_per_sample_t_p_masks_inactive_rows():
    """A row joins the chain only when the running t reaches its own t_P; t_P = 0 rows never change."""
    x0 = torch.rand(4, 1, 4, 4) * 2 - 1
    t_p = torch.tensor([0, 3, 8, 8])
    x_tp = q_sample(x0, t_p, S, generator=gen(0))
    inputs: dict[int, torch.Tensor] = {}

    def recorder(x_t, t):
        inputs[int(t[0])] = x_t.clone()
        return x0.clone()

    out = denoise_ddpm(recorder, x_tp, t_p, S, generator=gen(1))
    assert sorted(inputs) == list(range(1, 9))
    # row 1 (t_P = 3) is untouched while t > 3, then it moves
    for t in range(8, 3, -1):
        assert torch.equal(inputs[t][1], x_tp[1])
    assert not torch.equal(inputs[2][1], x_tp[1])
    # row 0 (t_P = 0) is returned unchanged; the others land on x0 (oracle, noiseless last step)
    assert torch.equal(out[0], x_tp[0])
    assert torch.allclose(out[1:], x0[1:], atol=1e-4)
    # each row matches a single-row call (noise-independent at the last step with an oracle)
    for i in range(4):
        single = denoise_ddpm(lambda x_t, t, i=i: x0[i:i + 1].clone(), x_tp[i:i + 1], t_p[i:i + 1], S,
                              generator=gen(99))
        assert torch.allclose(out[i], single[0], atol=1e-5)


def test_denoise_ddpm_per_sample_chain_marginals_match_single_t_p():
    """Rows of a mixed batch follow the same distribution as a batch with one t_P (statistically)."""
    n = 40_000
    x0 = torch.full((n, 1, 1, 1), 0.4)
    t_p = torch.tensor([3, 12]).repeat(n // 2)
    x_tp = q_sample(x0, t_p, S, generator=gen(0))
    at_t2: list[torch.Tensor] = []

    def recorder(x_t, t):
        if int(t[0]) == 2:
            at_t2.append(x_t.clone())
        return x0.expand_as(x_t).clone()

    denoise_ddpm(recorder, x_tp, t_p, S, generator=gen(1))
    abar2 = S.alpha_bars[2].item()
    for group in (0, 1):  # t_P = 3 rows and t_P = 12 rows both reach q(x_2 | x0)
        x2 = at_t2[0][group::2]
        assert x2.mean().item() == pytest.approx(math.sqrt(abar2) * 0.4, abs=5 * math.sqrt((1 - abar2) / (n / 2)))
        assert x2.var().item() == pytest.approx(1 - abar2, rel=0.05)


# --- strided DDIM sampler -----------------------------------------------------------------------

def test_strided_timesteps_endpoints():
    assert strided_timesteps(20, 5) == [20, 16, 12, 8, 4, 0]
    assert strided_timesteps(3, 5) == [3, 2, 1, 0]
    assert strided_timesteps(0, 5) == [0]
    assert strided_timesteps(50, 1) == [50, 0]
    assert strided_timesteps(7, 0) == [7, 0]


@settings(max_examples=200, deadline=None)
@given(t_p=st.integers(1, 1000), steps=st.integers(1, 60))
def test_strided_timesteps_property(t_p, steps):
    path = strided_timesteps(t_p, steps)
    assert path[0] == t_p and path[-1] == 0
    assert all(a > b for a, b in zip(path, path[1:]))
    assert len(path) == min(steps, t_p) + 1


def test_denoise_ddim_oracle_deterministic_and_exact():
    x0 = torch.rand(3, 3, 8, 8) * 2 - 1
    noise = torch.randn(3, 3, 8, 8, generator=gen(5))
    x_tp = q_sample(x0, 40, S, noise=noise)
    inputs: dict[int, torch.Tensor] = {}

    def recorder(x_t, t):
        inputs[int(t[0])] = x_t.clone()
        return x0.clone()

    a = denoise_ddim(recorder, x_tp, 40, S, steps=4, eta=0.0, generator=gen(1))
    b = denoise_ddim(oracle(x0), x_tp, 40, S, steps=4, eta=0.0, generator=gen(2))
    assert torch.equal(a, b)
    assert torch.allclose(a, x0, atol=1e-4)
    # with the true x0, eta = 0 DDIM walks the forward trajectory of the same noise
    assert sorted(inputs) == [10, 20, 30, 40]
    for t, x_t in inputs.items():
        assert torch.allclose(x_t, q_sample(x0, t, S, noise=noise), atol=1e-4)


def test_denoise_ddim_calls_predictor_steps_times():
    x = torch.zeros(2, 1, 2, 2)
    calls = []
    denoise_ddim(lambda x_t, t: calls.append(t.tolist()) or torch.zeros_like(x_t), x, 20, S, steps=5)
    assert calls == [[20, 20], [16, 16], [12, 12], [8, 8], [4, 4]]


def test_denoise_ddim_stochastic_keeps_marginals():
    n = 100_000
    x0 = torch.full((n, 1, 1, 1), 0.2)
    x_tp = q_sample(x0, 30, S, generator=gen(0))
    seen: dict[int, torch.Tensor] = {}

    def recorder(x_t, t):
        seen[int(t[0])] = x_t.clone()
        return x0.clone()

    out1 = denoise_ddim(recorder, x_tp, 30, S, steps=3, eta=1.0, generator=gen(1))
    out2 = denoise_ddim(oracle(x0), x_tp, 30, S, steps=3, eta=1.0, generator=gen(2))
    assert torch.allclose(out1, x0, atol=1e-4) and torch.allclose(out2, x0, atol=1e-4)
    abar = S.alpha_bars[10].item()
    assert seen[10].var().item() == pytest.approx(1 - abar, rel=0.03)
    # eta > 0 really injects fresh noise: intermediate states depend on the generator
    seen_first = seen[10]
    denoise_ddim(recorder, x_tp, 30, S, steps=3, eta=1.0, generator=gen(3))
    assert not torch.equal(seen[10], seen_first)


def test_denoise_ddim_per_sample_rows_match_single_calls():
    def predictor(x_t, t):  # deterministic, row-wise, not an oracle
        return torch.tanh(x_t * (1.0 + t.view(-1, 1, 1, 1).float() / 100))

    x = torch.randn(5, 1, 4, 4, generator=gen(0))
    t_p = torch.tensor([0, 7, 20, 7, 3])
    out = denoise_ddim(predictor, x, t_p, S, steps=4)
    assert torch.equal(out[0], x[0])
    for i in range(5):
        single = denoise_ddim(predictor, x[i:i + 1], int(t_p[i]), S, steps=4)
        assert torch.allclose(out[i], single[0], atol=1e-6)
    assert not torch.allclose(out[1], out[3]) or torch.equal(x[1], x[3])


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_per_row_noise_makes_a_row_independent_of_its_batch(sampler):
    """With one noise stream per row (shared.row_noise), an image purifies to the same output whether it
    runs alone or in a batch with other images and other t_P: the link's micro-batches no longer
    decide the figures."""
    schedule = linear_beta_schedule()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    t_p = torch.tensor([30, 12, 30, 50])

    def shrink(x_t, t):
        return 0.7 * x_t   # any predictor that depends on its input

    def purify(rows):
        noise = RowNoise.for_keys([(5, "row", int(i)) for i in rows])
        if sampler == "ddpm":
            return denoise_ddpm(shrink, x[rows], t_p[rows], schedule, noise)
        return denoise_ddim(shrink, x[rows], t_p[rows], schedule, steps=4, eta=1.0, generator=noise)

    together = purify(list(range(4)))
    for i in range(4):
        assert torch.equal(purify([i])[0], together[i])
    assert not torch.equal(together[0], together[2])   # same t_P, own streams: different noise
    with pytest.raises(ValueError, match="3 noise streams for a batch of 4"):
        RowNoise.for_keys([(0,)] * 3).randn_like(x)
