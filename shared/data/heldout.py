"""The held-out part of a training split: images no training phase sees (model selection, the agent's grid).

One permutation (seed 1234) splits the training split into ``n_val = min(HELDOUT_SIZE, N // 10)``
held-out images and the rest; every training phase trains on the rest
(:meth:`shared.training.common.PhaseContext.train_and_val`), so measuring on the held-out images
never touches the test split and never scores an image a model was fitted on.
"""
from __future__ import annotations

import torch

from .imageset import ImageSet

HELDOUT_SIZE = 2000
SPLIT_SEED = 1234


def split_heldout(full: ImageSet) -> tuple[ImageSet, ImageSet]:
    """(the training images, the held-out images) of a training split ``full``."""
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = min(HELDOUT_SIZE, len(full) // 10)
    heldout, train = order[:n_val], order[n_val:]
    return (ImageSet(full.images[train], full.labels[train], full.classes,
                     f"{full.description} minus {n_val} held-out", full.checksum),
            ImageSet(full.images[heldout], full.labels[heldout], full.classes,
                     f"{n_val} held-out images of {full.description}", full.checksum))
