"""Wireless attacks (shared.attacks.wireless): exact perturbation power, FGM vs jamming, targeting.

A small random decoder + classifier stands in for the receiver (fast, deterministic); accuracy is
measured against the model's own clean predictions, so it starts at 1.0 and only the perturbation
can lower it.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from shared.attacks.wireless import (achieved_pnr_db, jamming, latent_perturbation, perturbation_power,
                                     surrogate)
from shared.channel import awgn, normalize_power

L, C, H, W, K = 48, 3, 8, 8, 5
SNR_DB = 10.0


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.dec = nn.Linear(L, C * H * W)
        self.cls = nn.Sequential(nn.Flatten(), nn.Linear(C * H * W, 32), nn.ReLU(), nn.Linear(32, K))
        self.eval().requires_grad_(False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[B, L] -> model-space image [B, C, H, W] in [-1, 1]."""
        return torch.tanh(self.dec(z)).view(-1, C, H, W)

    def classify(self, pixels01: torch.Tensor) -> torch.Tensor:
        return self.cls(pixels01 * 2 - 1)


@pytest.fixture(scope="module")
def setup():
    model = Tiny()
    g = torch.Generator().manual_seed(1)
    z = normalize_power(torch.randn(256, L, generator=g))
    z_hat = awgn(z, SNR_DB, g)
    with torch.no_grad():
        labels = model.classify((model.decode(z_hat) + 1) / 2).argmax(1)
    return model, z_hat, labels


def accuracy(model: Tiny, z: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model.classify((model.decode(z) + 1) / 2).argmax(1) == labels).float().mean().item()


@pytest.mark.parametrize("pnr_db", [-10.0, 0.0, 7.5])
@pytest.mark.parametrize("method", ["fgm", "pgd", "jamming"])
def test_every_row_has_exactly_the_pnr_power(setup, method, pnr_db):
    model, z_hat, _ = setup
    z_hat = z_hat[:16]
    if method == "jamming":
        delta = jamming(z_hat, snr_db=SNR_DB, pnr_db=pnr_db, generator=torch.Generator().manual_seed(0))
    else:
        delta = latent_perturbation(z_hat, decode=model.decode, classify=model.classify, snr_db=SNR_DB,
                                    pnr_db=pnr_db, method=method, steps=3)
    expected = 10 ** ((pnr_db - SNR_DB) / 10)
    assert delta.shape == z_hat.shape and delta.dtype == z_hat.dtype and not delta.requires_grad
    assert perturbation_power(SNR_DB, pnr_db) == pytest.approx(expected)
    torch.testing.assert_close(delta.double().pow(2).mean(1), torch.full((16,), expected, dtype=torch.float64),
                               rtol=1e-5, atol=0)
    torch.testing.assert_close(achieved_pnr_db(delta, SNR_DB), torch.full((16,), pnr_db, dtype=torch.float64),
                               rtol=0, atol=1e-4)


def test_fgm_lowers_accuracy_far_more_than_jamming_at_equal_pnr(setup):
    model, z_hat, labels = setup
    common = dict(snr_db=SNR_DB, pnr_db=0.0)
    fgm = latent_perturbation(z_hat, decode=model.decode, classify=model.classify, labels=labels, **common)
    blind = latent_perturbation(z_hat, decode=model.decode, classify=model.classify, **common)  # no labels
    pgd = latent_perturbation(z_hat, decode=model.decode, classify=model.classify, labels=labels, method="pgd",
                              steps=10, **common)
    jam = jamming(z_hat, generator=torch.Generator().manual_seed(0), **common)
    acc = {name: accuracy(model, z_hat + d, labels) for name, d in
           (("fgm", fgm), ("blind", blind), ("pgd", pgd), ("jamming", jam))}
    assert acc["jamming"] > 0.8, acc          # Gaussian at the noise power barely matters...
    assert acc["fgm"] < acc["jamming"] - 0.3, acc   # ...the gradient direction does
    assert acc["blind"] == pytest.approx(acc["fgm"])  # clean predictions are the labels here
    assert acc["pgd"] <= acc["fgm"], acc


def test_targeted_moves_predictions_to_the_target(setup):
    model, z_hat, labels = setup
    target = 2
    with torch.no_grad():
        before = (model.classify((model.decode(z_hat) + 1) / 2).argmax(1) == target).float().mean().item()
    shares = {}
    for method in ("fgm", "pgd"):
        delta = latent_perturbation(z_hat, decode=model.decode, classify=model.classify, snr_db=SNR_DB, pnr_db=5.0,
                                    method=method, steps=10, target=target)
        with torch.no_grad():
            shares[method] = (model.classify((model.decode(z_hat + delta) + 1) / 2).argmax(1) == target
                              ).float().mean().item()
    assert shares["fgm"] > before + 0.2, (before, shares)
    assert shares["pgd"] >= shares["fgm"], (before, shares)


def test_surrogate_of_a_pipeline_is_differentiable():
    class FakePipeline:
        def __init__(self, model):
            self.codec = type("Codec", (), {"decode": staticmethod(model.decode)})()
            self.classifier = model.classify

    model = Tiny()
    decode, classify = surrogate(FakePipeline(model))
    z = torch.randn(4, L)
    delta = latent_perturbation(z, decode=decode, classify=classify, snr_db=0.0, pnr_db=0.0)
    assert delta.pow(2).mean(1).allclose(torch.ones(4), rtol=1e-5)
    with pytest.raises(ValueError, match="codec and classifier"):
        surrogate(type("P", (), {"codec": None, "classifier": None})())


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="bim"), "unknown attack method"),
    (dict(steps=0), "steps"),
    (dict(pnr_db=math.nan), "pnr_db"),
    (dict(pnr_db=99.0), "-60..60"),
    (dict(snr_db=math.inf), "snr_db"),
    (dict(target=K), "out of range"),
    (dict(target=-1), "target"),
    (dict(labels=torch.zeros(3, dtype=torch.long)), "3 labels for 4 latents"),
])
def test_bad_input_is_a_clear_value_error(kwargs, match):
    model = Tiny()
    args = dict(decode=model.decode, classify=model.classify, snr_db=10.0, pnr_db=0.0) | kwargs
    with pytest.raises(ValueError, match=match):
        latent_perturbation(torch.randn(4, L), **args)


def test_bad_latents_are_a_clear_value_error():
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        jamming(torch.randn(L), snr_db=10.0, pnr_db=0.0)
    with pytest.raises(ValueError, match="float"):
        jamming(torch.zeros(2, L, dtype=torch.long), snr_db=10.0, pnr_db=0.0)
