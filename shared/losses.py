"""Training losses of paper section V. Images in [-1, 1]; SSIM is computed on [0, 1] pixels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim


def ssim01(a: torch.Tensor, b: torch.Tensor, per_image: bool = False) -> torch.Tensor:
    """SSIM (eq. 32) of two batches of [0, 1] pixels [B, C, H, W]; batch mean unless ``per_image``."""
    return ssim(a, b, data_range=1.0, size_average=not per_image)


def semantic_loss(y: torch.Tensor, y_hat: torch.Tensor, iota: float = 0.5) -> torch.Tensor:
    """Eq. 33: iota * (1 - mean SSIM(y, y_hat)), on [-1, 1] images."""
    return iota * (1.0 - ssim01((y + 1) / 2, (y_hat + 1) / 2))


def jsc_loss(y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
    """Eq. 34: mean squared error of the semantic embedding through the channel."""
    return F.mse_loss(y_hat, y)


def purification_loss(y: torch.Tensor, y_prime: torch.Tensor, zeta: float = 0.8, iota_prime: float = 0.5) -> torch.Tensor:
    """Eq. 35: zeta * iota' * (1 - SSIM(y, y')) + (1 - zeta) * MSE(y, y'), on [-1, 1] images."""
    structural = 1.0 - ssim01((y + 1) / 2, (y_prime.clamp(-1.5, 1.5) + 1) / 2)
    return zeta * iota_prime * structural + (1.0 - zeta) * F.mse_loss(y_prime, y)
