"""Training phases of paper section V, each a function of a :class:`PhaseContext`."""
from __future__ import annotations

from .common import PhaseContext


def run_phase(name: str, pc: PhaseContext) -> dict:
    if name == "classifier":
        from .classifier import train_classifier
        return train_classifier(pc)
    if name in ("semantic", "jsc", "joint"):
        from .codec import train_codec_phase
        return train_codec_phase(name, pc)
    if name == "denoiser":
        from .denoiser import train_denoiser
        return train_denoiser(pc)
    if name == "classifier_at":
        from .adversarial import train_adversarial_classifier
        return train_adversarial_classifier(pc)
    if name == "retrain":
        from .retrain import retrain_classifier
        return retrain_classifier(pc)
    raise ValueError(f"unknown training phase {name!r}")
