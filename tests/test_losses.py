"""The training losses of paper section V (eqs. 33-35), checked against values known by hand."""
from __future__ import annotations

import pytest
import torch

from shared.losses import jsc_loss, purification_loss, semantic_loss


def images(seed: int = 0) -> torch.Tensor:
    """[4, 3, 32, 32] in [-1, 1]: smooth enough for SSIM to mean something."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)


def test_identical_images_cost_nothing():
    y = images()
    assert semantic_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert purification_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert jsc_loss(y, y).item() == 0.0


def test_eq34_is_the_mean_squared_error():
    y = torch.zeros(2, 64, 12)
    assert jsc_loss(y, y + 0.3).item() == pytest.approx(0.09)


def test_eq35_weights_mse_by_one_minus_zeta_and_ssim_by_zeta_iota():
    y = images()
    shifted = y + 0.1
    # zeta = 0: pure MSE, (0.1)^2
    assert purification_loss(y, shifted, zeta=0.0).item() == pytest.approx(0.01, rel=1e-5)
    # zeta = 1: pure structure, the same term as eq. 33 with iota = iota'
    noisy = y + 0.3 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    structural = purification_loss(y, noisy.clamp(-1, 1), zeta=1.0, iota_prime=0.5).item()
    assert structural == pytest.approx(semantic_loss(y, noisy.clamp(-1, 1), iota=0.5).item(), rel=1e-5)
    assert 0.05 < structural < 0.5                       # noise really costs structure, SSIM stays > 0
    # the default mix is the weighted sum of the two parts
    mixed = purification_loss(y, noisy.clamp(-1, 1)).item()
    mse = torch.mean((noisy.clamp(-1, 1) - y) ** 2).item()
    assert mixed == pytest.approx(0.8 * structural + 0.2 * mse, rel=1e-5)


def test_eq35_clamps_wild_predictions_in_the_ssim_term_only():
    y = images()
    wild, clipped = torch.full_like(y, 5.0), torch.full_like(y, 1.5)
    assert purification_loss(y, wild, zeta=1.0).item() == pytest.approx(purification_loss(y, clipped, zeta=1.0).item())
    assert purification_loss(y, wild, zeta=0.0).item() > purification_loss(y, clipped, zeta=0.0).item()
