"""The optimised sync path gives the same numbers as the reference math (shared.channel, impairments)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from channel_proxy.impairments.kinds.jamming import Jamming
from channel_proxy.noise import combined_noise_std, effective_snr_db
from channel_proxy.state import ChannelState
from protos.wire import symbols_to_bytes
from receiver.snr import PilotCache, measure_snr_db
from receiver.validation import parse_pilot
from shared.channel import estimate_snr_db, pilot_sequence


def test_pilot_cache_prefetches_and_matches_the_reference():
    cache = PilotCache(size=2)
    cache.prefetch("s", 1, 64)
    assert np.array_equal(cache.take("s", 1, 64), pilot_sequence("s", 1, 64).numpy()) and cache.hits == 1
    assert np.array_equal(cache.take("s", 1, 64), pilot_sequence("s", 1, 64).numpy()) and cache.misses == 1
    for k in range(3):
        cache.prefetch("s", k, 32)
    cache.take("s", 0, 32)  # evicted: the cache holds 2
    assert cache.misses == 2 and cache.hits == 1


def test_numpy_snr_estimate_equals_the_reference():
    sent = pilot_sequence("sess", 3, 1024)
    received = sent + 0.3 * pilot_sequence("noise", 0, 1024).roll(7)
    fast = measure_snr_db("sess", 3, parse_pilot(symbols_to_bytes(received)), PilotCache())
    assert fast == pytest.approx(estimate_snr_db(sent, received), abs=1e-4)


@pytest.mark.parametrize("pnrs", [(), (6.0,), (0.0, 3.0)])
def test_proxy_byte_path_has_the_stated_noise_power(pnrs):
    state = ChannelState(snr_db=10.0, seed=1)
    for pnr in pnrs:
        state.add("", Jamming(pnr))
    z = pilot_sequence("z", 0, 200_000)
    out, jammed = state.add_noise(symbols_to_bytes(z))
    noise = np.frombuffer(out, "<f4") - z.numpy()
    expected = 0.1 * (1 + sum(10 ** (p / 10) for p in pnrs))
    assert float(np.mean(noise ** 2)) == pytest.approx(expected, rel=0.02) and jammed == bool(pnrs)
    assert combined_noise_std(10.0, pnrs) == pytest.approx(math.sqrt(expected))
    assert -10 * math.log10(expected) == pytest.approx(effective_snr_db(10.0, pnrs))
