"""The reward of the step-selection MDP, paper eqs. 26-31.

For a batch of B clean images x (true labels y), their source-attacked versions x_adv and what the
receiver ends with after the whole chain, x_final = P(F^-1(C(F(D(x_adv; t_D)))); t_P), with the
receiver classifier H:

- eq. 26  SSIM_avg = mean_k SSIM(x^k, x_final^k)              (against the *clean* originals)
- eqs. 27-28  Adv = sqrt(mean_k G_k), G_k = [H(x) != H(x_adv) and H(x_adv) == H(x_final)]:
  the attack changed the decision and the chain did not undo it (adversarial images that stay
  un-purified).
- eqs. 29-30  Err = sqrt(mean_k J_k), J_k = [H(x) != H(x_adv) != H(x_final)]: images "purified
  into new but wrong categories".
- eq. 31  R = eta * (eta1 * (1 - SSIM_avg) + eta2 * Adv + eta3 * Err), with eta = 1, eta1 = -0.8,
  eta2 = -0.7, eta3 = -0.5 (VI-A). All three terms are penalties (each in [0, 1]), the weights
  negative, so R lies in [-2, 0] and the agent maximises it towards 0.

Readings of the paper's definitions (noted where the text is ambiguous):

1. H(x) is "the classification result of image x" (IV-D): the receiver classifier's decision on
   the clean image, *not* the true label. We follow the text; ``robust_accuracy`` (against the
   true labels) is reported beside the reward but is not part of it.
2. Eq. 30's chained "H(x) != H(x_adv) != H(x_final)" is read with the sentence before it
   ("purified into new but wrong categories"): the attack succeeded (H(x) != H(x_adv)), the
   chain moved the image to a *new* class (H(x_final) != H(x_adv)) that is still *wrong*
   (H(x_final) != H(x)). A purely pairwise reading of the chain would also count images the
   chain restored to H(x), i.e. penalise successful purification, which contradicts the text.
3. Both rates divide by the whole batch B (the paper's 1/B), not by the number of images the
   attack fooled; images the attack did not fool count in neither G nor J (their damage by the
   chain only shows in the SSIM term).
4. The sums in eqs. 26-29 run "k = 0 .. B" (B + 1 terms): an off-by-one in the text; we average
   over the B images.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class RewardWeights:
    """Eq. 31's factors (paper VI-A): eta limits the value, eta1..3 weigh SSIM loss, Adv, Err."""

    eta: float = 1.0
    eta1: float = -0.8     # multiplies (1 - SSIM_avg)
    eta2: float = -0.7     # multiplies Adv (un-purified adversarial images)
    eta3: float = -0.5     # multiplies Err (images purified into new wrong classes)

    def to_dict(self) -> dict:
        return asdict(self)


PAPER_WEIGHTS = RewardWeights()


def batch_ssim(ssim_per_image: torch.Tensor) -> float:
    """Eq. 26 from per-image SSIM values [B] (see :func:`shared.losses.ssim01` ``per_image=True``)."""
    return float(ssim_per_image.float().mean())


def adv_indicator(h_clean: torch.Tensor, h_adv: torch.Tensor, h_final: torch.Tensor) -> torch.Tensor:
    """Eq. 28's G per image (bool [B]) from the class decisions [B] on x, x_adv and x_final."""
    return (h_clean != h_adv) & (h_adv == h_final)


def err_indicator(h_clean: torch.Tensor, h_adv: torch.Tensor, h_final: torch.Tensor) -> torch.Tensor:
    """Eq. 30's J per image (bool [B]): attack succeeded, and the chain's class is new and still wrong."""
    return (h_clean != h_adv) & (h_final != h_adv) & (h_final != h_clean)


def adv_rate(h_clean: torch.Tensor, h_adv: torch.Tensor, h_final: torch.Tensor) -> float:
    """Eq. 27: sqrt of the fraction of the batch whose adversarial decision survives the chain."""
    return math.sqrt(float(adv_indicator(h_clean, h_adv, h_final).float().mean()))


def err_rate(h_clean: torch.Tensor, h_adv: torch.Tensor, h_final: torch.Tensor) -> float:
    """Eq. 29: sqrt of the fraction of the batch purified into a new but wrong class."""
    return math.sqrt(float(err_indicator(h_clean, h_adv, h_final).float().mean()))


def reward(ssim: float, adv: float, err: float, weights: RewardWeights = PAPER_WEIGHTS) -> float:
    """Eq. 31: eta * (eta1 * (1 - SSIM) + eta2 * Adv + eta3 * Err)."""
    return weights.eta * (weights.eta1 * (1.0 - ssim) + weights.eta2 * adv + weights.eta3 * err)
