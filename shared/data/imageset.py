"""An in-memory labelled image set: uint8 pixels, int64 labels and where they came from."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ImageSet:
    """``images``: uint8 [N, C, H, W] in 0..255; ``labels``: int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    description: str            # e.g. "CIFAR-10 (JPEG q75 copy), test split"
    checksum: str = ""          # md5 of the source archive or files, for manifests

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [N,C,H,W], got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int = 0) -> "ImageSet":
        """The first ``n`` images of a fixed seeded permutation (same n, same seed -> same images)."""
        if n is None or n >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return ImageSet(self.images[order], self.labels[order], self.classes,
                        f"{self.description}, {n} images (seed {seed})", self.checksum)

    def as_float(self, index=slice(None)) -> torch.Tensor:
        """Pixels in [0, 1] as float32."""
        return self.images[index].float().div_(255.0)
