"""Pilot-aided coherent reception (issue 18): frame pilots, LS per block, equalisation, the average SNR
under fading; the proxy's fading kinds through the impairment registry; the coherent receiver's refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from channel_proxy.impairments import kind_class
from channel_proxy.state import ChannelState
from protos.wire import bytes_to_array, symbols_to_bytes
from receiver.coherent import CoherentReception
from receiver.errors import LinkError
from shared.channel import awgn, pilot_sequence
from shared.fading import LinkChannel
from shared.pilot_aided import (coherent_snr_db, equalise_frame, estimate_frame_channel, fade_frame, frame_pilot,
                                frame_pilot_real)


def _latent(length: int = 768, seed: int = 0) -> torch.Tensor:
    z = torch.randn(length, generator=torch.Generator().manual_seed(seed))
    return z / z.pow(2).mean().sqrt()


@pytest.mark.parametrize("block, blocks", [(None, 1), (None, 4), (96, 4), (384, 2)])
def test_a_noiseless_faded_frame_equalises_back_exactly(block, blocks):
    """Fading blocks no shorter than the pilot's shares, aligned: each share's estimate is its h."""
    z, generator = _latent(), torch.Generator().manual_seed(1)
    pilot = frame_pilot_real(7, 8, blocks)
    faded, faded_pilot = fade_frame(z, pilot, blocks, LinkChannel("rayleigh", block_symbols=block), generator)
    assert not torch.allclose(faded, z)
    h, snr_db = estimate_frame_channel(faded_pilot, frame_pilot(7, 8, blocks))
    assert snr_db > 60
    torch.testing.assert_close(equalise_frame(faded, h, snr_db), z, atol=1e-4, rtol=1e-4)


def test_frame_pilots_repeat_per_frame_and_differ_between_frames():
    assert torch.equal(frame_pilot(3, 8, 2), frame_pilot(3, 8, 2))
    assert not torch.equal(frame_pilot(3, 8, 2), frame_pilot(4, 8, 2))
    assert frame_pilot(3, 8, 2).abs().pow(2).mean().item() == pytest.approx(2.0)   # Es = 2, QPSK


def test_an_odd_latent_cannot_be_faded():
    with pytest.raises(ValueError, match="even number"):
        fade_frame(_latent(767), None, 0, LinkChannel("rayleigh"))


@pytest.mark.parametrize("channel", [LinkChannel(), LinkChannel("rayleigh"), LinkChannel("rayleigh", block_symbols=32),
                                     LinkChannel("rician", k_db=10.0)])
def test_the_coherent_snr_estimate_is_the_average_snr_whatever_the_fade(channel):
    generator = torch.Generator().manual_seed(2)
    errors = []
    for snr_db in range(-6, 19, 3):
        for sequence in range(10):
            sent = pilot_sequence("p", sequence, 1024)
            faded, _ = fade_frame(sent, None, 0, channel, generator)
            errors.append(coherent_snr_db(sent, awgn(faded.view(1, -1), float(snr_db), generator)[0]) - snr_db)
    assert abs(np.mean(errors)) < 0.1 and np.mean(np.abs(errors)) < 0.3


def test_the_proxy_fades_through_the_registry_and_the_coherent_receiver_undoes_it():
    state = ChannelState(snr_db=120.0, seed=0)
    z, pilot = _latent(), frame_pilot_real(5, 8, 1)
    plain = state.forward(symbols_to_bytes(z), "s", 5, symbols_to_bytes(pilot), 1)
    state.add("", kind_class("rayleigh")(block=0))
    with pytest.raises(ValueError, match="one fading model at a time"):
        state.add("", kind_class("rician")(k_db=3.0, block=0))
    faded = state.forward(symbols_to_bytes(z), "s", 5, symbols_to_bytes(pilot), 1)
    stats = state.stats()
    assert stats["channel"] == "rayleigh" and stats["frames_faded"] == 1
    received = torch.from_numpy(bytes_to_array(faded.latent).copy())
    assert (received - z).abs().max() > 0.1 >= (torch.from_numpy(bytes_to_array(plain.latent).copy()) - z).abs().max()
    equalised = CoherentReception("zf").equalise(5, faded.pilot, 1, received)
    torch.testing.assert_close(equalised, z, atol=1e-3, rtol=1e-3)
    state.remove("rayleigh")
    assert state.stats()["channel"] == "awgn"


def test_the_coherent_receiver_refuses_frames_without_the_pilot_it_asked_for():
    coherent, z = CoherentReception("zf", 8, 2), _latent()
    for pilot, blocks in ((b"", 0), (symbols_to_bytes(frame_pilot_real(1, 8, 1)), 1),
                          (symbols_to_bytes(torch.full((32,), math.nan)), 2), (bytes(128), 2)):
        with pytest.raises(LinkError) as err:
            coherent.equalise(1, pilot, blocks, z)
        assert err.value.reason == "BAD_PILOT"
    with pytest.raises(ValueError, match="frame pilots"):
        CoherentReception("zf", 1, 1)


def test_the_proxy_refuses_fading_blocks_the_receiver_cannot_read_and_agrees_on_the_chunk():
    from channel_proxy.impairments.kinds import rayleigh
    from shared.pilot_aided import SYNC_CHUNK_SYMBOLS

    assert rayleigh.SYNC_CHUNK_SYMBOLS == SYNC_CHUNK_SYMBOLS
    kind_class("rayleigh")(block=32).check()
    for kind, spec in (("rayleigh", kind_class("rayleigh")(block=24)), ("rician", kind_class("rician")(k_db=3.0, block=8))):
        with pytest.raises(ValueError, match=f"{kind} block must be 0"):
            spec.check()


def test_a_huge_frame_pilot_is_refused_not_a_crash():
    with pytest.raises(LinkError) as err:
        CoherentReception("zf", 8, 1).equalise(3, symbols_to_bytes(torch.full((16,), 1e20)), 1, _latent())
    assert err.value.reason == "BAD_PILOT"
