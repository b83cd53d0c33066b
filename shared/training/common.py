"""Helpers shared by the training phases: data split, seeding, evaluation, manifests."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import ImageSet, load_split
from ..data.heldout import split_heldout
from ..presets import Preset
from .distributed import Dist



def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class PhaseContext:
    """What every phase needs: preset, where to read data and write checkpoints, DDP context."""

    preset: Preset
    out_dir: "object"
    ctx: Dist
    seed: int = 0
    data_root: str | None = None
    max_steps: int | None = None        # cap for smoke tests and CI
    train_set: ImageSet | None = None   # injected data (tests); else the preset's train split
    started: float = field(default_factory=time.time)

    def train_and_val(self) -> tuple[ImageSet, ImageSet]:
        """(the images to train on, the held-out ones for model selection): :func:`shared.data.heldout.split_heldout`."""
        return split_heldout(self.train_set or load_split(self.preset.dataset, "train", self.data_root))

    def steps(self, planned: int) -> int:
        return min(planned, self.max_steps) if self.max_steps else planned

    def data_manifest(self, data: ImageSet) -> dict:
        return {"data": data.description, "data_checksum_md5": data.checksum, "seed": self.seed,
                "world_size": self.ctx.world, "wall_time_s": round(time.time() - self.started, 1),
                "preset_config": self.preset.to_dict()}


@torch.no_grad()
def classifier_accuracy(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor,
                        batch: int = 500) -> float:
    """Top-1 accuracy of ``model`` on [N,C,H,W] pixels in [0,1]."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(labels), batch):
        logits = model(images01[i:i + batch].to(device))
        correct += (logits.argmax(1).cpu() == labels[i:i + batch]).sum().item()
    model.train(was_training)
    return correct / max(1, len(labels))
