"""Training augmentation written in torch: random crop with zero padding, horizontal flip, Cutout."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator | None = None,
                mode: str = "constant") -> torch.Tensor:
    """Pad [B, C, H, W] by ``padding`` pixels (zeros, or ``mode="reflect"``) and crop back to H x W at a
    random offset per image."""
    if padding <= 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding,) * 4, mode=mode)
    dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    rows = (dy[:, None] + torch.arange(height)[None]).view(batch, 1, height, 1)
    cols = (dx[:, None] + torch.arange(width)[None]).view(batch, 1, 1, width)
    batch_idx = torch.arange(batch).view(batch, 1, 1, 1)
    channel_idx = torch.arange(images.shape[1]).view(1, -1, 1, 1)
    return padded[batch_idx, channel_idx, rows, cols]


def random_hflip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    out = images.clone()
    out[flip] = out[flip].flip(-1)
    return out


def random_cutout(images: torch.Tensor, size: int, fill: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Cutout (DeVries & Taylor, 2017): one ``size`` x ``size`` square per image, wholly inside it, set
    to ``fill`` (broadcast to [B, C, size, size], e.g. the mean pixel [1, C, 1, 1]); 0 leaves the batch."""
    if size <= 0:
        return images
    batch, _, height, width = images.shape
    top = torch.randint(0, height - size + 1, (batch, 1, 1, 1), generator=generator)
    left = torch.randint(0, width - size + 1, (batch, 1, 1, 1), generator=generator)
    rows = torch.arange(height).view(1, 1, height, 1) - top
    cols = torch.arange(width).view(1, 1, 1, width) - left
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    return torch.where(inside, fill.to(images.dtype), images)


def augment(images: torch.Tensor, padding: int = 4, flip: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard CIFAR augmentation on a batch [B, C, H, W] (any dtype)."""
    images = random_crop(images, padding, generator)
    return random_hflip(images, generator) if flip else images
