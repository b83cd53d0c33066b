"""The physical channel: unit power, AWGN at a requested SNR, pilots and SNR estimation."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.channel import (NOISELESS_SNR_DB, awgn, estimate_snr_db, noise_std, normalize_power, pilot_sequence,
                            snr_db_of)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_normalize_power_unit_mean_power_per_row():
    z = torch.randn(6, 500, generator=gen(0)) * torch.tensor([0.01, 0.5, 1, 3, 100, 1e4]).view(-1, 1)
    power = normalize_power(z).pow(2).mean(dim=1)
    assert torch.allclose(power, torch.ones(6), atol=1e-5)


def test_normalize_power_zero_row_stays_finite():
    out = normalize_power(torch.zeros(2, 8))
    assert torch.isfinite(out).all() and (out == 0).all()


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(1e-3, 1e3), rows=st.integers(1, 4), length=st.integers(2, 64), seed=st.integers(0, 10_000))
def test_normalize_power_invariant_to_positive_scaling(scale, rows, length, seed):
    z = torch.randn(rows, length, generator=gen(seed), dtype=torch.float64) + 0.1
    a, b = normalize_power(z), normalize_power(z * scale)
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)
    assert torch.allclose(a.pow(2).mean(dim=1), torch.ones(rows, dtype=torch.float64), atol=1e-8)


def test_noise_std_values():
    assert noise_std(0.0).item() == pytest.approx(1.0)
    assert noise_std(10.0).item() == pytest.approx(math.sqrt(0.1))
    assert noise_std(-6.0).item() == pytest.approx(math.sqrt(10 ** 0.6), rel=1e-6)
    assert noise_std(20.0, signal_power=4.0).item() == pytest.approx(0.2)


@pytest.mark.parametrize("snr_db", [-6.0, 0.0, 12.0])
def test_awgn_measured_snr_matches_request(snr_db):
    z = normalize_power(torch.randn(1, 200_000, generator=gen(1)))
    received = awgn(z, snr_db, generator=gen(2))
    assert snr_db_of(z, received) == pytest.approx(snr_db, abs=0.1)


def test_awgn_per_row_snr():
    snrs = torch.tensor([-3.0, 3.0, 12.0])
    z = normalize_power(torch.randn(3, 100_000, generator=gen(3)))
    received = awgn(z, snrs, generator=gen(4))
    for i, snr in enumerate(snrs.tolist()):
        assert snr_db_of(z[i], received[i]) == pytest.approx(snr, abs=0.1)


def test_awgn_reproducible_with_generator_and_keeps_input():
    z = normalize_power(torch.randn(2, 64, generator=gen(0)))
    before = z.clone()
    a, b, c = awgn(z, 5.0, gen(9)), awgn(z, 5.0, gen(9)), awgn(z, 5.0, gen(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(z, before)


def test_pilot_sequence_deterministic_bpsk():
    p = pilot_sequence("abc", 3, 4096)
    assert p.shape == (4096,) and p.dtype == torch.float32
    assert set(p.unique().tolist()) == {-1.0, 1.0}
    assert p.pow(2).mean().item() == 1.0
    assert abs(p.mean().item()) < 0.1          # balanced
    assert torch.equal(p, pilot_sequence("abc", 3, 4096))
    assert torch.equal(pilot_sequence("abc", 3, 100), p[:100])


def test_pilot_sequence_differs_across_sequences_and_sessions():
    base = pilot_sequence("session-0001", 0, 256)
    for other in (pilot_sequence("session-0001", 1, 256), pilot_sequence("session-0001", 2, 256),
                  pilot_sequence("session-0002", 0, 256),           # shares an 8-byte prefix
                  pilot_sequence("s", 0, 256)):
        agreement = (base == other).float().mean().item()
        assert 0.3 < agreement < 0.7                # independent-looking, not equal or inverted
    seqs = torch.stack([pilot_sequence("x", s, 64) for s in range(50)])
    assert len({tuple(row.tolist()) for row in seqs}) == 50


@pytest.mark.parametrize("snr_db", [-3.0, 0.0, 6.0, 15.0])
def test_estimate_snr_db_accuracy(snr_db):
    pilot = pilot_sequence("est", 7, 8192)
    received = awgn(pilot.view(1, -1), snr_db, generator=gen(int(snr_db) + 50)).view(-1)
    # 8192 pilots: the noise-power estimate has relative std sqrt(2/8192) ~ 1.6% ~ 0.07 dB
    assert estimate_snr_db(pilot, received) == pytest.approx(snr_db, abs=0.25)


def test_estimate_snr_noiseless_is_capped():
    pilot = pilot_sequence("est", 0, 64)
    assert estimate_snr_db(pilot, pilot.clone()) == NOISELESS_SNR_DB == 100.0   # the receiver's Sync reports the same
