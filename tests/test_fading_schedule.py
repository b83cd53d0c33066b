"""The proxy's fading model over time (issue 18): `channel schedule FILE` rows, the state's schedule, and how
it meets fading impairments."""
from __future__ import annotations

import time

import pytest

from channel_proxy.fading_schedule import FadingPoint, parse_fading_csv
from channel_proxy.impairments import kind_class
from channel_proxy.state import ChannelState


def test_the_csv_names_a_model_per_row_and_refuses_what_it_cannot_mean():
    text = "seconds,kind,k_db,block\n# warm-up on AWGN\n0,awgn\n10,rayleigh\n20,rician,10\n30,rayleigh,,16\n"
    assert parse_fading_csv(text, period_s=40) == [FadingPoint(0, "awgn"), FadingPoint(10, "rayleigh"),
                                                    FadingPoint(20, "rician", 10.0), FadingPoint(30, "rayleigh", None, 16)]
    for bad, message in (("0,rician", "K factor"), ("0,rayleigh,3", "only rician"), ("0,awgn,,8", "rayleigh and rician"),
                         ("0,nakagami", "kind one of"), ("5,awgn\n1,rayleigh", "non-decreasing"), ("", "at least one")):
        with pytest.raises(ValueError, match=message):
            parse_fading_csv(bad)
    with pytest.raises(ValueError, match="period_s"):
        parse_fading_csv("0,awgn\n10,rayleigh", period_s=5)


def test_the_state_follows_the_schedule_and_an_added_fading_model_replaces_it():
    state = ChannelState(seed=0)
    state.add("", kind_class("rician")(k_db=3.0, block=0))
    state.schedule_fading([(0.0, None), (0.3, kind_class("rayleigh")(block=16))])
    stats = state.stats()
    assert stats["channel"] == "awgn" and stats["channel_scheduled"] and stats["impairments"] == 0   # rician removed
    time.sleep(0.35)
    assert state.stats()["channel"] == "rayleigh, block 16"
    state.add("", kind_class("rician")(k_db=3.0, block=0))
    assert state.stats()["channel"] == "rician K=3 dB" and not state.stats()["channel_scheduled"]
    with pytest.raises(ValueError, match="no fading model"):
        state.schedule_fading([(0.0, kind_class("drop")(rate=0.5))])
    state.schedule_fading([(0.0, kind_class("rayleigh")(block=0))])   # `channel set rayleigh`
    assert state.stats()["channel"] == "rayleigh" and not state.stats()["channel_scheduled"]
