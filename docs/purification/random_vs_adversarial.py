"""Survival of a PGD perturbation vs a random +/-8/255 sign pattern under the previous models.

Run on the models shipped before the airbench classifier (commit 2a68b00):
    mkdir -p /tmp/oldck && for k in denoiser classifier; do
      git show 2a68b00:checkpoints/cifar10/$k.pt > /tmp/oldck/$k.pt; done
    python docs/purification/random_vs_adversarial.py /tmp/oldck
Data: CIFAR-10 (JPEG q75 copy), test split, 100 images (seed 0); t = 60, no codec.
"""
import sys
from pathlib import Path

import torch

from shared.attacks.source import pgd
from shared.checkpoints import load_checkpoint
from shared.data import load_split
from shared.models.classifier import Classifier
from shared.models.unet import UNet
from shared.pipeline import Pipeline
from shared.presets import ClassifierConfig, get_preset
from shared.purification import purify_once, survival_ratio

old = Path(sys.argv[1])
preset = get_preset("cifar10")
pipeline = Pipeline.load("cifar10", old, parts=())
pipeline.denoiser = UNet(preset.denoiser).eval().requires_grad_(False)
pipeline.denoiser.load_state_dict(load_checkpoint(old, "denoiser", "cifar10"))
pipeline.classifier = Classifier(ClassifierConfig()).eval().requires_grad_(False)   # the previous ResNet-9
pipeline.classifier.load_state_dict(load_checkpoint(old, "classifier", "cifar10"))
data = load_split("cifar10", "test").subset(100, 0)
x, y = data.as_float(), data.labels
x_adv = pgd(pipeline.classifier, x, y, 8 / 255, 10, 2 / 255, generator=torch.Generator().manual_seed(0))
signs = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(5)).float() * 2 - 1
x_rand = (x + signs * 8 / 255).clamp(0, 1)
for sampler in ("ddim", "ddpm"):
    clean, adv, rand = (purify_once(pipeline, im, 60, None, sampler, 5, 1) for im in (x, x_adv, x_rand))
    print(f"t=60 {sampler}: survival adversarial {survival_ratio(clean, adv, x, x_adv).nanmean():.2f}, "
          f"random sign {survival_ratio(clean, rand, x, x_rand).nanmean():.2f}")
