"""shared.fading against theory: uncoded QPSK over Rayleigh and Rician block fading, LS channel
estimation, equalisation, and AWGN left exactly as shared.channel has it.

SNR convention (shared.channel, shared.fading): SNR = Es / N0 per complex symbol, which is the
per-real-symbol SNR of the rest of the project. The BER curves are drawn against Eb/N0 per bit, as
the textbooks draw them: QPSK carries 2 bits per complex symbol, so SNR = Eb/N0 * 2 (+3.01 dB);
Sionna's ebnodb2no does this conversion (N0 for Es = 1). Closed forms, gamma_b = Eb/N0 linear:
AWGN Pb = Q(sqrt(2 gamma_b)); Rayleigh with perfect CSI Pb = (1 - sqrt(gamma_b / (1 + gamma_b))) / 2.
Monte Carlo: one independent coefficient per complex symbol (block of 1), 2e5 symbols, seeded;
the 10% tolerance is about 3 standard deviations of the error count at the rarest point (20 dB).
"""
from __future__ import annotations

import math

import pytest
import torch

from shared import fading
from shared.channel import awgn

SYMBOLS = 200_000


def db(x: float) -> float:
    return 10.0 * math.log10(x)


def snr_db_for_ebno(ebno_db: float) -> float:
    """Our SNR (Es/N0, dB) for QPSK at Eb/N0 = ``ebno_db``, via Sionna's ebnodb2no (N0 at Es = 1)."""
    from sionna.phy.utils import ebnodb2no

    return -db(float(ebnodb2no(ebno_db, num_bits_per_symbol=2, coderate=1.0)))


def rayleigh_qpsk_ber(ebno_db: float) -> float:
    gamma = 10.0 ** (ebno_db / 10.0)
    return 0.5 * (1.0 - math.sqrt(gamma / (1.0 + gamma)))


def awgn_qpsk_ber(ebno_db: float) -> float:
    return 0.5 * math.erfc(math.sqrt(10.0 ** (ebno_db / 10.0)))


def simulated_qpsk_ber(channel: fading.LinkChannel, ebno_db: float, seed: int = 0) -> float:
    """Uncoded Gray QPSK (Sionna Mapper/Demapper) through the fading channel with channel.csi, equalised."""
    from sionna.phy.mapping import Demapper, Mapper
    from sionna.phy.utils import compute_ber

    generator = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (1, 2 * SYMBOLS), generator=generator).float()
    # Sionna's QPSK has Es = 1; ours has unit power per real symbol, Es = 2
    x = Mapper("qam", 2, device="cpu")(bits) * math.sqrt(fading.COMPLEX_SYMBOL_POWER)
    z = fading.to_real(x, 2 * SYMBOLS)
    z_hat = fading.transmit(z, snr_db_for_ebno(ebno_db), channel, generator)
    # hard decisions: a positive real scale (an MMSE shrink) never moves a QPSK decision
    decided = Demapper("app", "qam", 2, hard_out=True, device="cpu")(fading.to_complex(z_hat), torch.tensor(1.0))
    return float(compute_ber(bits, decided))


@pytest.mark.parametrize("ebno_db", [0.0, 10.0, 20.0])
def test_rayleigh_qpsk_ber_matches_closed_form(ebno_db):
    channel = fading.LinkChannel("rayleigh", block_symbols=1)
    ber = simulated_qpsk_ber(channel, ebno_db)
    assert ber == pytest.approx(rayleigh_qpsk_ber(ebno_db), rel=0.10)


def test_awgn_qpsk_ber_matches_closed_form():
    """The same harness over plain AWGN: the convention check the fading figures rest on."""
    assert simulated_qpsk_ber(fading.AWGN, 6.0) == pytest.approx(awgn_qpsk_ber(6.0), rel=0.10)


def test_rician_tends_to_awgn_as_k_grows():
    ebno_db = 6.0
    ber = {k: simulated_qpsk_ber(fading.LinkChannel("rician", k_db=k, block_symbols=1), ebno_db, seed=1)
           for k in (-math.inf, 0.0, 10.0, 30.0)}
    assert ber[30.0] == pytest.approx(awgn_qpsk_ber(ebno_db), rel=0.10)
    assert ber[-math.inf] == pytest.approx(rayleigh_qpsk_ber(ebno_db), rel=0.10)
    assert ber[-math.inf] > ber[0.0] > ber[10.0] > ber[30.0]


def test_coefficients_have_unit_mean_power():
    for channel in (fading.LinkChannel("rayleigh"), fading.LinkChannel("rician", k_db=3.0)):
        h = fading.draw_coefficients(channel, 100_000, 1, torch.Generator().manual_seed(0))
        assert h.abs().pow(2).mean().item() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("snr_db", [15.0, torch.tensor([0.0, 5.0, 10.0])])
def test_awgn_is_shared_channel_awgn_bit_for_bit(snr_db):
    z = torch.randn(3, 768, generator=torch.Generator().manual_seed(7))
    ours = fading.transmit(z, snr_db, fading.AWGN, torch.Generator().manual_seed(3))
    assert torch.equal(ours, awgn(z, snr_db, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("length", [6, 7])
def test_complex_pairing_round_trips(length):
    z = torch.randn(2, length)
    x = fading.to_complex(z)
    assert x.shape == (2, math.ceil(length / 2))
    assert torch.equal(x[:, 0].real, z[:, 0]) and torch.equal(x[:, 0].imag, z[:, 1])
    assert torch.equal(fading.to_real(x, length), z)


@pytest.mark.parametrize("csi", fading.CSI_MODES)
def test_an_odd_latent_goes_through_and_comes_back_at_its_length(csi):
    z = torch.randn(3, 9, generator=torch.Generator().manual_seed(0))
    channel = fading.LinkChannel("rayleigh", block_symbols=2, csi=csi)
    z_hat = fading.transmit(z, 60.0, channel, torch.Generator().manual_seed(1))
    assert z_hat.shape == z.shape and torch.allclose(z_hat, z, atol=0.05)


def test_block_fading_shares_one_coefficient_per_block():
    h = fading.draw_coefficients(fading.LinkChannel("rayleigh"), 2, 3, torch.Generator().manual_seed(0))
    spread = fading.per_symbol(h, 7, block_symbols=3)
    assert spread.shape == (2, 7)
    assert torch.equal(spread[:, 0:3], h[:, :1].expand(-1, 3)) and torch.equal(spread[:, 6], h[:, 2])
    assert torch.equal(fading.per_symbol(h[:, :1], 7, None), h[:, :1].expand(-1, 7))


@pytest.mark.parametrize("method", fading.EQUALISERS)
def test_noiseless_equalised_symbols_come_back(method):
    generator = torch.Generator().manual_seed(0)
    x = fading.to_complex(torch.randn(4, 64, generator=generator))
    h = fading.draw_coefficients(fading.LinkChannel("rayleigh"), 4, 32, generator)
    assert torch.allclose(fading.equalise(h * x, h, math.inf, method), x, atol=1e-5)


def test_zf_on_a_unit_channel_is_awgn_bit_for_bit():
    """What makes ZF the AWGN-trained decoder's match: with h = 1 the receiver gets awgn's output exactly."""
    z = torch.randn(4, 768, generator=torch.Generator().manual_seed(0))
    h = torch.ones(4, 384, dtype=torch.complex64)
    y = fading.fade(fading.to_complex(z), h, 5.0, torch.Generator().manual_seed(1))
    assert torch.equal(fading.to_real(fading.equalise(y, h, 5.0, "zf"), 768),
                       awgn(z, 5.0, torch.Generator().manual_seed(1)))
    # MMSE is not: it shrinks by |h|^2 / (|h|^2 + 1/SNR), here 1 / (1 + 10^-0.5)
    shrunk = fading.to_real(fading.equalise(y, h, 5.0, "mmse"), 768)
    assert torch.allclose(shrunk, awgn(z, 5.0, torch.Generator().manual_seed(1)) / (1 + 10 ** -0.5), atol=1e-6)


def ls_error(pilot_symbols: int, snr_db: float, blocks: int = 20_000) -> float:
    """Mean |h_LS - h|^2 over ``blocks`` Rayleigh blocks."""
    generator = torch.Generator().manual_seed(0)
    h = fading.draw_coefficients(fading.LinkChannel("rayleigh"), 1, blocks, generator)
    pilot = fading.pilot_block(pilot_symbols)
    estimate = fading.ls_estimate(fading.send_pilots(h, pilot, snr_db, generator), pilot)
    return (estimate - h).abs().pow(2).mean().item()


def test_ls_estimate_error_shrinks_as_theory_says():
    """LS error variance N0 / (P Es) = 1 / (P SNR): down with more pilots and with more SNR."""
    errors = {(p, s): ls_error(p, s) for p in (2, 8) for s in (0.0, 10.0)}
    for (p, s), error in errors.items():
        assert error == pytest.approx(1.0 / (p * 10.0 ** (s / 10.0)), rel=0.05)
    assert errors[(8, 0.0)] < errors[(2, 0.0)] and errors[(2, 10.0)] < errors[(2, 0.0)]


def test_snr_estimate_under_fading():
    """Average SNR from the pilots of 24 blocks of 8 pilots, per row, over -6..18 dB.

    168 complex residual degrees of freedom per row: N0 to about 1/sqrt(168) = 8%, 0.33 dB.
    So: no bias (mean error within 0.1 dB over 144 rows) and a mean absolute error under 0.4 dB.
    """
    generator = torch.Generator().manual_seed(0)
    pilot = fading.pilot_block(8)
    errors = []
    for snr_db in range(-6, 19, 3):
        h = fading.draw_coefficients(fading.LinkChannel("rayleigh"), 16, 24, generator)
        received = fading.send_pilots(h, pilot, float(snr_db), generator)
        errors.append(fading.estimate_snr_db(received, pilot, fading.ls_estimate(received, pilot)) - snr_db)
    errors = torch.cat(errors)
    assert abs(errors.mean().item()) < 0.1 and errors.abs().mean().item() < 0.4


def test_pilot_csi_approaches_perfect_csi():
    """With pilot CSI the BER pays a small estimation loss over perfect CSI, not an error floor."""
    perfect = simulated_qpsk_ber(fading.LinkChannel("rayleigh", block_symbols=16), 10.0)
    pilot = simulated_qpsk_ber(fading.LinkChannel("rayleigh", block_symbols=16, csi="pilot", pilot_symbols=8), 10.0)
    assert perfect < pilot < 1.5 * perfect


def test_bad_configurations_are_refused():
    for kwargs in ({"kind": "nakagami"}, {"csi": "blind"}, {"block_symbols": 0}, {"pilot_symbols": 1},
                   {"k_db": math.inf}, {"equaliser": "ml"}):
        with pytest.raises(ValueError):
            fading.LinkChannel(**kwargs)


def test_transmit_with_csi_reports_each_symbols_noise_after_zf():
    """(z_hat - z)^2 / variance averages 1 (perfect CSI) and the variance follows 1 / (SNR |h|^2)."""
    from shared.channel import normalize_power

    z = normalize_power(torch.randn(64, 768, generator=torch.Generator().manual_seed(5)))
    z_hat, variance = fading.transmit_with_csi(z, 6.0, fading.LinkChannel("rayleigh"), torch.Generator().manual_seed(6))
    assert variance.shape == z.shape and (variance > 0).all()
    assert ((z_hat - z).pow(2) / variance).mean().item() == pytest.approx(1.0, abs=0.03)
    with pytest.raises(ValueError, match="zf"):
        fading.transmit_with_csi(z, 6.0, fading.LinkChannel("rayleigh", equaliser="mmse"))
