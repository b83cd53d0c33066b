"""Helpers shared by the training phases: data split, seeding, evaluation, manifests."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import ImageSet, load_split
from ..presets import Preset
from .distributed import Dist

VAL_SIZE = 2000  # held out of the training split for model selection; the test split stays unseen


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
        full = self.train_set or load_split(self.preset.dataset, "train", self.data_root)
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(1234))
        n_val = min(VAL_SIZE, len(full) // 10)
        val_idx, train_idx = order[:n_val], order[n_val:]
        train = ImageSet(full.images[train_idx], full.labels[train_idx], full.classes,
                         f"{full.description} minus {n_val} held-out", full.checksum)
        val = ImageSet(full.images[val_idx], full.labels[val_idx], full.classes,
                       f"{n_val} held-out images of {full.description}", full.checksum)
        return train, val

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
