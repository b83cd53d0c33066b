"""Denoising U-Net of the asymmetric denoising module, conditioned on the timestep t.

``forward(x_t [B,C,H,W], t [B] int64) -> [B,C,H,W]``: the predicted clean image x0 (objective
"x0-eq35", as a residual on x_t) or the predicted noise (objective "eps"); use
:meth:`UNet.predict_x0` to get x0 either way. With ``unshuffle`` = 2 the image is folded into
4x the channels at half resolution first (PixelUnshuffle), which makes it ~4x cheaper on CPU.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..diffusion import Schedule, predict_x0_from_eps
from ..presets import DenoiserConfig


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps [B] -> [B, dim] (as in DDPM / improved-diffusion)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the time embedding added in between (improved-diffusion style)."""

    def __init__(self, c_in: int, c_out: int, time_dim: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2, self.conv2 = group_norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    def __init__(self, cfg: DenoiserConfig, image_channels: int = 3):
        super().__init__()
        self.cfg = cfg
        r = cfg.unshuffle
        c_img = image_channels * r * r
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, cfg.time_dim), nn.SiLU(), nn.Linear(cfg.time_dim, cfg.time_dim))
        self.stem = nn.Conv2d(c_img, widths[0], 3, padding=1)
        self.down_blocks, self.downsamples = nn.ModuleList(), nn.ModuleList()
        skips, c = [widths[0]], widths[0]
        for level, width in enumerate(widths):
            for _ in range(cfg.blocks_per_level):
                self.down_blocks.append(ResBlock(c, width, cfg.time_dim))
                c = width
                skips.append(c)
            if level < len(widths) - 1:
                self.downsamples.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = ResBlock(c, c, cfg.time_dim)
        self.up_blocks = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(cfg.blocks_per_level + 1):
                self.up_blocks.append(ResBlock(c + skips.pop(), width, cfg.time_dim))
                c = width
        self.out = nn.Sequential(group_norm(c), nn.SiLU(), nn.Conv2d(c, c_img, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)   # start as "x0 = x_t" (or eps = 0): a stable beginning
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        r, cfg = self.cfg.unshuffle, self.cfg
        emb = self.time_mlp(timestep_embedding(t, cfg.time_dim))
        h = self.stem(F.pixel_unshuffle(x_t, r) if r > 1 else x_t)
        hs = [h]
        block = iter(self.down_blocks)
        for level in range(len(cfg.channel_mults)):
            for _ in range(cfg.blocks_per_level):
                h = next(block)(h, emb)
                hs.append(h)
            if level < len(cfg.channel_mults) - 1:
                h = self.downsamples[level](h)
                hs.append(h)
        h = self.mid(h, emb)
        ups = iter(self.up_blocks)
        for level in reversed(range(len(cfg.channel_mults))):
            for i in range(cfg.blocks_per_level + 1):
                h = next(ups)(torch.cat([h, hs.pop()], dim=1), emb)
            if level > 0:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
        out = self.out(h)
        out = F.pixel_shuffle(out, r) if r > 1 else out
        return x_t + out if cfg.objective == "x0-eq35" else out

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, schedule: Schedule) -> torch.Tensor:
        out = self(x_t, t)
        return out if self.cfg.objective == "x0-eq35" else predict_x0_from_eps(x_t, t, out, schedule)
