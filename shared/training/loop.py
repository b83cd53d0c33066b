"""A small resumable training loop: deterministic batches per step, periodic resume files.

Batches are a pure function of (seed, step): the epoch's permutation is seeded by the epoch
number, so a run resumed at step s sees exactly the batches an uninterrupted run would have.
Under DDP each rank takes its stride of the same global batch.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from .distributed import Dist


@dataclass
class BatchPlan:
    """Which example indices form global step ``step`` (global batch ``batch_size``)."""

    num_examples: int
    batch_size: int
    seed: int
    ctx: Dist

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.num_examples // self.batch_size)

    def steps_for(self, epochs: float) -> int:
        return max(1, math.ceil(epochs * self.steps_per_epoch))

    def indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        order = torch.randperm(self.num_examples, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
        batch = order[i * self.batch_size:(i + 1) * self.batch_size]
        return batch[self.ctx.rank::self.ctx.world]

    def generator(self, step: int) -> torch.Generator:
        """Per-step RNG for augmentation and noise: distinct per rank, reproducible on resume."""
        return torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 131 + self.ctx.rank)


def linear_warmup_decay(total_steps: int, warmup_frac: float = 0.15) -> Callable[[int], float]:
    """One-cycle style multiplier: 0 -> 1 over the warm-up, then linearly back to 0."""
    warm = max(1, int(total_steps * warmup_frac))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))
    return factor


def cosine_with_warmup(total_steps: int, warmup_steps: int = 200) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def sgd_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler) -> None:
    """One update: clear the gradients, back-propagate ``loss``, step the optimizer and the LR schedule."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()


def run_loop(name: str, total_steps: int, step_fn: Callable[[int], dict[str, float]],
             state: dict[str, object], resume_path: Path, ctx: Dist, save_every_s: float = 120.0,
             on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, float]:
    """Run ``step_fn(step)`` for ``total_steps`` steps with a progress bar and resume files.

    ``state`` maps names to objects with ``state_dict``/``load_state_dict`` (models, optimisers,
    schedulers). A resume file is written every ``save_every_s`` seconds and removed at the end.
    Returns the running mean of the metrics over the last 100 steps.
    """
    start = 0
    if resume_path.exists():
        blob = torch.load(resume_path, map_location="cpu", weights_only=False)
        for key, obj in state.items():
            obj.load_state_dict(blob["state"][key])
        start = blob["step"]
        if ctx.is_main:
            print(f"[{name}] resuming from {resume_path} at step {start}/{total_steps}", flush=True)
    recent: dict[str, list[float]] = {}
    last_save = time.time()
    disable = not ctx.is_main or os.environ.get("DIFFUSEC_NO_PROGRESS") == "1"
    bar = tqdm(range(start, total_steps), desc=name, initial=start, total=total_steps, disable=disable,
               dynamic_ncols=True, mininterval=2.0)
    for step in bar:
        metrics = step_fn(step)
        for key, value in metrics.items():
            recent.setdefault(key, []).append(value)
            recent[key] = recent[key][-100:]
        if step % 10 == 0:
            bar.set_postfix({k: f"{sum(v) / len(v):.4f}" for k, v in recent.items()})
        if on_step is not None:
            on_step(step, metrics)
        if ctx.is_main and (time.time() - last_save > save_every_s) and step + 1 < total_steps:
            _save_resume(resume_path, state, step + 1)
            last_save = time.time()
    bar.close()
    if ctx.is_main and resume_path.exists():
        resume_path.unlink()
    return {k: sum(v) / len(v) for k, v in recent.items()}


def _save_resume(path: Path, state: dict[str, object], step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "state": {k: v.state_dict() for k, v in state.items()}}, tmp)
    os.replace(tmp, path)
