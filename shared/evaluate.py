"""In-process evaluation: accuracy and SSIM of a system on the test split (never training images)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from .data import ImageSet
from .losses import ssim01
from .pipeline import Pipeline


@dataclass
class EvalResult:
    preset: str
    system: str
    snr_db: float | None
    n: int
    accuracy: float            # top-1 on the received images, in [0, 1]
    ssim: float | None         # mean per-image SSIM(original, received) in [0, 1]; None for "classifier"
    t_d: int | None
    t_plus: int | None
    t_p: int | None
    sampler: str | None
    sampler_steps: int | None
    bandwidth_ratio: float     # real channel symbols per source value
    channel_symbols: int
    seed: int
    data: str
    wall_time_s: float
    images_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(pipeline: Pipeline, data: ImageSet, system: str, snr_db: float, t_d: int, t_plus: int,
             seed: int = 0, batch: int = 250, sampler: str = "ddpm", steps: int = 5,
             progress: bool = True) -> EvalResult:
    """Run ``data`` through ``system`` in batches; seeded noise makes a run repeatable."""
    generator = torch.Generator().manual_seed(seed)
    correct, ssim_sum = 0, 0.0
    start = time.time()
    for i in tqdm(range(0, len(data), batch), desc=f"eval {system}", disable=not progress, dynamic_ncols=True):
        x = data.as_float(slice(i, i + batch))
        received, logits = pipeline.run(system, x, snr_db, t_d, t_plus, sampler, steps, generator)
        correct += (logits.argmax(1) == data.labels[i:i + batch]).sum().item()
        if system != "classifier":
            ssim_sum += ssim01(x, received, per_image=True).sum().item()
    wall = time.time() - start
    link = system != "classifier"
    diffused = system == "plain"
    cfg = pipeline.preset.codec
    return EvalResult(
        preset=pipeline.preset.name, system=system, snr_db=snr_db if link else None, n=len(data),
        accuracy=round(correct / len(data), 4), ssim=round(ssim_sum / len(data), 4) if link else None,
        t_d=t_d if diffused else None, t_plus=t_plus if diffused else None,
        t_p=t_d + t_plus if diffused else None, sampler=sampler if diffused else None,
        sampler_steps=(steps if sampler == "ddim" else t_d + t_plus) if diffused else None,
        bandwidth_ratio=round(cfg.bandwidth_ratio, 6), channel_symbols=cfg.channel_symbols, seed=seed,
        data=data.description, wall_time_s=round(wall, 2), images_per_s=round(len(data) / max(wall, 1e-9), 1))
