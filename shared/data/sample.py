"""The embedded test sample: a few hundred test images shipped in the repo, for offline demos."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .imageset import ImageSet

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def sample_path(dataset: str) -> Path:
    return ASSETS / f"{dataset}-test-sample.npz"


def load_sample(dataset: str) -> ImageSet:
    path = sample_path(dataset)
    if not path.exists():
        raise FileNotFoundError(f"no embedded sample for {dataset!r} at {path}")
    with np.load(path) as npz:
        return ImageSet(torch.from_numpy(npz["images"]), torch.from_numpy(npz["labels"]),
                        [str(c) for c in npz["classes"]], str(npz["description"]), str(npz["checksum"]))


def write_sample(full_test: ImageSet, dataset: str, per_class: int = 50, seed: int = 0) -> Path:
    """Write ``per_class`` test images of every class (seeded choice) as the embedded sample."""
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for label in range(len(full_test.classes)):
        idx = torch.nonzero(full_test.labels == label).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    order = torch.cat(picks).sort().values
    path = sample_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=full_test.images[order].numpy(), labels=full_test.labels[order].numpy(),
                        classes=np.asarray(full_test.classes),
                        description=f"embedded sample: {len(order)} images of {full_test.description}",
                        checksum=full_test.checksum, indices=order.numpy())
    return path
