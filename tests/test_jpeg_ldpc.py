"""The conventional baseline jpeg-ldpc: JPEG scan coding, the 5G NR link (CRC, LDPC, QAM from Sionna), budget,
failure rule, eval CLI."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from diffusec.cli import main
from shared.baselines import jpeg_ldpc, jpeg_scan, nr_link
from shared.baselines.link_adaptation import (MEASURED_THRESHOLDS_DB, choose_mode, measure_frame_error_rate,
                                              noise_variance)
from shared.baselines.link_modes import MODES, RATES, LinkMode
from shared.baselines.nr_link import frame_plan, receive, transmit
from shared.checkpoints import default_checkpoint_dir
from shared.fading import LinkChannel
from shared.data import load_sample
from shared.presets import get_preset

CIFAR_SYMBOLS = get_preset("cifar10").codec.channel_symbols          # 768


@pytest.fixture(scope="module")
def cifar_images() -> np.ndarray:
    """uint8 [16, 3, 32, 32] from the embedded CIFAR-10 (JPEG q75 copy) sample."""
    return load_sample("cifar10").images[:16].numpy()


def smooth_images(count: int, channels: int, size: int) -> np.ndarray:
    """uint8 [count, channels, size, size] gradients: compress well, so they fit the small budgets."""
    ramp = np.linspace(0, 255, size)
    images = np.empty((count, channels, size, size), dtype=np.uint8)
    for i in range(count):
        images[i] = ((ramp[None, :, None] * (i + 1) / count + ramp[None, None, :] / 2) % 256).astype(np.uint8)
    return images


# --- JPEG scan coding ---------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_scan_round_trip_matches_the_whole_file(cifar_images, channels):
    image = cifar_images[0] if channels == 3 else cifar_images[0, :1]
    for quality in (1, 20, 75):
        scan = jpeg_scan.encode_scan(image, quality)
        decoded = jpeg_scan.decode_scan(scan, quality, channels, 32, 32)
        buffer = io.BytesIO()
        pil = Image.fromarray(image[0]) if channels == 1 else Image.fromarray(image.transpose(1, 2, 0))
        pil.save(buffer, "JPEG", quality=quality, subsampling=jpeg_scan.CHROMA_SUBSAMPLING, optimize=False)
        reference = np.asarray(Image.open(buffer))
        reference = reference[None] if channels == 1 else reference.transpose(2, 0, 1)
        assert decoded.shape == image.shape and np.array_equal(decoded, reference)
        assert len(scan) < len(buffer.getvalue()) / 2       # the headers the link does not send dominate


def test_payload_fits_the_budget_at_the_best_quality_that_fits(cifar_images):
    for budget in (384, 1152, 1920):
        for image in cifar_images[:6]:
            frame, quality = jpeg_scan.pack_image(image, budget)
            assert frame.shape == (budget,) and frame.dtype == np.uint8
            scan = jpeg_scan.encode_scan(image, quality)
            assert jpeg_scan.header_bits(budget) + 8 * len(scan) <= budget
            better = [q for q in jpeg_scan.QUALITY_LADDER if q > quality]
            if better:      # the next ladder step would not have fitted
                assert jpeg_scan.header_bits(budget) + 8 * len(jpeg_scan.encode_scan(image, better[0])) > budget
            decoded, got = jpeg_scan.unpack_image(frame, 3, 32, 32)
            assert got == quality and np.array_equal(decoded, jpeg_scan.decode_scan(scan, quality, 3, 32, 32))
    assert jpeg_scan.pack_image(cifar_images[0], 64) is None          # 8 bytes: not even quality 1 fits


def test_unpack_rejects_a_bad_frame():
    frame = np.ones(400, dtype=np.uint8)           # quality index 15 ok, length field all ones: overruns
    with pytest.raises(jpeg_scan.JpegDecodeError):
        jpeg_scan.unpack_image(frame, 3, 32, 32)
    with pytest.raises(ValueError):
        jpeg_scan.encode_scan(np.zeros((2, 8, 8), dtype=np.uint8), 50)


# --- the digital link: 5G NR LDPC, QAM, CRC ------------------------------------------------------------

@pytest.mark.parametrize("rate", RATES)
def test_every_rate_fills_the_budget_at_unit_power_and_comes_back_noiseless(rate):
    rng = np.random.default_rng(0)
    for modulation in ("qpsk", "64qam"):
        plan = frame_plan(LinkMode(modulation, rate), CIFAR_SYMBOLS)
        assert plan.info_bits == int(plan.frame_bits * plan.mode.code_rate) - nr_link.CRC_BITS
        payload = rng.integers(0, 2, (8, plan.info_bits), dtype=np.uint8)
        symbols = transmit(plan, payload)
        assert symbols.shape == (8, CIFAR_SYMBOLS) and abs(float(np.mean(symbols.astype(np.float64) ** 2)) - 1.0) < 0.05
        decoded, delivered = receive(plan, symbols, 1e-4)
        assert delivered.all() and np.array_equal(decoded, payload)


@pytest.mark.parametrize("name", ["qpsk-1/2", "16qam-3/4", "64qam-5/6"])
def test_bp_corrects_channel_errors_above_the_threshold_and_the_crc_catches_failure(name):
    """Decoded 1.5 dB above the measured threshold although the channel flips bits; at -3 dB every frame
    fails its CRC and none is delivered wrong."""
    plan, rng = frame_plan(LinkMode.parse(name), CIFAR_SYMBOLS), np.random.default_rng(4)
    payload = rng.integers(0, 2, (24, plan.info_bits), dtype=np.uint8)
    symbols = transmit(plan, payload)
    for snr_db, all_delivered in ((MEASURED_THRESHOLDS_DB[CIFAR_SYMBOLS][name] + 1.5, True), (-3.0, False)):
        nv = noise_variance(snr_db)
        received = symbols + rng.normal(0, np.sqrt(nv), symbols.shape)
        decoded, delivered = receive(plan, received, nv)
        if all_delivered:
            if plan.mode.modulation == "qpsk":                             # the channel flipped bits...
                assert np.mean((received < 0) != (symbols < 0)) > 0.01
            assert delivered.all() and np.array_equal(decoded, payload)  # ...and BP corrected them
        else:
            assert not delivered.any()


def test_measured_threshold_holds_for_the_adaptive_choice():
    """Spot-check the recorded table: 16qam-3/4 works 1 dB above its threshold, fails 2 dB below."""
    mode, rng = LinkMode("16qam", "3/4"), np.random.default_rng(3)
    threshold = MEASURED_THRESHOLDS_DB[CIFAR_SYMBOLS][mode.name]
    assert measure_frame_error_rate(mode, CIFAR_SYMBOLS, threshold + 1.0, 40, rng)["frame_error_rate"] < 0.1
    assert measure_frame_error_rate(mode, CIFAR_SYMBOLS, threshold - 2.0, 20, rng)["frame_error_rate"] > 0.5


@pytest.mark.parametrize("preset_name", ["cifar10", "fmnist", "mnist", "paper-cifar10"])
def test_channel_uses_per_image_equal_the_semantic_budget(preset_name):
    budget = get_preset(preset_name).codec.channel_symbols
    for mode in MODES:
        plan = frame_plan(mode, budget)
        assert plan.frame_bits == budget * mode.bits_per_real_symbol and plan.info_bits > 0
        if mode.rate == "1/2":
            symbols = transmit(plan, np.zeros((2, plan.info_bits), dtype=np.uint8))
            assert symbols.shape == (2, budget)


def test_adaptive_policy_picks_more_throughput_as_the_snr_rises():
    chosen = [choose_mode(snr, CIFAR_SYMBOLS) for snr in np.arange(-6.0, 25.0, 0.5)]
    bits = [frame_plan(m, CIFAR_SYMBOLS).info_bits for m in chosen]
    assert bits == sorted(bits)
    assert chosen[0].name == "qpsk-1/2" and choose_mode(18.0, CIFAR_SYMBOLS).name == "64qam-5/6"
    assert choose_mode(10.5, CIFAR_SYMBOLS).name == "16qam-3/4"     # ties with 64qam-1/2 go to the robust one
    with pytest.raises(ValueError, match="unknown link mode"):
        LinkMode.parse("8psk-1/2")


# --- the system -------------------------------------------------------------------------------------

def test_link_delivers_at_a_high_snr_and_repeats_with_a_seed(cifar_images):
    pixels = torch.from_numpy(cifar_images[:8]).float() / 255
    tally = jpeg_ldpc.LinkTally()
    first = jpeg_ldpc.transmit_images(pixels, 25.0, CIFAR_SYMBOLS, "adaptive", torch.Generator().manual_seed(0), tally)
    again = jpeg_ldpc.transmit_images(pixels, 25.0, CIFAR_SYMBOLS, "adaptive", torch.Generator().manual_seed(0))
    assert first.shape == pixels.shape and torch.equal(first, again)
    assert tally.delivered == 8 and tally.decode_failure_rate == 0.0 and dict(tally.modes) == {"64qam-5/6": 8}
    assert (first - pixels).abs().mean() < 0.06                    # JPEG at ~q50: close, not exact


def test_under_fading_the_digital_link_delivers_what_the_fade_allows_and_repeats(cifar_images):
    """Rayleigh, one h per image, zf with each symbol's noise in the LLRs: at 30 dB average SNR and a robust
    mode most images arrive intact; at 9 dB with the mode chosen for AWGN some are lost (the cliff)."""
    pixels = torch.from_numpy(cifar_images[:16]).float() / 255
    rayleigh = LinkChannel("rayleigh")
    tally = jpeg_ldpc.LinkTally()
    first = jpeg_ldpc.transmit_images(pixels, 30.0, CIFAR_SYMBOLS, "qpsk-1/2", torch.Generator().manual_seed(0),
                                      tally, rayleigh)
    again = jpeg_ldpc.transmit_images(pixels, 30.0, CIFAR_SYMBOLS, "qpsk-1/2", torch.Generator().manual_seed(0),
                                      None, rayleigh)
    assert torch.equal(first, again) and tally.delivered >= 14
    tally = jpeg_ldpc.LinkTally()
    jpeg_ldpc.transmit_images(pixels, 9.0, CIFAR_SYMBOLS, "adaptive", torch.Generator().manual_seed(0), tally, rayleigh)
    assert 0 < tally.delivered < 16


def test_failure_rule_gives_mid_grey_and_counts_each_case(cifar_images):
    pixels = torch.from_numpy(cifar_images[:6]).float() / 255
    tally = jpeg_ldpc.LinkTally()
    received = jpeg_ldpc.transmit_images(pixels, -6.0, CIFAR_SYMBOLS, "adaptive", torch.Generator().manual_seed(0), tally)
    assert torch.all(received == jpeg_ldpc.FALLBACK_PIXEL)
    assert tally.link_failures + tally.not_sent == 6 and tally.decode_failure_rate == 1.0
    tally = jpeg_ldpc.LinkTally()           # 196 symbols at qpsk-1/2: 74 payload bits, less than any 32x32 scan
    received = jpeg_ldpc.transmit_images(pixels[:3], 30.0, 196, "qpsk-1/2", torch.Generator().manual_seed(0), tally)
    assert tally.not_sent == 3 and tally.link_failures == 0 and torch.all(received == jpeg_ldpc.FALLBACK_PIXEL)
    assert tally.to_dict()["not_sent_rate"] == 1.0 and tally.to_dict()["policy"] == "fixed"


def test_one_channel_images_on_the_28x28_budget():
    budget = get_preset("fmnist").codec.channel_symbols              # 196 real symbols
    pixels = torch.from_numpy(smooth_images(4, 1, 28)).float() / 255
    tally = jpeg_ldpc.LinkTally()
    received = jpeg_ldpc.transmit_images(pixels, 30.0, budget, "64qam-5/6", torch.Generator().manual_seed(0), tally)
    assert received.shape == (4, 1, 28, 28) and tally.delivered == 4
    with pytest.raises(ValueError, match="C = 1 or 3"):
        jpeg_ldpc.transmit_images(torch.zeros(2, 2, 28, 28), 10.0, budget)


def test_classifier_is_a_parameter(cifar_images):
    pixels = torch.from_numpy(cifar_images[:2]).float() / 255
    received, logits = jpeg_ldpc.run(pixels, 25.0, lambda x: x.flatten(1)[:, :4], CIFAR_SYMBOLS,
                                     generator=torch.Generator().manual_seed(0))
    assert torch.equal(logits, received.flatten(1)[:, :4])


# --- diffusec eval ----------------------------------------------------------------------------------

def run_eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", "--data", "sample", "--threads", "1", *args])
    return result.exit_code, result.output


@pytest.mark.skipif(not (default_checkpoint_dir("cifar10") / "classifier.pt").exists(),
                    reason="needs the shipped cifar10 classifier")
def test_eval_cli_runs_jpeg_ldpc_on_the_shipped_classifier():
    code, out = run_eval("--system", "jpeg-ldpc", "--n", "20", "--snr-db", "18", "--json")
    assert code == 0, out
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["system"] == "jpeg-ldpc" and payload["n"] == 20 and payload["snr_db"] == 18.0
    assert 0.0 <= payload["accuracy"] <= 1.0 and 0.0 <= payload["ssim"] <= 1.0
    assert payload["channel_symbols"] == 768 and payload["link"]["real_channel_uses_per_image"] == 768
    assert payload["t_d"] is None and payload["sampler"] is None
    assert payload["link_mode"] == "64qam-5/6" and payload["decode_failure_rate"] <= 0.1
    assert payload["accuracy"] >= 0.5               # JPEG ~q50 keeps most of the classifier's accuracy


def test_eval_cli_refuses_what_the_digital_link_cannot_do():
    code, out = run_eval("--system", "jpeg-ldpc", "--channel-attack", "jamming", "--pnr-db", "0")
    assert code == 2 and "not supported on jpeg-ldpc" in out
    code, out = run_eval("--system", "jpeg-ldpc", "--source-attack", "pgd", "--adaptive")
    assert code == 2 and "cannot differentiate" in out
    code, out = run_eval("--system", "vit", "--link-mode", "qpsk-1/2")
    assert code == 2 and "jpeg-ldpc and jpeg-ldpc-at only" in out
    code, out = run_eval("--system", "jpeg-ldpc", "--link-mode", "qpsk-7/8")
    assert code == 2 and "unknown link mode" in out


def test_jpeg_ldpc_at_classifies_with_the_adversarially_trained_classifier(tmp_path):
    from shared.checkpoints import save_checkpoint
    from shared.models.classifier import Classifier
    from shared.pipeline import Pipeline

    preset = get_preset("cifar10")
    torch.manual_seed(0)
    standard, robust = (Classifier(preset.classifier_config(kind), preset.codec.channels, preset.num_classes)
                        for kind in ("classifier", "classifier_at"))
    save_checkpoint(tmp_path, "classifier", standard.state_dict(), "cifar10", {"metrics": {}})
    code, out = run_eval("--system", "jpeg-ldpc-at", "--n", "4", "--snr-db", "18", "--checkpoints", str(tmp_path))
    assert code == 2 and "diffusec train classifier --adversarial" in out          # no classifier_at.pt yet
    save_checkpoint(tmp_path, "classifier_at", robust.state_dict(), "cifar10", {"metrics": {}})
    code, out = run_eval("--system", "jpeg-ldpc-at", "--n", "4", "--snr-db", "18", "--checkpoints", str(tmp_path),
                         "--json")
    assert code == 0, out
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["system"] == "jpeg-ldpc-at" and payload["decode_failure_rate"] is not None
    # Same link draws, different classifier: the logits are those of classifier_at.
    x = load_sample("cifar10").as_float(slice(0, 4))
    at = Pipeline.load("cifar10", tmp_path, ("classifier",), classifier_kind="classifier_at")
    received, logits = at.run("jpeg-ldpc-at", x, 18.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(logits, robust.eval()(received), atol=1e-5)
    with pytest.raises(ValueError, match="classifier_kind='classifier_at'"):
        Pipeline.load("cifar10", tmp_path, ("classifier",)).run("jpeg-ldpc-at", x, 18.0)
