"""A user's own folder of PNG/JPEG images, as uint8 [N, C, H, W] at the preset's size (Pillow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

EXTENSIONS = (".png", ".jpg", ".jpeg")


def image_files(folder: Path) -> list[Path]:
    """Every .png/.jpg/.jpeg under ``folder`` (recursively), sorted by relative path."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image -> uint8 [C, size, size]: centre-cropped to a square, resized (bicubic), RGB or grey."""
    with Image.open(path) as img:
        img = img.convert("RGB" if channels == 3 else "L")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BICUBIC)
        array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_folder(folder: Path, size: int, channels: int, n: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """The first ``n`` images of ``folder`` -> (uint8 [N, C, size, size], names relative to the folder).

    ValueError when the folder holds no image or a file cannot be decoded.
    """
    folder = Path(folder)
    files = image_files(folder)[:n] if n else image_files(folder)
    if not files:
        raise ValueError(f"no .png/.jpg/.jpeg images under {folder}")
    arrays = []
    for path in files:
        try:
            arrays.append(load_image(path, size, channels))
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from err
    return torch.from_numpy(np.stack(arrays)), [str(p.relative_to(folder)) for p in files]
