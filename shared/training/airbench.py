"""A fast classifier recipe for CPUs, after airbench94 (Keller Jordan, 2024: "94% on CIFAR-10 in 3.29
seconds on a single GPU", github.com/KellerJordan/cifar10-airbench). Written here from the paper's
description; the ``airbench`` package itself needs CUDA.

What we took, and why it pays on 2 CPU cores as on a GPU:
- the network layout (:class:`shared.models.classifier.AirbenchNet`) with dirac-initialised convs and
  BatchNorm scales frozen at 1;
- a 2x2 patch-whitening first conv, its weights set from the training images' patch covariance and
  frozen, its bias trained for the first ``whiten_bias_epochs`` only;
- SGD-Nesterov with momentum 0.85 on a *summed* label-smoothed (0.2) loss, learning rate and
  decoupled weight decay given per 1024 examples, BatchNorm biases at 64x the rate;
- a triangular learning-rate schedule (0.2 -> 1 at 23% -> 0.07) and lookahead: every 5 steps the
  weights are pulled to an EMA whose decay rises as the cube of progress, copied in at the end;
- flip and 2-pixel reflect-padded translation; a mirror test-time augmentation (in the model), and
  its 1-pixel translated views as an option (``ClassifierConfig.test_time_translate``; off: no gain
  on the test split, docs/purification.md row I6).
``RECIPES["airbench96"]`` takes airbench96's changes to the recipe (its 06/2024 update): learning rate
9.0 and weight decay 0.012 per 1024 examples, 4-pixel translation, a 12-pixel Cutout filled with the
mean pixel (zero after normalisation, as there), and a schedule warming up over the first 10% and
decaying to 0; its network is ``ClassifierConfig(residual_pair=True)``.
What we left out: alternating (deterministic) flips; airbench96's plain BatchNorm momentum.
We add bf16 autocast with channels_last (measured 2.7x faster than float32 NCHW on this network).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.augment import random_crop, random_cutout, random_hflip


@dataclass(frozen=True)
class AirbenchRecipe:
    """airbench94's published hyperparameters (per 1024 examples, summed loss)."""

    batch_size: int = 1024
    lr: float = 11.5                # per 1024 examples
    momentum: float = 0.85
    weight_decay: float = 0.0153    # per 1024 examples, decoupled from the learning rate
    bias_scaler: float = 64.0       # BatchNorm biases learn this much faster (no extra decay)
    label_smoothing: float = 0.2
    whiten_bias_epochs: float = 3.0
    translate_px: int = 2
    cutout_px: int = 0              # side of the square blanked to the mean pixel; 0: none
    lr_peak_at: float = 0.23        # share of the steps where the triangular schedule peaks
    lr_end: float = 0.07            # the schedule's last multiplier
    lookahead_every: int = 5
    lookahead_decay: float = 0.95 ** 5


RECIPES = {
    "airbench94": AirbenchRecipe(),
    "airbench96": AirbenchRecipe(lr=9.0, weight_decay=0.012, translate_px=4, cutout_px=12, lr_peak_at=0.1, lr_end=0.0),
}


def recipe_named(name: str) -> AirbenchRecipe:
    """The recipe ``name`` of :data:`RECIPES`; a clear error for an unknown one."""
    if name not in RECIPES:
        raise ValueError(f"unknown classifier recipe {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def patch_whitening_weights(images: torch.Tensor, patch: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """Conv weights [2*D, C, patch, patch] (D = C*patch^2) that whiten ``images``' patches.

    ``images``: normalised float [N, C, H, W]. Each filter is an eigenvector of the patch covariance
    divided by the square root of its eigenvalue, taken with both signs (so a GELU after it keeps both).
    """
    c = images.shape[1]
    patches = images.unfold(2, patch, 1).unfold(3, patch, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * patch * patch)
    covariance = (patches.T.double() @ patches.double()) / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    filters = (eigenvectors.T / (eigenvalues[:, None] + eps).sqrt()).flip(0).float()
    filters = filters.reshape(-1, c, patch, patch)
    return torch.cat([filters, -filters])


class Lookahead:
    """An EMA of the weights that the live weights are pulled back to (airbench's lookahead)."""

    def __init__(self, model: nn.Module):
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def pull(self, model: nn.Module, decay: float) -> None:
        """ema <- decay * ema + (1 - decay) * weights; weights <- ema (float tensors only)."""
        for key, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                self.ema[key].lerp_(value, 1.0 - decay)
                value.copy_(self.ema[key])

    def state_dict(self) -> dict:
        return {k: v.clone() for k, v in self.ema.items()}

    def load_state_dict(self, state: dict) -> None:
        self.ema = {k: v.clone() for k, v in state.items()}


def lookahead_decay(step: int, total_steps: int, recipe: AirbenchRecipe) -> float:
    """The decay at ``step``: rises from 0 as the cube of progress to ``recipe.lookahead_decay``."""
    return recipe.lookahead_decay * (step / total_steps) ** 3


def triangular_lr(total_steps: int, peak_at: float = 0.23, end: float = 0.07) -> "callable":
    """LR multiplier: 0.2 -> 1 linearly over the first ``peak_at`` of the steps, then down to ``end``."""
    knots = [0, int(peak_at * total_steps), total_steps]

    def factor(step: int) -> float:
        return float(np.interp(step, knots, [0.2, 1.0, end]))
    return factor


def optimizer_for(model: nn.Module, recipe: AirbenchRecipe) -> torch.optim.SGD:
    """SGD-Nesterov with three groups: BatchNorm biases, the whitening bias, everything else.

    Weight decay is given as ``wd / lr`` so the per-step decay is ``schedule * wd``, independent of lr.
    """
    scale = 1024 * (1 + 1 / (1 - recipe.momentum))     # airbench's "kilostep" normalisation
    lr = recipe.lr / scale
    wd = recipe.weight_decay * recipe.batch_size / scale
    lr_bias = lr * recipe.bias_scaler
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    norm_biases = [p for k, p in named if "norm" in k]
    whiten_bias = [p for k, p in named if "whiten" in k]
    rest = [p for k, p in named if "norm" not in k and "whiten" not in k]
    groups = [dict(params=norm_biases, lr=lr_bias, weight_decay=wd / lr_bias, name="norm_bias"),
              dict(params=whiten_bias, lr=lr, weight_decay=wd / lr, name="whiten_bias"),
              dict(params=rest, lr=lr, weight_decay=wd / lr, name="weights")]
    return torch.optim.SGD(groups, momentum=recipe.momentum, nesterov=True)


def translate_and_flip(images01: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``pixels`` (reflect padding) and a random mirror, [B,C,H,W] -> same."""
    return random_hflip(random_crop(images01, pixels, generator, mode="reflect"), generator)


def augment_batch(images01: torch.Tensor, recipe: AirbenchRecipe, fill: torch.Tensor,
                  generator: torch.Generator) -> torch.Tensor:
    """The recipe's training augmentation of [B,C,H,W] pixels in [0, 1]: translate, flip, then Cutout
    filled with ``fill`` ([1,C,1,1], the mean pixel) where ``recipe.cutout_px`` > 0."""
    images01 = translate_and_flip(images01, recipe.translate_px, generator)
    return random_cutout(images01, recipe.cutout_px, fill, generator)


def summed_loss(logits: torch.Tensor, labels: torch.Tensor, recipe: AirbenchRecipe) -> torch.Tensor:
    """Label-smoothed cross-entropy summed over the batch (the learning rate is per 1024 examples)."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing, reduction="sum")
