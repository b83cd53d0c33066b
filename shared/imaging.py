"""Image grids for people: rows of [0, 1] image batches side by side, written as a PNG (Pillow)."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw


def save_grid(rows: list[tuple[str, torch.Tensor]], path: str | Path, scale: int = 3, pad: int = 2) -> Path:
    """Write one labelled row per (label, [N, C, H, W] in [0, 1]) batch; every batch has the same N."""
    label_width = 9 * max(len(label) for label, _ in rows) + 8
    n, c, h, w = rows[0][1].shape
    cell_h, cell_w = h * scale + pad, w * scale + pad
    canvas = Image.new("RGB", (label_width + n * cell_w, len(rows) * cell_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, batch) in enumerate(rows):
        draw.text((4, r * cell_h + cell_h // 2 - 6), label, fill="black")
        pixels = (batch.clamp(0, 1) * 255).round().to(torch.uint8)
        for i in range(n):
            array = pixels[i].permute(1, 2, 0).numpy()
            tile = Image.fromarray(array[..., 0] if c == 1 else array).convert("RGB")
            tile = tile.resize((w * scale, h * scale), Image.NEAREST)
            canvas.paste(tile, (label_width + i * cell_w + pad, r * cell_h + pad))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
